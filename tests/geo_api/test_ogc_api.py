"""OGC API – Features against a real uvicorn server, read by GDAL (OAPIF) and OWSLib."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import httpx
import pytest
import uvicorn
from pyproj import Transformer
from sqlalchemy import Engine, text

from geo_api.main import create_app
from layers.settings import Settings

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(seeded: Engine, settings: Settings) -> Iterator[str]:
    """create_app(settings) served by uvicorn on a free loopback port, stopped afterwards."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/ogc", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        srv.should_exit = True
        raise RuntimeError("uvicorn did not start")
    yield base + "/ogc"
    srv.should_exit = True
    thread.join(timeout=10)


def count(engine: Engine, slug: str, where: str = "true", **params: object) -> int:
    sql = (
        "SELECT count(*) FROM feature f JOIN layer l ON l.id = f.layer_id "
        f"WHERE l.slug = :slug AND ({where})"
    )
    with engine.connect() as conn:
        return int(conn.execute(text(sql), {"slug": slug, **params}).scalar_one())


def get(url: str, **params: object) -> httpx.Response:
    # English messages (Vietnamese is the default without a header)
    return httpx.get(url, params=params, headers={"Accept-Language": "en"}, timeout=30)  # type: ignore[arg-type]


def test_landing_conformance_collections(server: str) -> None:
    landing = get(server).json()
    rels = {link["rel"] for link in landing["links"]}
    assert {"self", "service-desc", "conformance", "data"} <= rels
    conf = get(server + "/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson" in conf
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30" in conf
    api = get(server + "/api")
    assert api.json()["openapi"].startswith("3.0")
    cols = get(server + "/collections").json()["collections"]
    ids = {c["id"] for c in cols}
    assert {"hospitals", "schools", "admin_communes"} <= ids
    assert "land_parcels" not in ids  # restricted: not even listed to anonymous callers
    reports = next(c for c in cols if c["id"] == "field_reports")
    assert reports["extent"]["temporal"]["interval"][0][0] is not None
    assert (
        CRS84 in reports["crs"] and "http://www.opengis.net/def/crs/EPSG/0/9208" in reports["crs"]
    )


def test_errors(server: str) -> None:
    assert get(server + "/collections/nope").status_code == 404
    assert get(server + "/collections/nope/items").status_code == 404
    assert get(server + "/collections/hospitals/items/999999999").status_code == 404
    assert get(server + "/collections/hospitals/items/abc").status_code == 404
    r = get(server + "/collections/hospitals/items", bbox="1,2,3")
    assert r.status_code == 400 and "bbox" in r.json()["detail"]
    r = get(server + "/collections/hospitals/items", filter="beds >>> 3")
    assert r.status_code == 400 and "CQL2" in r.json()["detail"]
    r = get(server + "/collections/hospitals/items", filter="secret = 1")
    assert r.status_code == 400 and "secret" in r.json()["detail"]
    r = get(server + "/collections/hospitals/items", limit="0")
    assert r.status_code == 400
    r = get(server + "/collections/hospitals/items", crs="EPSG:2154")
    assert r.status_code == 400 and "crs" in r.json()["detail"]
    r = get(server + "/collections/hospitals/items", datetime="2025-01-01T00:00:00Z")
    assert r.status_code == 400 and "time" in r.json()["detail"]
    r = get(server + "/collections/hospitals/items", colour="red")
    assert r.status_code == 400 and "colour" in r.json()["detail"]


def test_items_paging_and_limit_cap(server: str, seeded: Engine, settings: Settings) -> None:
    total = count(seeded, "schools")
    seen: list[int] = []
    url: str | None = server + "/collections/schools/items?limit=500"
    pages = 0
    while url:
        doc = httpx.get(url, timeout=30).json()
        assert doc["numberMatched"] == total
        seen += [f["id"] for f in doc["features"]]
        nxt = [link["href"] for link in doc["links"] if link["rel"] == "next"]
        url = nxt[0] if nxt else None
        pages += 1
        if pages == 2:
            prev = [link["href"] for link in doc["links"] if link["rel"] == "prev"]
            back = httpx.get(prev[0], timeout=30).json()
            assert [f["id"] for f in back["features"]] == seen[:500]
    assert len(seen) == len(set(seen)) == total
    big = get(server + "/collections/schools/items", limit=10**9).json()
    assert big["numberReturned"] == min(total, settings.ogc_max_limit)


def test_bbox_datetime_properties_filter(server: str, seeded: Engine) -> None:
    bbox = (105.6, 18.6, 105.8, 18.8)
    doc = get(
        server + "/collections/schools/items", bbox=",".join(map(str, bbox)), limit=10000
    ).json()
    want = count(
        seeded,
        "schools",
        "ST_Intersects(geom, ST_MakeEnvelope(:a,:b,:c,:d,4326))",
        a=bbox[0],
        b=bbox[1],
        c=bbox[2],
        d=bbox[3],
    )
    assert doc["numberReturned"] == doc["numberMatched"] == want > 0
    # bbox in EPSG:4326 is lat/lon.
    latlon = ",".join(map(str, (bbox[1], bbox[0], bbox[3], bbox[2])))
    doc2 = get(
        server + "/collections/schools/items",
        bbox=latlon,
        limit=10000,
        **{"bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/4326"},
    ).json()
    assert doc2["numberMatched"] == want
    # Time-enabled layer.
    n = count(seeded, "field_reports", "observed_at >= '2025-01-01' AND observed_at <= now()")
    doc3 = get(
        server + "/collections/field_reports/items", datetime="2025-01-01T00:00:00Z/..", limit=1
    ).json()
    assert doc3["numberMatched"] == count(seeded, "field_reports", "observed_at >= '2025-01-01'")
    assert n <= doc3["numberMatched"]
    # Property equality.
    doc4 = get(server + "/collections/schools/items", level="thpt", limit=10000).json()
    assert doc4["numberMatched"] == count(seeded, "schools", "properties->>'level' = 'thpt'") > 0
    assert all(f["properties"]["level"] == "thpt" for f in doc4["features"])


@pytest.mark.parametrize(
    ("cql", "where"),
    [
        (
            "pupils > 500 AND level IN ('thcs','thpt')",
            "(properties->>'pupils')::int > 500 AND properties->>'level' IN ('thcs','thpt')",
        ),
        ("pupils BETWEEN 200 AND 400", "(properties->>'pupils')::int BETWEEN 200 AND 400"),
        ("name LIKE 'Trường THPT%'", "properties->>'name' LIKE 'Trường THPT%'"),
        (
            "NOT (level = 'mam_non') OR pupils < 100",
            "NOT (properties->>'level' = 'mam_non') OR (properties->>'pupils')::int < 100",
        ),
        ("level <> 'thcs'", "properties->>'level' <> 'thcs'"),
        (
            "S_INTERSECTS(geometry, POLYGON((105.6 18.6, 105.8 18.6, 105.8 18.8, 105.6 18.8, 105.6 18.6)))",
            "ST_Intersects(geom, ST_MakeEnvelope(105.6, 18.6, 105.8, 18.8, 4326))",
        ),
        (
            "S_WITHIN(geometry, POLYGON((105.6 18.6, 105.8 18.6, 105.8 18.8, 105.6 18.8, 105.6 18.6)))",
            "ST_Within(geom, ST_MakeEnvelope(105.6, 18.6, 105.8, 18.8, 4326))",
        ),
        ("commune_code IS NULL", "NOT (properties ? 'commune_code')"),
    ],
)
def test_cql2_text_on_schools(server: str, seeded: Engine, cql: str, where: str) -> None:
    r = get(server + "/collections/schools/items", filter=cql, limit=10000)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["numberReturned"] == count(seeded, "schools", where)


def test_cql2_temporal(server: str, seeded: Engine) -> None:
    with seeded.connect() as conn:
        t0, t1 = conn.execute(
            text(
                "SELECT min(observed_at), max(observed_at) FROM feature f JOIN layer l"
                " ON l.id = f.layer_id WHERE l.slug = 'field_reports'"
            )
        ).one()
    mid = t0 + (t1 - t0) / 2
    iso = mid.isoformat().replace("+00:00", "Z")
    cases = {
        f"T_AFTER(received_at, TIMESTAMP('{iso}'))": ("observed_at > :m", {"m": mid}),
        f"T_BEFORE(received_at, TIMESTAMP('{iso}'))": ("observed_at < :m", {"m": mid}),
        f"T_DURING(received_at, INTERVAL('{t0.isoformat()}', '{iso}'))".replace("+00:00", "Z"): (
            "observed_at > :a AND observed_at < :m",
            {"a": t0, "m": mid},
        ),
        f"T_AFTER(received_at, TIMESTAMP('{iso}')) AND category IS NOT NULL": (
            "observed_at > :m",
            {"m": mid},
        ),
    }
    for cql, (where, params) in cases.items():
        r = get(server + "/collections/field_reports/items", filter=cql, limit=10000)
        assert r.status_code == 200, (cql, r.text)
        assert r.json()["numberMatched"] == count(seeded, "field_reports", where, **params), cql


def test_crs_output(server: str) -> None:
    fid = get(server + "/collections/hospitals/items", limit=1).json()["features"][0]["id"]
    base = get(server + f"/collections/hospitals/items/{fid}").json()
    lon, lat = base["geometry"]["coordinates"]
    for srid in (3857, 9208):
        uri = f"http://www.opengis.net/def/crs/EPSG/0/{srid}"
        r = get(server + f"/collections/hospitals/items/{fid}", crs=uri)
        assert r.headers["content-crs"] == f"<{uri}>"
        x, y = r.json()["geometry"]["coordinates"]
        ex, ey = Transformer.from_crs(4326, srid, always_xy=True).transform(lon, lat)
        tol = 1.0 if srid == 3857 else 50.0  # 9208 carries the VN-2000 datum shift
        assert abs(x - ex) < tol and abs(y - ey) < tol
    r = get(
        server + f"/collections/hospitals/items/{fid}",
        crs="http://www.opengis.net/def/crs/EPSG/0/4326",
    )
    assert r.json()["geometry"]["coordinates"] == pytest.approx([lat, lon])


def test_gdal_ogrinfo_and_ogr2ogr(server: str, seeded: Engine, tmp_path: Path) -> None:
    out = subprocess.run(
        ["ogrinfo", "-ro", "-so", f"OAPIF:{server}"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    assert "hospitals" in out and "land_parcels" not in out  # restricted, anonymous here
    info = subprocess.run(
        ["ogrinfo", "-ro", "-so", f"OAPIF:{server}", "hospitals"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    assert "Feature Count" in info
    for layer, columns in (("schools", {"name", "pupils"}), ("admin_communes", {"code", "name"})):
        gpkg = tmp_path / f"{layer}.gpkg"
        subprocess.run(
            ["ogr2ogr", "-f", "GPKG", str(gpkg), f"OAPIF:{server}", layer],
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
        got = gpd.read_file(gpkg)
        assert len(got) == count(seeded, layer)
        assert columns <= set(got.columns)
        assert got.geometry.notna().all()


def test_owslib_client(server: str, seeded: Engine) -> None:
    from owslib.ogcapi.features import Features

    api = Features(server)
    assert "hospitals" in [c["id"] for c in api.collections()["collections"]]
    assert (
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"
        in api.conformance()["conformsTo"]
    )
    page = api.collection_items("hospitals", limit=20)
    assert page["numberReturned"] == 20
    assert page["numberMatched"] == count(seeded, "hospitals")
    q = api.collection_queryables("schools")
    assert "pupils" in q["properties"]
    one = api.collection_item("hospitals", str(page["features"][0]["id"]))
    assert one["id"] == page["features"][0]["id"]
    filtered = api.collection_items("schools", filter="level = 'thpt'", limit=5000)
    assert all(f["properties"]["level"] == "thpt" for f in filtered["features"])
    assert json.dumps(filtered)


def test_items_carry_source_key_and_filter_by_it(server: str, seeded: Engine) -> None:
    with seeded.connect() as conn:
        fid, key = conn.execute(
            text(
                "SELECT f.id, f.source_key FROM feature f JOIN layer l ON l.id = f.layer_id"
                " WHERE l.slug = 'schools' ORDER BY f.id LIMIT 1"
            )
        ).one()
    doc = get(server + "/collections/schools/items", source_key=key).json()
    assert doc["numberMatched"] == 1
    assert doc["features"][0]["id"] == fid
    assert doc["features"][0]["properties"]["source_key"] == key
    one = get(server + f"/collections/schools/items/{fid}").json()
    assert one["properties"]["source_key"] == key
