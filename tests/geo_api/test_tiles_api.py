"""GET /tiles: status codes, headers, ETag revalidation, and no stale tile after an import."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import mapbox_vector_tile
import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from geo_api.main import create_app
from layers.features.bulk import FeatureRow, upsert_features
from layers.features.registry import LayerSpec, create_or_update_layer, delete_layer
from layers.settings import Settings

MVT = "application/vnd.mapbox-vector-tile"


def xyz(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    n = 1 << z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return z, x, y


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
    # At zoom 8 a cadastral lot is far below a pixel: the tile is empty (204), found through
    # the partial index of big features (0007_tile_lod) rather than by reading every parcel.
    planner = auth_headers("planner")  # land_parcels is a sensitive layer
    z, x, y = xyz(105.68, 18.72, 8)
    assert client.get(f"/tiles/land_parcels/{z}/{x}/{y}.mvt", headers=planner).status_code == 204
    assert client.get(f"/tiles/land_parcels/{z}/{x}/{y}.mvt", headers=planner).status_code == 204
    z, x, y = xyz(105.68, 18.72, 8)
    r = client.get(f"/tiles/admin_communes/{z}/{x}/{y}.mvt")
    assert r.status_code == 200 and len(r.content) < 500_000


def _point_layer(engine: Engine, slug: str, title: str = "Version probe") -> int:
    spec = LayerSpec(
        slug=slug,
        title_vi="Thử phiên bản",
        title_en=title,
        sector="other",
        geometry_type="Point",
        property_schema={"type": "object", "properties": {"n": {"type": "integer"}}},
    )
    with engine.begin() as conn:
        layer_id = create_or_update_layer(conn, spec)
        upsert_features(conn, layer_id, [FeatureRow("a", shapely.Point(105.68, 18.67), {"n": 1})])
    return layer_id


def _refetch_counting_queries(
    client: TestClient, url: str, etag: str
) -> tuple[Any, Any, list[str]]:
    """Get `url` again, then revalidate it with `etag`, recording the probe's queries."""
    calls: list[str] = []
    probe = client.app.state.layer_probe  # type: ignore[attr-defined]
    real = probe.fetchone

    async def counting(sql: str, *args: object, **kwargs: object) -> object:
        calls.append(sql)
        return await real(sql, *args, **kwargs)

    probe.fetchone = counting
    try:
        again = client.get(url)
        revalidated = client.get(url, headers={"If-None-Match": etag})
    finally:
        del probe.fetchone
    return again, revalidated, calls


def test_warm_hit_touches_no_database(client: TestClient) -> None:
    z, x, y = xyz(105.68, 18.67, 13)
    url = f"/tiles/admin_communes/{z}/{x}/{y}.mvt"
    first = client.get(url)
    state = client.app.state  # type: ignore[attr-defined]
    assert state.tile_versions.listening
    again, revalidated, calls = _refetch_counting_queries(client, url, first.headers["etag"])
    assert again.status_code == 200 and again.content == first.content
    assert again.headers["etag"] == first.headers["etag"]
    assert revalidated.status_code == 304
    assert calls == []


def test_spec_change_and_delete_are_seen_at_once(client: TestClient, seeded: Engine) -> None:
    _point_layer(seeded, "tile_version_probe")
    z, x, y = xyz(105.68, 18.67, 15)
    url = f"/tiles/tile_version_probe/{z}/{x}/{y}.mvt"
    first = client.get(url)
    assert first.status_code == 200
    assert client.get(url).headers["etag"] == first.headers["etag"]  # cached version
    _point_layer(seeded, "tile_version_probe", title="Version probe, renamed")
    assert client.get(url).headers["etag"] != first.headers["etag"]
    with seeded.begin() as conn:
        delete_layer(conn, "tile_version_probe")
    assert client.get(url).status_code == 404


def test_lost_listener_falls_back_to_the_database(client: TestClient, seeded: Engine) -> None:
    layer_id = _point_layer(seeded, "tile_listener_probe")
    z, x, y = xyz(105.68, 18.67, 15)
    url = f"/tiles/tile_listener_probe/{z}/{x}/{y}.mvt"
    first = client.get(url)
    versions = client.app.state.tile_versions  # type: ignore[attr-defined]
    with seeded.connect() as conn:
        pids = conn.execute(
            text(
                "SELECT pg_terminate_backend(pid), pid FROM pg_stat_activity"
                " WHERE datname = current_database() AND application_name = :app"
            ),
            {"app": "iocmap-tile-versions"},
        ).all()
        assert pids, "the app should hold a LISTEN connection"
        # Wait for the listener's backend to be gone, so its socket is closed.
        for _ in range(200):
            left = conn.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(:p)"),
                {"p": [p for _, p in pids]},
            ).scalar_one()
            if not left:
                break
            time.sleep(0.05)
    with seeded.begin() as conn:
        upsert_features(
            conn, layer_id, [FeatureRow("b", shapely.Point(105.6805, 18.6705), {"n": 2})]
        )
    after = client.get(url)
    assert after.headers["etag"] != first.headers["etag"]
    assert len(mapbox_vector_tile.decode(after.content)["tile_listener_probe"]["features"]) == 2
    # It listens again shortly (and caches versions again).
    for _ in range(200):
        client.get("/tiles/tile_listener_probe.json")  # lets the app's event loop run
        if versions.listening:
            break
        time.sleep(0.05)
    assert versions.listening
    with seeded.begin() as conn:
        delete_layer(conn, "tile_listener_probe")


def test_another_process_change_is_seen_through_notify(
    client: TestClient, seeded: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    from layers.cluster import database_url, libpq_url

    layer_id = _point_layer(seeded, "tile_notify_probe")
    # No expiry during the test: only the notification can make the app read the version again.
    monkeypatch.setattr(client.app.state.tile_versions, "_ttl", 3600.0)  # type: ignore[attr-defined]
    z, x, y = xyz(105.68, 18.67, 15)
    url = f"/tiles/tile_notify_probe/{z}/{x}/{y}.mvt"
    first = client.get(url)
    assert client.get(url).headers["etag"] == first.headers["etag"]
    # As another process would: plain psycopg, so only the NOTIFY can tell this app.
    with psycopg.connect(libpq_url(database_url(settings)), autocommit=True) as other:
        other.execute("UPDATE layer SET data_version = data_version + 1 WHERE id = %s", (layer_id,))
        other.execute("SELECT pg_notify('iocmap_layer_changed', %s)", (f"{layer_id}:x",))
    etag = first.headers["etag"]
    for _ in range(200):  # the notification is asynchronous: wait for it, boundedly
        etag = client.get(url).headers["etag"]
        if etag != first.headers["etag"]:
            break
        time.sleep(0.05)
    assert etag != first.headers["etag"]
    with seeded.begin() as conn:
        delete_layer(conn, "tile_notify_probe")


@pytest.mark.parametrize("encoding", ["gzip", ""])
@pytest.mark.parametrize("query", ["", "?properties=code", "?properties="])
def test_warm_answer_is_the_cold_answer(
    client: TestClient, encoding: str, query: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first request is answered by the router; the second is a warm hit answered before
    # routing. Same status, bytes and headers, security headers included.
    from geo_api.routers import tiles as tiles_router

    answered: list[bool] = []
    real = tiles_router._warm_hit

    def spy(scope: dict[str, object]) -> object:
        # The first request goes to the router whatever the cache holds; then the real thing.
        hit = real(scope) if answered else None
        answered.append(hit is not None)
        return hit

    monkeypatch.setattr(tiles_router, "_warm_hit", spy)
    z, x, y = xyz(105.70, 18.70, 11)
    url = f"/tiles/admin_communes/{z}/{x}/{y}.mvt{query}"
    hdrs = {"Accept-Encoding": encoding}
    cold = client.get(url, headers=hdrs)
    warm = client.get(url, headers=hdrs)
    assert answered[-1], "the second request should be answered before routing"
    assert cold.status_code == warm.status_code == 200
    assert cold.content == warm.content
    # (The router's answer may name Accept-Encoding twice in Vary: GZipMiddleware adds it.)
    assert {v.strip() for v in cold.headers["vary"].split(",")} == {warm.headers["vary"]}
    keys = (
        "etag",
        "cache-control",
        "content-type",
        "content-encoding",
        "content-length",
        "x-content-type-options",
    )
    assert {k: cold.headers.get(k) for k in keys} == {k: warm.headers.get(k) for k in keys}
    assert warm.headers["x-content-type-options"] == "nosniff"
    assert warm.headers.get("content-encoding") == ("gzip" if encoding else None)


def test_warm_path_still_applies_layer_sensitivity(
    client: TestClient, auth_headers: Callable[..., dict[str, str]]
) -> None:
    planner = auth_headers("planner")
    z, x, y = xyz(105.68, 18.72, 16)
    url = f"/tiles/land_parcels/{z}/{x}/{y}.mvt"
    assert client.get(url, headers=planner).status_code in (200, 204)
    assert client.get(url, headers=planner).status_code in (200, 204)  # now cached
    assert client.get(url).status_code == 401


def test_warm_hits_keep_cors_headers(seeded: Engine, settings: Settings) -> None:
    origin = "http://map.example.org"
    app = create_app(settings.model_copy(update={"cors_origins": [origin]}))
    z, x, y = xyz(105.68, 18.67, 12)
    url = f"/tiles/admin_communes/{z}/{x}/{y}.mvt"
    with TestClient(app) as c:
        cold = c.get(url, headers={"Origin": origin})
        warm = c.get(url, headers={"Origin": origin})
    assert cold.status_code == warm.status_code == 200
    assert cold.headers["access-control-allow-origin"] == origin
    assert warm.headers["access-control-allow-origin"] == origin


# --- datetime filter and source_key -----------------------------------------------------------


def _report_window(engine: Engine) -> tuple[str, str, tuple[int, int, int], int]:
    """An hour-aligned interval (ISO texts), a z0 tile and how many reports fall inside."""
    with engine.connect() as conn:
        lo, hi = conn.execute(
            text(
                "SELECT date_trunc('hour', percentile_disc(0.2) WITHIN GROUP (ORDER BY"
                " observed_at)), date_trunc('hour', percentile_disc(0.5) WITHIN GROUP (ORDER BY"
                " observed_at)) FROM feature f JOIN layer l ON l.id = f.layer_id"
                " WHERE l.slug = 'field_reports'"
            )
        ).one()
        n = conn.execute(
            text(
                "SELECT count(*) FROM feature f JOIN layer l ON l.id = f.layer_id"
                " WHERE l.slug = 'field_reports' AND observed_at BETWEEN :a AND :b"
            ),
            {"a": lo, "b": hi},
        ).scalar_one()
    iso = lambda t: t.isoformat().replace("+00:00", "Z")  # noqa: E731
    return iso(lo), iso(hi), (0, 0, 0), int(n)


def _count(content: bytes, layer: str) -> int:
    feats = mapbox_vector_tile.decode(content)[layer]["features"] if content else []
    return sum(int(f["properties"].get("point_count", 1)) for f in feats)


def test_datetime_filtered_tiles_are_cached_apart(client: TestClient, seeded: Engine) -> None:
    a, b, (z, x, y), n = _report_window(seeded)
    base = f"/tiles/field_reports/{z}/{x}/{y}.mvt"
    filtered_url = f"{base}?datetime={a}/{b}"
    # Filtered first, then the whole layer, then filtered again (now a warm hit): no mix-up.
    filtered = client.get(filtered_url)
    whole = client.get(base)
    again = client.get(filtered_url)
    whole_again = client.get(base)
    assert filtered.status_code == whole.status_code == 200
    assert (
        0 < n == _count(filtered.content, "field_reports") < _count(whole.content, "field_reports")
    )
    assert again.content == filtered.content and whole_again.content == whole.content
    assert filtered.headers["etag"] != whole.headers["etag"]
    assert again.headers["etag"] == filtered.headers["etag"]
    # The same interval written another way is the same tile (same key, same ETag).
    same = client.get(f"{base}?datetime={a.replace('Z', '+00:00').replace('+', '%2B')}/{b}")
    assert same.headers["etag"] == filtered.headers["etag"]
    # An open end.
    tail = client.get(f"{base}?datetime={b}/..")
    assert 0 < _count(tail.content, "field_reports") < _count(whole.content, "field_reports")
    # ETag revalidation of a filtered tile.
    assert (
        client.get(filtered_url, headers={"If-None-Match": again.headers["etag"]}).status_code
        == 304
    )


def test_high_zoom_filtered_tile_has_only_reports_in_the_interval(
    client: TestClient, seeded: Engine
) -> None:
    a, b, _, _ = _report_window(seeded)
    with seeded.connect() as conn:
        lon, lat = conn.execute(
            text(
                "SELECT ST_X(geom), ST_Y(geom) FROM feature f JOIN layer l ON l.id = f.layer_id"
                " WHERE l.slug = 'field_reports' AND observed_at BETWEEN :a AND :b LIMIT 1"
            ),
            {"a": a, "b": b},
        ).one()
    z, x, y = xyz(lon, lat, 15)
    r = client.get(f"/tiles/field_reports/{z}/{x}/{y}.mvt?datetime={a}/{b}")
    assert r.status_code == 200
    feats = mapbox_vector_tile.decode(r.content)["field_reports"]["features"]
    lo, hi = datetime.fromisoformat(a), datetime.fromisoformat(b)
    for f in feats:
        assert lo <= datetime.fromisoformat(f["properties"]["received_at"]) <= hi
        assert f["properties"]["source_key"]


def test_bad_or_unsupported_datetime_is_400(client: TestClient) -> None:
    r = client.get("/tiles/field_reports/0/0/0.mvt?datetime=yesterday")
    assert r.status_code == 400 and "RFC 3339" in r.json()["detail"]
    r = client.get("/tiles/field_reports/0/0/0.mvt?datetime=2026-02-02T00:00:00Z/2026-01-01")
    assert r.status_code == 400 and "ends before it starts" in r.json()["detail"]
    r = client.get("/tiles/hospitals/0/0/0.mvt?datetime=2026-01-01")
    assert r.status_code == 400 and "no time field" in r.json()["detail"]
    assert client.get("/tiles/hospitals.json?datetime=2026-01-01").status_code == 400
    # Warm twice over: the fast path leaves errors to the router, every time.
    assert client.get("/tiles/hospitals/0/0/0.mvt").status_code == 200
    assert client.get("/tiles/hospitals/0/0/0.mvt?datetime=2026-01-01").status_code == 400


def test_filtered_warm_hit_touches_no_database(
    client: TestClient, seeded: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from geo_api.routers import tiles as tiles_router

    a, b, _, _ = _report_window(seeded)
    z, x, y = xyz(105.68, 18.67, 10)
    url = f"/tiles/field_reports/{z}/{x}/{y}.mvt?datetime={a}/{b}&properties=source_key"
    first = client.get(url)
    answered: list[bool] = []
    real_hit = tiles_router._warm_hit

    def spy(scope: dict[str, object]) -> object:
        hit = real_hit(scope)
        answered.append(hit is not None)
        return hit

    monkeypatch.setattr(tiles_router, "_warm_hit", spy)
    again, revalidated, calls = _refetch_counting_queries(client, url, first.headers["etag"])
    assert first.status_code == again.status_code
    assert again.content == first.content and again.headers["etag"] == first.headers["etag"]
    assert revalidated.status_code == 304
    assert calls == []
    assert answered == [True, True], "both should be answered before routing"


def test_off_grid_intervals_are_served_but_not_stored(client: TestClient) -> None:
    cache = client.app.state.tile_cache  # type: ignore[attr-defined]
    before = len(cache)
    urls = [
        f"/tiles/field_reports/0/0/0.mvt?datetime=2026-01-01T00:{m:02d}:13Z/.." for m in range(5)
    ]
    assert all(client.get(u).status_code in (200, 204) for u in urls)
    assert len(cache) == before
    hourly = client.get("/tiles/field_reports/0/0/0.mvt?datetime=2026-01-01T05:00:00Z/..")
    assert hourly.status_code in (200, 204)
    assert len(cache) == before + 1


def test_tilejson_time_extent_and_source_key(client: TestClient, seeded: Engine) -> None:
    doc = client.get("/tiles/field_reports.json").json()
    with seeded.connect() as conn:
        lo, hi = conn.execute(
            text(
                "SELECT min(observed_at), max(observed_at) FROM feature f JOIN layer l"
                " ON l.id = f.layer_id WHERE l.slug = 'field_reports'"
            )
        ).one()
    assert doc["time"]["field"] == "received_at"
    assert doc["time"]["parameter"] == "datetime"
    start, end = (datetime.fromisoformat(t) for t in doc["time"]["extent"])
    assert (start, end) == (lo, hi)
    assert doc["vector_layers"][0]["fields"]["source_key"] == "String"
    assert doc["vector_layers"][0]["feature_key"] == "source_key"
    hosp = client.get("/tiles/hospitals.json").json()
    assert "time" not in hosp
    filtered = client.get("/tiles/field_reports.json?datetime=2026-01-01/..&properties=").json()
    assert filtered["tiles"][0].endswith("?properties=&datetime=2026-01-01%2F..")


def test_source_key_in_tiles_and_sensitive_layers_stay_closed(
    client: TestClient, seeded: Engine, auth_headers: Callable[..., dict[str, str]]
) -> None:
    with seeded.connect() as conn:
        key, lon, lat = conn.execute(
            text(
                "SELECT source_key, ST_X(geom), ST_Y(geom) FROM feature f JOIN layer l"
                " ON l.id = f.layer_id WHERE l.slug = 'hospitals' ORDER BY f.id LIMIT 1"
            )
        ).one()
    z, x, y = xyz(lon, lat, 16)
    feats = mapbox_vector_tile.decode(client.get(f"/tiles/hospitals/{z}/{x}/{y}.mvt").content)
    assert key in {f["properties"].get("source_key") for f in feats["hospitals"]["features"]}
    # Anonymous callers still get nothing of the sensitive layers, filtered or not.
    for slug in ("cameras", "land_parcels"):
        assert client.get(f"/tiles/{slug}/{z}/{x}/{y}.mvt").status_code == 401
        assert client.get(f"/tiles/{slug}/{z}/{x}/{y}.mvt?properties=source_key").status_code == 401
        assert client.get(f"/tiles/{slug}.json").status_code == 401


PNG = "image/png"


def test_png_overview_tiles_are_cached_validated_and_invalidated(
    client: TestClient, seeded: Engine
) -> None:
    spec = LayerSpec(
        slug="png_cache_probe",
        title_vi="Thử ảnh",
        title_en="PNG probe",
        sector="other",
        geometry_type="Polygon",
        property_schema={"type": "object", "properties": {"n": {"type": "integer"}}},
    )
    square = shapely.box(105.675, 18.665, 105.685, 18.675)
    with seeded.begin() as conn:
        layer_id = create_or_update_layer(conn, spec)
        upsert_features(conn, layer_id, [FeatureRow("a", square, {"n": 1})], delete_missing=True)
    try:
        z, x, y = xyz(105.68, 18.67, 13)
        url = f"/tiles/png_cache_probe/{z}/{x}/{y}.png"
        first = client.get(url)
        assert first.status_code == 200
        assert first.headers["content-type"] == PNG
        assert first.content.startswith(b"\x89PNG")
        assert "content-encoding" not in first.headers
        etag = first.headers["etag"]
        # not the vector tile's ETag: a browser never takes one for the other
        assert client.get(f"/tiles/png_cache_probe/{z}/{x}/{y}.mvt").headers["etag"] != etag
        assert client.get(url).content == first.content
        assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
        # a change of the layer: new ETag, new pixels
        with seeded.begin() as conn:
            upsert_features(
                conn,
                layer_id,
                [FeatureRow("a", shapely.box(105.675, 18.665, 105.69, 18.68), {"n": 1})],
            )
        after = client.get(url, headers={"If-None-Match": etag})
        assert after.status_code == 200
        assert after.headers["etag"] != etag
        assert after.content != first.content
        with seeded.begin() as conn:
            upsert_features(conn, layer_id, [], delete_missing=True)
        empty = client.get(url)
        assert empty.status_code == 204 and empty.headers["etag"]
    finally:
        with seeded.begin() as conn:
            delete_layer(conn, "png_cache_probe")


def test_png_tile_errors_and_sensitive_layer(
    client: TestClient, auth_headers: Callable[..., dict[str, str]]
) -> None:
    z, x, y = xyz(105.68, 18.72, 13)
    assert client.get(f"/tiles/nope/{z}/{x}/{y}.png").status_code == 404
    assert client.get("/tiles/admin_communes/2/9/0.png").status_code == 400
    # points have no overview raster
    assert client.get(f"/tiles/hospitals/{z}/{x}/{y}.png").status_code == 400
    # land_parcels is sensitive: closed to anonymous callers, open to a planner
    url = f"/tiles/land_parcels/{z}/{x}/{y}.png"
    assert client.get(url).status_code == 401
    r = client.get(url, headers=auth_headers("planner"))
    assert r.status_code in (200, 204)
    assert client.get(url).status_code == 401  # cached now, and still closed
