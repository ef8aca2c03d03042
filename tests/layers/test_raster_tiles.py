"""PNG overview tiles: the layer's style colours where its polygons are, transparency elsewhere."""

from __future__ import annotations

import math
from collections.abc import Iterator

import cv2
import numpy as np
import pytest
import shapely
from sqlalchemy import Engine

from layers.errors import InvalidInputError
from layers.features import raster_tiles, registry, tiles
from layers.features.bulk import FeatureRow, upsert_features
from layers.features.registry import LayerSpec, LayerStyle, create_or_update_layer, delete_layer

RED = (230, 20, 20, 255)
BLUE = (20, 20, 230, 200)
GREEN = (20, 200, 20, 255)
# A z14 tile over Vinh and two squares well inside it (a few dozen pixels each).
Z = 14
LON, LAT = 105.68, 18.67


def tile_at(lon: float, lat: float, z: int) -> tiles.TileAddress:
    n = 1 << z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return tiles.tile_address(z, x, y)


def pixel(tile: tiles.TileAddress, lon: float, lat: float) -> tuple[int, int]:
    """(column, row) of a point in the tile's 512-px image."""
    n = 1 << tile.z
    fx = (lon + 180) / 360 * n - tile.x
    fy = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n - tile.y
    return int(fx * raster_tiles.TILE_PX), int(fy * raster_tiles.TILE_PX)


def rgba_at(png: bytes, col: int, row: int) -> tuple[int, ...]:
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    b, g, r, a = (int(v) for v in img[row, col])
    return (r, g, b, a)


def decode(png: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    assert img is not None and img.shape == (raster_tiles.TILE_PX, raster_tiles.TILE_PX, 4)
    return img


@pytest.fixture
def probe(
    seeded: Engine,
) -> Iterator[tuple[int, tiles.TileAddress, dict[str, tuple[float, float]]]]:
    """A polygon layer with a red ('a'), a blue ('b') and an unclassed (fill colour) square."""
    tile = tile_at(LON, LAT, Z)
    lon0, lat0, lon1, lat1 = tile.lonlat_bounds()
    w, h = lon1 - lon0, lat1 - lat0
    centres = {
        "a": (lon0 + 0.25 * w, lat0 + 0.25 * h),
        "b": (lon0 + 0.75 * w, lat0 + 0.75 * h),
        "c": (lon0 + 0.25 * w, lat0 + 0.75 * h),
    }
    half = w / 20
    spec = LayerSpec(
        slug="raster_probe",
        title_vi="Thử ảnh lớp",
        title_en="Raster probe",
        sector="other",
        geometry_type="Polygon",
        property_schema={"type": "object", "properties": {"kind": {"type": "string"}}},
        default_style=LayerStyle(
            fill_color=GREEN, color_property="kind", palette={"a": RED, "b": BLUE}
        ),
    )
    rows = [
        FeatureRow(k, shapely.box(x - half, y - half, x + half, y + half), {"kind": k})
        for k, (x, y) in centres.items()
    ]
    with seeded.begin() as conn:
        layer_id = create_or_update_layer(conn, spec)
        upsert_features(conn, layer_id, rows, delete_missing=True)
    yield layer_id, tile, centres
    with seeded.begin() as conn:
        delete_layer(conn, "raster_probe")


def test_png_has_the_style_colours_where_polygons_are(
    seeded: Engine, probe: tuple[int, tiles.TileAddress, dict[str, tuple[float, float]]]
) -> None:
    _, tile, centres = probe
    with seeded.connect() as conn:
        info = registry.get_layer(conn, "raster_probe")
        png = raster_tiles.render_raster(conn, info, tile)
    assert png.startswith(b"\x89PNG")
    img = decode(png)
    assert rgba_at(png, *pixel(tile, *centres["a"])) == RED
    assert rgba_at(png, *pixel(tile, *centres["b"])) == BLUE
    assert rgba_at(png, *pixel(tile, *centres["c"])) == GREEN  # no palette entry: fill colour
    # transparent elsewhere: the tile's centre and its last corner hold no polygon
    assert rgba_at(png, 256, 256)[3] == 0
    assert rgba_at(png, 511, 0)[3] == 0
    # three squares of a tenth of the tile's side: about 3% of it, outlines aside
    covered = float((img[:, :, 3] > 0).mean())
    assert 0.02 < covered < 0.05


def test_empty_tile_and_non_polygon_layer(seeded: Engine) -> None:
    with seeded.connect() as conn:
        parcels = registry.get_layer(conn, "land_parcels")
        # mid-Atlantic: no parcel there
        assert raster_tiles.render_raster(conn, parcels, tiles.tile_address(10, 400, 450)) == b""
        hospitals = registry.get_layer(conn, "hospitals")
        with pytest.raises(InvalidInputError, match="polygon layers only"):
            raster_tiles.render_raster(conn, hospitals, tile_at(LON, LAT, 12))


def test_parcel_tile_is_drawn_in_the_palette_colours(seeded: Engine) -> None:
    with seeded.connect() as conn:
        info = registry.get_layer(conn, "land_parcels")
        lon, lat = conn.exec_driver_sql(
            "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_PointOnSurface(geom) c FROM feature"
            " WHERE layer_id = %(id)s ORDER BY id LIMIT 1) s",
            {"id": info.id},
        ).one()
        tile = tile_at(lon, lat, 13)
        png = raster_tiles.render_raster(conn, info, tile)
    img = decode(png)
    style = info.default_style
    drawn = img[img[:, :, 3] > 0]
    assert len(drawn) > 100
    # below the outline zoom every drawn pixel is one of the style's colours, exactly
    colours = {tuple(c) for c in [style.fill_color, *style.palette.values()]}
    seen = {(int(r), int(g), int(b), int(a)) for b, g, r, a in np.unique(drawn, axis=0)}
    assert seen <= colours
    assert len(seen & {tuple(c) for c in style.palette.values()}) >= 2


def test_png_key_and_etag_are_apart_from_the_vector_ones() -> None:
    from layers.features.tile_cache import CachedTile, TileCache, TileKey

    mvt = TileKey(1, 7, "s", 13, 1, 2, "*")
    png = TileKey(1, 7, "s", 13, 1, 2, "", fmt="png")
    assert mvt.etag() != png.etag() and png.etag().endswith('.png"')
    cache = TileCache(1 << 20)
    cache.put(mvt, CachedTile(b"mvt", None))
    cache.put(png, CachedTile(b"png", None))
    assert cache.get(png) == CachedTile(b"png", None)
    # a layer change drops both
    assert cache.drop_layer(1, keep_version=8) == 2
