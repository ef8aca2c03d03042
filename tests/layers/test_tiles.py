"""Tile SQL against the seeded demo: contents, clustering, property selection, byte budget."""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
from datetime import datetime
from typing import Any

import mapbox_vector_tile
import pytest
import shapely
from shapely.geometry import box
from sqlalchemy import Connection, Engine, text

from layers.errors import InvalidInputError
from layers.features import registry, tiles

VINH = (105.68, 18.67)


def tile_at(lon: float, lat: float, z: int) -> tiles.TileAddress:
    import math

    n = 1 << z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return tiles.tile_address(z, x, y)


def render(
    conn: Connection,
    info: registry.LayerInfo,
    tile: tiles.TileAddress,
    props: tuple[str, ...] | None,
    max_bytes: int = 500_000,
    when: tiles.TimeFilter | None = None,
) -> bytes:
    """The API's render path (render_tile_async), fed by this test's connection."""

    async def fetch(sql: str, params: dict[str, Any]) -> Any:
        return conn.exec_driver_sql(sql, params).scalar_one()

    # On a thread of its own: a browser test's Playwright may keep a loop running on this one.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(
            asyncio.run, tiles.render_tile_async(fetch, info, tile, props, max_bytes, when)
        ).result()


def decode(data: bytes, layer: str) -> list[dict[str, object]]:
    if not data:
        return []
    doc = mapbox_vector_tile.decode(data)
    return list(doc[layer]["features"]) if layer in doc else []


def test_tile_address_validation() -> None:
    assert tiles.tile_address(3, 7, 0) == tiles.TileAddress(3, 7, 0)
    with pytest.raises(InvalidInputError, match="between 0 and 7"):
        tiles.tile_address(3, 8, 0)
    with pytest.raises(InvalidInputError, match="zoom"):
        tiles.tile_address(40, 0, 0)


def test_lonlat_bounds_match_morecantile() -> None:
    import morecantile

    tms = morecantile.tms.get("WebMercatorQuad")
    t = tile_at(*VINH, 14)
    ref = tms.bounds(morecantile.Tile(t.x, t.y, t.z))
    assert t.lonlat_bounds() == pytest.approx((ref.left, ref.bottom, ref.right, ref.top), abs=1e-9)
    xy = tms.xy_bounds(morecantile.Tile(t.x, t.y, t.z))
    assert t.xy_bounds() == pytest.approx((xy.left, xy.bottom, xy.right, xy.top), abs=1e-6)


def test_parse_properties(seeded: Engine) -> None:
    with seeded.connect() as conn:
        info = registry.get_layer(conn, "land_parcels")
    assert tiles.parse_properties(info, None) is None
    assert tiles.parse_properties(info, "") == ()
    assert tiles.parse_properties(info, "MaXa, DienTich,MaXa") == ("MaXa", "DienTich")
    with pytest.raises(InvalidInputError, match="no property 'nope'"):
        tiles.parse_properties(info, "MaXa,nope")


def _parcel_tile(conn, z: int) -> tuple[tiles.TileAddress, object]:  # type: ignore[no-untyped-def]
    # Centre the test on where parcels are, so the tile is not empty.
    lon, lat = conn.execute(
        text(
            "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(ST_Collect(geom)) c FROM feature f"
            " JOIN layer l ON l.id = f.layer_id WHERE l.slug = 'land_parcels'"
            " AND f.id = (SELECT min(f2.id) FROM feature f2 WHERE f2.layer_id = l.id)) s"
        )
    ).one()
    return tile_at(lon, lat, z), (lon, lat)


def test_high_zoom_tile_has_exactly_the_parcels_it_touches(seeded: Engine) -> None:
    import geopandas as gpd

    with seeded.connect() as conn:
        info = registry.get_layer(conn, "land_parcels")
        tile, _ = _parcel_tile(conn, 16)
        data = render(conn, info, tile, ("MaXa", "DienTich"))
        gdf = gpd.read_postgis(
            text("SELECT id, geom FROM feature WHERE layer_id = :l"),
            conn,
            params={"l": info.id},
            geom_col="geom",
        )
    feats = decode(data, "land_parcels")
    got = {int(f["id"]) for f in feats}  # type: ignore[call-overload]
    m = gdf.to_crs(3857)
    minx, miny, maxx, maxy = tile.xy_bounds()
    inner = set(m[m.intersects(box(minx, miny, maxx, maxy))]["id"].astype(int))
    pad = (maxx - minx) * tiles.BUFFER / tiles.EXTENT
    outer = set(
        m[m.intersects(box(minx - pad, miny - pad, maxx + pad, maxy + pad))]["id"].astype(int)
    )
    assert inner, "the test tile should contain parcels"
    assert inner <= got <= outer
    # No polygon lying wholly in the buffer: a map clips each tile's fills to the tile. (The
    # index compares float4 boxes, rounded outwards: ~1e-5 degrees of slack.)
    eps = 2e-5
    lon0, lat0, lon1, lat1 = tile.lonlat_bounds()
    lon0, lat0, lon1, lat1 = lon0 - eps, lat0 - eps, lon1 + eps, lat1 + eps
    bounds = gdf.set_index("id").loc[sorted(got)].bounds
    assert (
        (bounds.minx <= lon1)
        & (bounds.maxx >= lon0)
        & (bounds.miny <= lat1)
        & (bounds.maxy >= lat0)
    ).all()
    assert all(set(f["properties"]) <= {"MaXa", "DienTich"} for f in feats)  # type: ignore[call-overload]
    assert any("DienTich" in f["properties"] for f in feats)  # type: ignore[call-overload]


def test_low_zoom_drops_small_parcels_and_respects_budget(seeded: Engine) -> None:
    with seeded.connect() as conn:
        info = registry.get_layer(conn, "land_parcels")
        tile16, _ = _parcel_tile(conn, 16)
        low = render(conn, info, tile_at(*_parcel_tile(conn, 8)[1], 8), None)  # type: ignore[misc]
        high = render(conn, info, tile16, None)
        capped = render(conn, info, _parcel_tile(conn, 13)[0], None, max_bytes=2_000)
    assert len(decode(low, "land_parcels")) < len(decode(high, "land_parcels")) or not low
    assert len(capped) <= 2_000


def test_points_cluster_at_low_zoom_and_counts_add_up(seeded: Engine) -> None:
    with seeded.connect() as conn:
        info = registry.get_layer(conn, "schools")
        total = conn.execute(
            text("SELECT count(*) FROM feature WHERE layer_id = :l"), {"l": info.id}
        ).scalar_one()
        data = render(conn, info, tiles.tile_address(0, 0, 0), ("name",))
        hi = render(conn, info, tile_at(*VINH, 16), ("name",))
    feats = decode(data, "schools")
    clusters = [f for f in feats if f["properties"].get("cluster")]  # type: ignore[union-attr]
    assert clusters, "schools should cluster at zoom 0"
    counted = sum(int(f["properties"].get("point_count", 1)) for f in feats)  # type: ignore[union-attr]
    assert counted == total
    assert all("cluster" not in f["properties"] for f in decode(hi, "schools"))  # type: ignore[operator]


def test_admin_polygons_are_simplified_at_low_zoom(seeded: Engine) -> None:
    with seeded.connect() as conn:
        info = registry.get_layer(conn, "admin_communes")
        n = conn.execute(
            text("SELECT count(*) FROM feature WHERE layer_id = :l"), {"l": info.id}
        ).scalar_one()
        z7 = render(conn, info, tile_at(*VINH, 7), ("code", "name"))
    feats = decode(z7, "admin_communes")
    assert 0 < len(feats) <= n
    assert len(z7) < 500_000
    assert shapely.Point(0, 0) is not None


def _pixel_deg(z: int) -> float:
    return 360.0 / (1 << z) / 256


def test_low_zoom_keeps_exactly_the_shapes_that_cover_a_pixel(seeded: Engine) -> None:
    # Independent of the SQL: bbox sizes by shapely, the rule written out again here.
    import geopandas as gpd

    z = 12
    with seeded.connect() as conn:
        info = registry.get_layer(conn, "land_parcels")
        tile, _ = _parcel_tile(conn, z)
        data = render(conn, info, tile, ())
        gdf = gpd.read_postgis(
            text("SELECT id, geom FROM feature WHERE layer_id = :l"),
            conn,
            params={"l": info.id},
            geom_col="geom",
        )
    b = gdf.geometry.bounds
    w, h = b.maxx - b.minx, b.maxy - b.miny
    size = ((w * h) ** 0.5).combine((w / 4).combine(h / 4, max), max)
    big = gdf[size >= _pixel_deg(z)]
    assert 0 < len(big) < len(gdf), "the demo should have parcels on both sides of the line"
    got = {int(f["id"]) for f in decode(data, "land_parcels")}  # type: ignore[call-overload]
    lon0, lat0, lon1, lat1 = tile.lonlat_bounds()
    inside = set(big[big.within(box(lon0, lat0, lon1, lat1))]["id"].astype(int))
    lon0, lat0, lon1, lat1 = tile.lonlat_bounds(tiles.BUFFER / tiles.EXTENT)
    near = set(big[big.intersects(box(lon0, lat0, lon1, lat1))]["id"].astype(int))
    assert inside <= got <= near


def test_z14_drops_specks_and_z15_keeps_every_parcel(seeded: Engine) -> None:
    # Specks (under a pixel at z14), a parcel just over it and a long thin strip are added next
    # to the demo's parcels; the rule is computed again here from shapely bboxes.
    import geopandas as gpd

    px = _pixel_deg(14)
    assert tiles.MIN_SIZE_PX_BY_ZOOM[14] == 1.0
    assert all(tiles.MIN_SIZE_PX_BY_ZOOM[z] == 0.0 for z in range(15, tiles.MAX_ZOOM + 1))
    with seeded.connect() as conn:
        info = registry.get_layer(conn, "land_parcels")
        _, (lon, lat) = _parcel_tile(conn, 14)
        shapes = [  # (dx, dy, width, height) in z14 pixels
            (0.0, 0.0, 0.3, 0.3),
            (0.5, 0.0, 0.9, 0.9),
            (1.0, 0.5, 0.6, 0.2),
            (2.0, 0.0, 1.1, 1.1),
            (4.0, 0.0, 4.5, 0.05),  # long and thin: a quarter of its length covers a pixel
        ]
        added = [
            conn.execute(
                text(
                    "INSERT INTO feature (layer_id, geom) VALUES (:l,"
                    " ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)) RETURNING id"
                ),
                {
                    "l": info.id,
                    "x0": lon + dx * px,
                    "y0": lat + dy * px,
                    "x1": lon + (dx + w) * px,
                    "y1": lat + (dy + h) * px,
                },
            ).scalar_one()
            for dx, dy, w, h in shapes
        ]
        gdf = gpd.read_postgis(
            text("SELECT id, geom FROM feature WHERE layer_id = :l"),
            conn,
            params={"l": info.id},
            geom_col="geom",
        )
        got: dict[int, set[int]] = {}
        tile_of: dict[int, tiles.TileAddress] = {}
        for z in (14, 15):
            tile_of[z] = tile_at(lon + 0.5 * px, lat + 0.5 * px, z)
            data = render(conn, info, tile_of[z], ())
            got[z] = {int(f["id"]) for f in decode(data, "land_parcels")}  # type: ignore[call-overload]
        conn.rollback()
    b = gdf.geometry.bounds
    w, h = b.maxx - b.minx, b.maxy - b.miny
    size = ((w * h) ** 0.5).combine((w / 4).combine(h / 4, max), max)
    specks = set(gdf[size < px]["id"].astype(int)) & set(added)
    assert specks == set(added[:3])
    for z, keep in ((14, gdf[size >= px]), (15, gdf)):
        lon0, lat0, lon1, lat1 = tile_of[z].lonlat_bounds()
        inside = set(keep[keep.within(box(lon0, lat0, lon1, lat1))]["id"].astype(int))
        lon0, lat0, lon1, lat1 = tile_of[z].lonlat_bounds(tiles.BUFFER / tiles.EXTENT)
        near = set(keep[keep.intersects(box(lon0, lat0, lon1, lat1))]["id"].astype(int))
        assert inside <= got[z] <= near, z
    assert set(added[3:]) <= got[14] and not specks & got[14]
    assert set(added) <= got[15]


def test_tile_size_sql_matches_the_lod_column_and_indexes_of_0008() -> None:
    # The planner uses those indexes only if the query tests the column they test, and the
    # trigger must compute the very measure the tile query means.
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "alembic" / "versions" / "0008_lod_size.py"
    spec = importlib.util.spec_from_file_location("mig_0008", path)
    assert spec is not None and spec.loader is not None
    mig = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mig)
    assert mig.TILE_SIZE_SQL == tiles.TILE_SIZE_SQL
    assert mig.LOD_SIZE_COLUMN == tiles.LOD_SIZE_COLUMN == tiles.feature.c.lod_size.name
    assert sorted(float(v) for v in mig.LOD_INDEX_MIN_DEG.values()) == sorted(
        tiles.LOD_INDEX_MIN_DEG
    )
    assert {z: _pixel_deg(z) for z in mig.LOD_INDEX_MIN_DEG} == {
        z: float(v) for z, v in mig.LOD_INDEX_MIN_DEG.items()
    }


def test_every_writer_stores_the_tile_size(seeded: Engine) -> None:
    # Seeded rows, plain INSERTs and geometry UPDATEs all get lod_size (trigger of 0008).
    mismatch = (
        "SELECT count(*) FROM feature WHERE NOT coalesce("
        "abs(lod_size - feature_lod_size(geom)) <= 1e-12, false)"
    )
    with seeded.connect() as conn:
        assert conn.execute(text(mismatch)).scalar_one() == 0
        layer_id = registry.get_layer(conn, "land_parcels").id
        fid = conn.execute(
            text(
                "INSERT INTO feature (layer_id, geom) VALUES (:l, ST_MakeEnvelope("
                "105, 18, 105.004, 18.001, 4326)) RETURNING id"
            ),
            {"l": layer_id},
        ).scalar_one()
        get = text("SELECT lod_size FROM feature WHERE layer_id = :l AND id = :i")
        assert conn.execute(get, {"l": layer_id, "i": fid}).scalar_one() == pytest.approx(0.002)
        conn.execute(
            text(
                "UPDATE feature SET geom = ST_MakeEnvelope(105, 18, 105.04, 18.01, 4326)"
                " WHERE layer_id = :l AND id = :i"
            ),
            {"l": layer_id, "i": fid},
        )
        assert conn.execute(get, {"l": layer_id, "i": fid}).scalar_one() == pytest.approx(0.02)
        conn.rollback()


def test_low_zoom_query_reads_only_big_features_through_the_partial_index(
    seeded: Engine,
) -> None:
    with seeded.connect() as conn:
        info = registry.get_layer(conn, "land_parcels")
        tile, _ = _parcel_tile(conn, 12)
        sql, params = tiles.tile_query(info, tile, None, tiles.initial_plan(info, 12))
        conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        plan = "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + sql, params))
        # The partition's own copies of the partial indexes carry generated names.
        lod = conn.execute(
            text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " WHERE i.inhparent IN ('ix_feature_geom_lod12'::regclass,"
                " 'ix_feature_geom_lod10'::regclass)"
            )
        ).scalars()
    assert any(re.search(rf"\b{re.escape(name)}\b", plan) for name in lod), plan


# --- time filter and feature identity ---------------------------------------------------------


def _hour_interval(conn, layer_id: int) -> tuple[datetime, datetime]:  # type: ignore[no-untyped-def]
    """An hour-aligned interval holding about the middle third of the layer's features."""
    lo, hi = conn.execute(
        text(
            "SELECT percentile_disc(0.33) WITHIN GROUP (ORDER BY observed_at),"
            " percentile_disc(0.66) WITHIN GROUP (ORDER BY observed_at)"
            " FROM feature WHERE layer_id = :l"
        ),
        {"l": layer_id},
    ).one()
    return lo.replace(minute=0, second=0, microsecond=0), hi.replace(
        minute=0, second=0, microsecond=0
    )


def test_time_filtered_tile_counts_exactly_the_features_in_the_interval(seeded: Engine) -> None:
    with seeded.connect() as conn:
        info = registry.get_layer(conn, "field_reports")
        start, end = _hour_interval(conn, info.id)
        expected = conn.execute(
            text(
                "SELECT count(*) FROM feature WHERE layer_id = :l AND observed_at BETWEEN :a AND :b"
            ),
            {"l": info.id, "a": start, "b": end},
        ).scalar_one()
        total = conn.execute(
            text("SELECT count(*) FROM feature WHERE layer_id = :l"), {"l": info.id}
        ).scalar_one()
        when = tiles.parse_time_filter(info, f"{start.isoformat()}/{end.isoformat()}")
        whole = render(conn, info, tiles.tile_address(0, 0, 0), ())
        part = render(conn, info, tiles.tile_address(0, 0, 0), (), when=when)
        after = tiles.parse_time_filter(info, f"{end.isoformat()}/..")
        tail = render(conn, info, tiles.tile_address(0, 0, 0), (), when=after)

    def counted(data: bytes) -> int:
        return sum(
            int(f["properties"].get("point_count", 1))  # type: ignore[union-attr]
            for f in decode(data, "field_reports")
        )

    assert 0 < expected < total
    assert counted(whole) == total
    assert counted(part) == expected
    assert 0 < counted(tail) < total


def test_time_filtered_high_zoom_tile_has_only_features_in_the_interval(seeded: Engine) -> None:
    with seeded.connect() as conn:
        info = registry.get_layer(conn, "field_reports")
        start, end = _hour_interval(conn, info.id)
        lon, lat = conn.execute(
            text(
                "SELECT ST_X(geom), ST_Y(geom) FROM feature WHERE layer_id = :l"
                " AND observed_at BETWEEN :a AND :b ORDER BY id LIMIT 1"
            ),
            {"l": info.id, "a": start, "b": end},
        ).one()
        tile = tile_at(lon, lat, 14)
        when = tiles.TimeFilter(start, end)
        data = render(conn, info, tile, ("received_at", "source_key"), when=when)
    feats = decode(data, "field_reports")
    assert feats
    for f in feats:
        props = f["properties"]
        assert set(props) == {"received_at", "source_key"}  # type: ignore[arg-type]
        t = datetime.fromisoformat(str(props["received_at"]))  # type: ignore[index]
        assert start <= t <= end


def test_parse_time_filter(seeded: Engine) -> None:
    with seeded.connect() as conn:
        reports = registry.get_layer(conn, "field_reports")
        hospitals = registry.get_layer(conn, "hospitals")
    assert tiles.parse_time_filter(reports, None) is None
    assert tiles.parse_time_filter(reports, "") is None
    a = tiles.parse_time_filter(reports, "2026-02-01T00:00:00Z/2026-02-02T00:00:00Z")
    b = tiles.parse_time_filter(reports, "2026-02-01T07:00:00+07:00/2026-02-02T00:00:00+00:00")
    assert a is not None and b is not None and a.key == b.key and a.cacheable
    day = tiles.parse_time_filter(reports, "2026-02-01")  # a whole day, inclusive
    assert day is not None and day.cacheable
    assert day.end is not None and day.end.isoformat().endswith("23:59:59.999999+00:00")
    open_end = tiles.parse_time_filter(reports, "2026-02-01T00:00:00Z/..")
    assert open_end is not None and open_end.end is None and open_end.cacheable
    assert open_end.key != a.key
    odd = tiles.parse_time_filter(reports, "2026-02-01T00:17:00Z/..")
    assert odd is not None and not odd.cacheable
    with pytest.raises(InvalidInputError, match="no time field"):
        tiles.parse_time_filter(hospitals, "2026-02-01")
    for bad in ("yesterday", "2026-02-01T00:00:00Z/2026-01-01T00:00:00Z", "../.."):
        with pytest.raises(InvalidInputError) as exc:
            tiles.parse_time_filter(reports, bad)
        assert exc.value.context.get("param") == "datetime"


def test_tiles_carry_source_key_unless_the_layer_has_one(seeded: Engine) -> None:
    with seeded.connect() as conn:
        info = registry.get_layer(conn, "hospitals")
        keys = dict(
            conn.execute(
                text("SELECT id, source_key FROM feature WHERE layer_id = :l"), {"l": info.id}
            ).all()
        )
        lon, lat = conn.execute(
            text("SELECT ST_X(geom), ST_Y(geom) FROM feature WHERE layer_id = :l ORDER BY id"),
            {"l": info.id},
        ).first()  # type: ignore[misc]
        tile = tile_at(lon, lat, 14)
        every = decode(render(conn, info, tile, None), "hospitals")
        chosen = decode(render(conn, info, tile, ("source_key", "name")), "hospitals")
        plain = decode(render(conn, info, tile, ("name",)), "hospitals")
    assert every and chosen and plain
    for f in every + chosen:
        assert f["properties"]["source_key"] == keys[int(f["id"])]  # type: ignore[index, call-overload]
    assert all(set(f["properties"]) == {"source_key", "name"} for f in chosen)  # type: ignore[call-overload]
    assert all("source_key" not in f["properties"] for f in plain)  # type: ignore[operator]
    assert tiles.parse_properties(info, "source_key") == ("source_key",)
    # A layer with its own `source_key` property keeps it; nothing is added.
    own = info.model_copy(
        update={
            "property_schema": {
                "type": "object",
                "properties": {"source_key": {"type": "string"}},
            }
        }
    )
    sql, params = tiles.tile_query(own, tile, None, tiles.initial_plan(own, 14))
    assert "source_key" not in params.values()


def test_tile_cache_bounds_filtered_entries_per_layer() -> None:
    from layers.features.tile_cache import CachedTile, TileCache, TileKey

    cache = TileCache(10_000_000, max_filtered_per_layer=3)
    plain = TileKey(1, 1, "s", 10, 1, 1, "*")
    cache.put(plain, CachedTile.of(b"plain"))
    for i in range(5):
        cache.put(TileKey(1, 1, "s", 10, 1, 1, "*", f"@{i}~.."), CachedTile.of(b"t%d" % i))
    cache.put(TileKey(2, 1, "s", 10, 1, 1, "*", "@0~.."), CachedTile.of(b"other"))
    assert cache.filtered_count(1) == 3 and cache.filtered_count(2) == 1
    assert cache.get(plain) is not None  # never pushed out by the filtered ones
    assert cache.get(TileKey(1, 1, "s", 10, 1, 1, "*", "@0~..")) is None  # the oldest went
    assert cache.get(TileKey(1, 1, "s", 10, 1, 1, "*", "@4~.."))
    assert len(cache) == 5
    assert cache.drop_layer(1) == 4 and cache.filtered_count(1) == 0
    assert plain.etag() != TileKey(1, 1, "s", 10, 1, 1, "*", "@0~..").etag()


def _rings(feature: dict[str, object]) -> list[list[tuple[float, float]]]:
    geom = feature["geometry"]
    assert isinstance(geom, dict)
    polys = [geom["coordinates"]] if geom["type"] == "Polygon" else geom["coordinates"]
    return [[tuple(p) for p in ring] for poly in polys for ring in poly]


@pytest.mark.parametrize("z", [14, 15, 16])
def test_direct_path_draws_what_st_asmvtgeom_draws(
    seeded: Engine, z: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shapes inside a z14+ tile skip ST_AsMVTGeom: same features, properties and ring
    orientation, every vertex within one extent unit of what ST_AsMVTGeom gives."""
    with seeded.connect() as conn:
        info = registry.get_layer(conn, "land_parcels")
        tile, _ = _parcel_tile(conn, z)
        direct = decode(render(conn, info, tile, None), "land_parcels")
        monkeypatch.setattr(tiles, "DIRECT_MIN_ZOOM", 99)
        reference = decode(render(conn, info, tile, None), "land_parcels")
    assert reference, "the test tile should hold parcels"
    by_id = {f["id"]: f for f in reference}
    assert sorted(by_id) == sorted(f["id"] for f in direct)  # type: ignore[type-var]
    for f in direct:
        ref = by_id[f["id"]]
        assert f["properties"] == ref["properties"]
        got, want = _rings(f), _rings(ref)
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            # Same orientation (MVT's outer/inner ring rule) and the same vertices, up to one
            # unit of rounding; a ring may start at another vertex.
            assert shapely.LinearRing(g).is_ccw == shapely.LinearRing(w).is_ccw
            assert shapely.hausdorff_distance(shapely.LineString(g), shapely.LineString(w)) <= 1.0
