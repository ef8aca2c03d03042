"""GET /tiles: status codes, headers, ETag revalidation, and no stale tile after an import."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import mapbox_vector_tile
import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from geo_api.main import create_app
from layers.bulk import FeatureRow, upsert_features
from layers.registry import LayerSpec, create_or_update_layer
from layers.settings import Settings

MVT = "application/vnd.mapbox-vector-tile"


def xyz(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    n = 1 << z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return z, x, y


@pytest.fixture(scope="module")
def client(seeded: Engine, settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


def test_tile_headers_and_etag_revalidation(client: TestClient) -> None:
    z, x, y = xyz(105.68, 18.67, 12)
    r = client.get(f"/tiles/admin_communes/{z}/{x}/{y}.mvt")
    assert r.status_code == 200
    assert r.headers["content-type"] == MVT
    assert "max-age" in r.headers["cache-control"]
    etag = r.headers["etag"]
    doc = mapbox_vector_tile.decode(r.content)
    assert doc["admin_communes"]["features"]
    again = client.get(f"/tiles/admin_communes/{z}/{x}/{y}.mvt", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.headers["etag"] == etag


def test_gzip_is_sent_when_accepted(client: TestClient) -> None:
    z, x, y = xyz(105.68, 18.67, 9)
    plain = client.get(f"/tiles/admin_communes/{z}/{x}/{y}.mvt", headers={"Accept-Encoding": ""})
    gz = client.get(f"/tiles/admin_communes/{z}/{x}/{y}.mvt", headers={"Accept-Encoding": "gzip"})
    assert plain.status_code == gz.status_code == 200
    assert gz.headers.get("content-encoding") == "gzip"
    assert gz.content == plain.content  # httpx decodes it


def test_property_selection(client: TestClient) -> None:
    z, x, y = xyz(105.68, 18.67, 12)
    r = client.get(f"/tiles/admin_communes/{z}/{x}/{y}.mvt?properties=code")
    feats = mapbox_vector_tile.decode(r.content)["admin_communes"]["features"]
    assert all(set(f["properties"]) == {"code"} for f in feats)
    bad = client.get(f"/tiles/admin_communes/{z}/{x}/{y}.mvt?properties=code,secret")
    assert bad.status_code == 400
    assert "secret" in bad.json()["detail"]


def test_errors_and_empty_tile(client: TestClient) -> None:
    assert client.get("/tiles/nope/1/0/0.mvt").status_code == 404
    assert client.get("/tiles/hospitals/2/9/0.mvt").status_code == 400
    assert client.get("/tiles/hospitals/30/0/0.mvt").status_code == 400
    assert client.get("/tiles/hospitals/x/0/0.mvt").status_code == 400
    # Mid-Atlantic: nothing there, ever. Empty tiles are 204, with an ETag all the same.
    empty = client.get("/tiles/hospitals/10/400/450.mvt")
    assert empty.status_code == 204
    assert empty.content == b""
    assert empty.headers["etag"]


def test_tilejson(client: TestClient) -> None:
    r = client.get("/tiles/hospitals.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["tilejson"] == "3.0.0"
    assert doc["tiles"][0].endswith("/tiles/hospitals/{z}/{x}/{y}.mvt")
    assert doc["vector_layers"][0]["id"] == "hospitals"
    assert doc["vector_layers"][0]["fields"]["beds"] == "Number"
    minx, miny, maxx, maxy = doc["bounds"]
    assert 103 < minx < maxx < 107 and 17 < miny < maxy < 21
    assert client.get("/tiles/nope.json").status_code == 404


def test_no_stale_tile_after_import(client: TestClient, seeded: Engine) -> None:
    spec = LayerSpec(
        slug="tile_cache_probe",
        title_vi="Thử bộ nhớ đệm",
        title_en="Cache probe",
        sector="other",
        geometry_type="Point",
        property_schema={"type": "object", "properties": {"n": {"type": "integer"}}},
    )
    with seeded.begin() as conn:
        layer_id = create_or_update_layer(conn, spec)
        upsert_features(conn, layer_id, [FeatureRow("a", shapely.Point(105.68, 18.67), {"n": 1})])
    z, x, y = xyz(105.68, 18.67, 15)
    url = f"/tiles/tile_cache_probe/{z}/{x}/{y}.mvt"
    first = client.get(url)
    warm = client.get(url)
    assert first.content == warm.content
    assert len(mapbox_vector_tile.decode(first.content)["tile_cache_probe"]["features"]) == 1
    with seeded.begin() as conn:
        upsert_features(
            conn, layer_id, [FeatureRow("b", shapely.Point(105.6805, 18.6705), {"n": 2})]
        )
    after = client.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert after.status_code == 200
    assert after.headers["etag"] != first.headers["etag"]
    feats = mapbox_vector_tile.decode(after.content)["tile_cache_probe"]["features"]
    assert sorted(f["properties"]["n"] for f in feats) == [1, 2]
    with seeded.begin() as conn:
        upsert_features(conn, layer_id, [], delete_missing=True)
    assert client.get(url).status_code == 204


def test_low_zoom_parcels_are_dropped_not_sent(
    client: TestClient, auth_headers: Callable[..., dict[str, str]]
) -> None:
    # At zoom 8 a cadastral lot is far below a pixel: the tile is empty (204) and, with the
    # layer's size statistics cached, it is answered without scanning the parcels again.
    planner = auth_headers("planner")  # land_parcels is a sensitive layer
    z, x, y = xyz(105.68, 18.72, 8)
    assert client.get(f"/tiles/land_parcels/{z}/{x}/{y}.mvt", headers=planner).status_code == 204
    assert client.get(f"/tiles/land_parcels/{z}/{x}/{y}.mvt", headers=planner).status_code == 204
    z, x, y = xyz(105.68, 18.72, 8)
    r = client.get(f"/tiles/admin_communes/{z}/{x}/{y}.mvt")
    assert r.status_code == 200 and len(r.content) < 500_000
