"""Items 3, 7, 8 and 11 of issue 14: each bad input gets a clear 4xx naming the field (never a
500), archives and tables are bounded, uploads and temporary files never stay behind,
restricted layers are not even listed, killed imports do not stay "running"."""

from __future__ import annotations

import io
import json
import threading
import urllib.parse as up
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import Engine, text

from geo_api.main import create_app
from ingest.pipeline import ImportReport
from layers.errors import IocError, PayloadTooLargeError
from layers.settings import Settings

Headers = Callable[..., dict[str, str]]
BIG = "99999999999999999999"
EPSG9208 = up.quote("http://www.opengis.net/def/crs/EPSG/0/9208")


def q(cql: str) -> str:
    return up.quote(cql)


# (method, url, json body or None, the field the answer must name)
BAD_REQUESTS: list[tuple[str, str, Any, str]] = [
    ("GET", f"/ogc/collections/hospitals/items?after={BIG}", None, "after"),
    ("GET", f"/ogc/collections/hospitals/items?before={BIG}", None, "before"),
    ("GET", f"/api/layers/hospitals/features?after={BIG}", None, "after"),
    ("GET", f"/ogc/collections/hospitals/items?filter={q('id = ' + BIG)}", None, "id"),
    ("GET", f"/api/alerts/{BIG}", None, "alert_id"),
    ("POST", f"/api/alerts/{BIG}/ack", None, "alert_id"),
    ("GET", f"/api/events/{BIG}", None, "event_id"),
    ("GET", f"/api/imports/{BIG}", None, "batch_id"),
    ("GET", "/api/layers/hos%00pitals/features", None, "slug"),
    ("GET", "/tiles/hos%00pitals/1/1/1.mvt", None, "slug"),
    ("GET", "/api/layers/hospitals/features?name=a%00b", None, "name"),
    ("GET", "/ogc/collections/hospitals/items?name=a%00b", None, "name"),
    ("GET", "/api/alerts?status=%00", None, "status"),
    ("GET", "/ogc/collections/hospitals/items?filter=" + q("name = 'a\x00b'"), None, "filter"),
    ("POST", "/api/query/nearest", {"layer": "hospitals", "lon": 105.6, "lat": 18.7,
                                    "where": {"name": "a\x00b"}}, "where"),
    ("GET", "/ogc/collections/hospitals/items?filter="
     + q("id > 12345678901234567890123456789012345678"), None, "id"),
    ("GET", "/ogc/collections/hospitals/items?filter="
     + q(" AND ".join(f"id > {i}" for i in range(1000))), None, "filter"),
    ("GET", f"/ogc/collections/hospitals/items?filter-crs={EPSG9208}&filter="
     + q("S_INTERSECTS(geometry, POINT(1e10 1e10))"), None, "filter-crs"),
]  # fmt: skip


@pytest.fixture
def do_import(engine: Engine, settings: Settings) -> Callable[..., ImportReport]:
    from ingest.pipeline import ImportOptions, run_import

    def run(path: Path, layer: str, **kw: Any) -> ImportReport:
        return run_import(engine, settings, ImportOptions(path=path, layer=layer, **kw))

    return run


@pytest.fixture(scope="module")
def client(seeded: Engine, settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings.model_copy(update={"report_rate_burst": 100_000}))
    # field names as the English messages spell them (Vietnamese is the default)
    with TestClient(app, raise_server_exceptions=False, headers={"Accept-Language": "en"}) as c:
        yield c


@pytest.mark.parametrize(("method", "url", "body", "field"), BAD_REQUESTS)
def test_bad_requests_get_a_4xx_naming_the_field(
    client: TestClient, auth_headers: Headers, method: str, url: str, body: Any, field: str
) -> None:
    res = client.request(method, url, json=body, headers=auth_headers("admin"))
    assert 400 <= res.status_code < 500, (res.status_code, res.text[:300])
    # the message names the field (a validation error names it in words, with the raw
    # location in `fields`)
    body = res.json()
    assert field in body["detail"] or any(f.endswith(field) for f in body.get("fields", [])), body


def test_a_30000_pixel_square_photo_is_refused(client: TestClient) -> None:
    # A PNG header claiming 30000x30000 (a decompression bomb), tiny on the wire.
    img = Image.new("1", (30000, 30000))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    data = {
        "category": "traffic",
        "description": "a photo that is far too big",
        "lon": "105.68",
        "lat": "18.67",
    }
    res = client.post(
        "/api/reports", data=data, files={"photos": ("bomb.png", buf.getvalue(), "image/png")}
    )
    assert res.status_code in (400, 413, 422), res.text[:300]
    assert "bomb.png" in res.json()["detail"] or "pixels" in res.json()["detail"]


def _upload(
    client: TestClient, headers: dict[str, str], name: str, content: bytes, **form: str
) -> Any:
    data = {"layer": "bad_upload", "dry_run": "true", **form}
    return client.post("/api/imports", data=data, files={"file": (name, content)}, headers=headers)


def _uploads_left(settings: Settings) -> list[Path]:
    root = settings.media_root / "imports"
    return [p for p in root.iterdir()] if root.exists() else []


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for n, b in members.items():
            zf.writestr(n, b)
    return buf.getvalue()


GOOD_CSV = b"name,lon,lat\na,105.68,18.67\n"
UPLOADS: list[tuple[str, str, Callable[[], bytes], dict[str, str], int, str]] = [
    ("bad slug", "a.csv", lambda: GOOD_CSV, {"layer": "Bad Slug!"}, 400, "layer"),
    ("300-char name", "x" * 296 + ".csv", lambda: GOOD_CSV, {}, 200, ""),
    ("zip bomb", "bomb.zip", lambda: _zip({"blank.csv": b"name,lon,lat\n" + b"\n" * 50_000_000}),
     {}, 413, "bomb.zip"),
    ("kmz bomb", "bomb.kmz", lambda: _zip({"doc.kml": b" " * 50_000_000}), {}, 413, "bomb.kmz"),
    ("many members", "many.zip", lambda: _zip({f"{i}.txt": b"x" for i in range(300)}),
     {"__members": "100"}, 413, "many.zip"),
    ("million columns", "wide.csv", lambda: b",".join(b"c%d" % i for i in range(1_000_000)),
     {}, 400, "wide.csv"),
    ("10 MB field", "field.csv",
     lambda: b"name,lon,lat\n\"" + b"a" * 10_000_000 + b"\",105.68,18.67\n", {}, 400, "field.csv"),
    ("10 MB no newline", "flat.csv", lambda: b"a" * 10_000_000, {}, 400, "flat.csv"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "name", "make", "form", "status", "named"), UPLOADS, ids=[u[0] for u in UPLOADS]
)
def test_bad_uploads_are_refused_clearly_and_leave_nothing_behind(
    seeded: Engine,
    settings: Settings,
    auth_headers: Headers,
    case: str,
    name: str,
    make: Callable[[], bytes],
    form: dict[str, str],
    status: int,
    named: str,
) -> None:
    import tempfile

    members = int(form.pop("__members", "10000"))
    s = settings.model_copy(
        update={"ingest_max_archive_members": members, "ingest_max_uncompressed_bytes": 20_000_000}
    )
    before = set(Path(tempfile.gettempdir()).glob("iocmap-unzip-*"))
    with TestClient(create_app(s), raise_server_exceptions=False) as c:
        res = _upload(c, auth_headers("gis_staff"), name, make(), **form)
    assert res.status_code == status, (case, res.status_code, res.text[:300])
    if named:
        body = res.json()
        assert named in body["detail"] or any(f.endswith(named) for f in body.get("fields", [])), (
            body
        )
    assert "/tmp" not in res.text and str(s.media_root) not in res.text  # no server paths
    assert _uploads_left(s) == []
    assert set(Path(tempfile.gettempdir()).glob("iocmap-unzip-*")) == before


@pytest.mark.parametrize(
    "rows",
    [
        "name,lon,lat\n" + "".join(f"a{i},2.3,48.8\n" for i in range(50)),  # all in Paris
        "name,lon,lat\n" + "".join(f"a{i},1e308,1e308\n" for i in range(50)),
    ],
    ids=["all outside the province", "1e308"],
)
def test_rows_outside_or_absurd_are_rejected_not_a_crash(
    tmp_path: Path, do_import: Callable[..., ImportReport], rows: str
) -> None:
    path = tmp_path / "rows.csv"
    path.write_text(rows)
    rep = do_import(path, "bad_rows_layer", crs="EPSG:4326")
    assert rep.rows_valid == 0 and rep.rows_rejected == 50
    with pytest.raises(IocError) as err:
        do_import(path, "bad_rows_auto")  # no CRS can place them: a clear error
    assert "CRS" in err.value.detail


def test_rows_per_import_are_limited(tmp_path: Path, engine: Engine, settings: Settings) -> None:
    from ingest.pipeline import ImportOptions, run_import

    path = tmp_path / "rows.csv"
    path.write_text("name,lon,lat\n" + "".join(f"a{i},105.68,18.67\n" for i in range(101)))
    small = settings.model_copy(update={"ingest_max_rows": 100})
    with pytest.raises(PayloadTooLargeError, match="at most 100"):
        run_import(engine, small, ImportOptions(path=path, layer="bad_many_rows"))


def test_an_import_over_its_memory_limit_fails_cleanly(tmp_path: Path, settings: Settings) -> None:
    from ingest.pipeline import ImportOptions
    from ingest.worker import run_import_in_worker

    path = tmp_path / "rows.csv"
    path.write_bytes(GOOD_CSV)
    tiny = settings.model_copy(update={"ingest_worker_memory_bytes": 150 * 1024**2})
    with pytest.raises(PayloadTooLargeError, match="GiB"):
        run_import_in_worker(tiny, ImportOptions(path=path, layer="bad_memory", dry_run=True))


def test_concurrent_replace_imports_queue_and_readers_never_see_a_500(
    tmp_path: Path,
    seeded: Engine,
    settings: Settings,
    do_import: Callable[..., ImportReport],
) -> None:
    feats = [
        {"type": "Feature", "properties": {"n": i},
         "geometry": {"type": "Point", "coordinates": [105.6 + i * 1e-4, 18.7]}}
        for i in range(2000)
    ]  # fmt: skip
    path = tmp_path / "p.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    first = do_import(path, "bad_concurrent")
    errors: list[BaseException] = []
    statuses: list[int] = []

    def replace() -> None:
        try:
            do_import(path, "bad_concurrent", mode="replace")
        except BaseException as exc:  # collected for the assertion
            errors.append(exc)

    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        workers = [threading.Thread(target=replace) for _ in range(3)]
        for w in workers:
            w.start()
        while any(w.is_alive() for w in workers):
            statuses.append(c.get("/api/layers").status_code)
        for w in workers:
            w.join()
    assert errors == [] and set(statuses) <= {200, 503}
    with seeded.connect() as conn:
        n = conn.execute(
            text(
                "SELECT count(*) FROM feature f JOIN layer l ON l.id = f.layer_id"
                " WHERE l.slug = 'bad_concurrent'"
            )
        ).scalar_one()
    assert n == first.rows_valid > 0


def test_restricted_layers_are_not_listed_to_those_who_may_not_read_them(
    client: TestClient, auth_headers: Headers
) -> None:
    anon = {x["slug"] for x in client.get("/api/layers").json()}
    assert "hospitals" in anon and "land_parcels" not in anon and "cameras" not in anon
    planner = {x["slug"] for x in client.get("/api/layers", headers=auth_headers("planner")).json()}
    assert "land_parcels" in planner
    cols = {x["id"] for x in client.get("/ogc/collections").json()["collections"]}
    assert "land_parcels" not in cols
    assert client.get("/ogc/collections/land_parcels").status_code == 401
    assert client.get("/api/layers/land_parcels").status_code == 401


def test_a_killed_import_batch_is_marked_failed_by_the_next_command(
    seeded: Engine, settings: Settings
) -> None:
    from typer.testing import CliRunner

    from geo_api.cli import app as cli_app
    from layers.ingest import locks

    with seeded.begin() as conn:
        bid = conn.execute(
            text(
                "INSERT INTO import_batch (source, kind, actor, mode, status, started_at)"
                " VALUES ('killed.gpkg', 'file', 'cli', 'replace', 'running',"
                " now() - interval '2 minutes') RETURNING id"
            )
        ).scalar_one()
        live = conn.execute(
            text(
                "INSERT INTO import_batch (source, kind, actor, mode, status, started_at)"
                " VALUES ('live.gpkg', 'file', 'cli', 'replace', 'running',"
                " now() - interval '2 minutes') RETURNING id"
            )
        ).scalar_one()
    holder = seeded.connect()
    trans = holder.begin()
    locks.hold_batch(holder, live)  # this one's process is alive and importing
    try:
        env = {
            "IOC_DATABASE_URL": settings.database_url or "",
            "IOC_STATE_DIR": str(settings.state_dir),
        }
        res = CliRunner().invoke(cli_app, ["h3", "refresh", "--layer", "hospitals"], env=env)
        assert res.exit_code == 0, res.output
        with seeded.connect() as conn:
            rows = dict(
                conn.execute(
                    text("SELECT id, status FROM import_batch WHERE id IN (:a, :b)"),
                    {"a": bid, "b": live},
                ).all()
            )
            errors = conn.execute(
                text("SELECT errors FROM import_batch WHERE id = :a"), {"a": bid}
            ).scalar_one()
        assert rows == {bid: "failed", live: "running"}
        assert "interrupted" in errors[0]
    finally:
        trans.rollback()
        holder.close()
        with seeded.begin() as conn:
            conn.execute(text("DELETE FROM import_batch WHERE id = :b"), {"b": live})
