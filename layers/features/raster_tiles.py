"""PNG overview tiles of dense polygon layers: the parcel fabric as one image per tile.

At low zooms a million parcels as vector triangles cost the (software) GPU far more than one
textured quad per tile, so the web map draws them from these rasters below its vector zoom.
Colours mirror web_map/src/nativeLayers.js: the palette entry of the feature's
`color_property` value (as text), else the layer's fill colour. Fill only, as the vector
style below its outline zoom (15.5): at a few pixels per parcel an outline would cover most of
the fill and wash its colour out.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import cv2
import numpy as np
import shapely
from sqlalchemy import Connection

from layers.errors import InvalidInputError
from layers.features.registry import LayerInfo
from layers.features.tiles import TileAddress

MEDIA_TYPE = "image/png"
# maplibre measures zoom in 512-px tiles: a 512-px raster tile z/x/y covers the map exactly as
# the vector tile z/x/y does, so one request replaces one.
TILE_PX = 512
# cv2 draws from fixed-point coordinates with this many fractional bits: an eighth of a pixel.
SHIFT = 3
BUFFER_PX = 4  # features this close to the tile are drawn too: edges are not cut short
# Polygons smaller than this fraction of a pixel are left out (their colour would not show).
MIN_SIZE_PX = 0.5
# zlib level 3: a few times faster than 6 for a few percent more bytes, on the cold path.
PNG_LEVEL = 3

# One row: the colour property's text and the WKB (WGS84) of every feature in the tile, projected
# to tile pixels in numpy (a third of the time ST_Transform + ST_AsMVTGeom take). Shapes with
# many vertices (a commune boundary) or reaching out of the tile are clipped and simplified.
_RASTER_SQL = (
    "SELECT array_agg(properties ->> %(prop)s),"
    " array_agg(ST_AsBinary(CASE WHEN ST_NPoints(geom) > 64 OR NOT geom @ ST_MakeEnvelope("
    "%(lon0)s, %(lat0)s, %(lon1)s, %(lat1)s, 4326) THEN ST_Simplify(ST_ClipByBox2D(geom,"
    " ST_MakeEnvelope(%(lon0)s, %(lat0)s, %(lon1)s, %(lat1)s, 4326)), %(tolerance)s, true)"
    " ELSE geom END))"
    " FROM feature WHERE layer_id = %(layer_id)s"
    " AND geom && ST_MakeEnvelope(%(lon0)s, %(lat0)s, %(lon1)s, %(lat1)s, 4326)"
    " AND lod_size >= %(min_deg)s"
)
MAX_LAT = 85.0511287798066


def raster_query(info: LayerInfo, tile: TileAddress) -> tuple[str, dict[str, Any]]:
    """SQL text and bound values fetching one raster tile's features (one row of two arrays)."""
    if "polygon" not in info.geometry_type.lower():
        raise InvalidInputError(
            f"layer '{info.slug}' is a {info.geometry_type} layer; PNG overview tiles are drawn"
            " for polygon layers only (use its .mvt tiles)",
            param="slug",
            i18n="err.raster_tiles.layer_layer_png_overview_tiles",
            layer=info.slug,
            geometry_type=info.geometry_type,
        )
    deg_per_px = 360.0 / (1 << tile.z) / TILE_PX
    lon0, lat0, lon1, lat1 = tile.lonlat_bounds(BUFFER_PX / TILE_PX)
    params: dict[str, Any] = {
        # no colour property: ->> of an empty key is NULL for every feature, the fill colour
        "prop": info.default_style.color_property or "",
        "lon0": lon0,
        "lat0": lat0,
        "lon1": lon1,
        "lat1": lat1,
        "tolerance": deg_per_px / 4,
        "layer_id": info.id,
        "min_deg": deg_per_px * MIN_SIZE_PX,
    }
    return _RASTER_SQL, params


def _rings(wkbs: list[bytes], tile: TileAddress) -> tuple[list[np.ndarray], np.ndarray]:
    """Every polygon ring as int32 (n, 2) fixed-point tile pixels, and the feature it is of."""
    geoms = shapely.from_wkb(np.asarray(wkbs, dtype=object))
    keep = np.flatnonzero(np.isin(shapely.get_type_id(geoms), (3, 6)) & ~shapely.is_empty(geoms))
    if len(keep) == 0:
        return [], np.zeros(0, dtype=np.int64)
    kind, coords, offsets = shapely.to_ragged_array(geoms[keep])
    ring_starts = offsets[0]
    if kind == shapely.GeometryType.POLYGON:
        ring_of_geom = np.repeat(np.arange(len(keep)), np.diff(offsets[1]))
    else:  # MultiPolygon (single polygons promoted)
        poly_of_ring = np.repeat(np.arange(len(offsets[1]) - 1), np.diff(offsets[1]))
        geom_of_poly = np.repeat(np.arange(len(keep)), np.diff(offsets[2]))
        ring_of_geom = geom_of_poly[poly_of_ring]
    # WebMercatorQuad, in 1/2**SHIFT pixels of this tile (y down, as PNG rows go)
    n = float(1 << tile.z)
    scale = float(TILE_PX << SHIFT)
    lat = np.radians(np.clip(coords[:, 1], -MAX_LAT, MAX_LAT))
    px = ((coords[:, 0] + 180.0) / 360.0 * n - tile.x) * scale
    py = ((1.0 - np.arcsinh(np.tan(lat)) / np.pi) / 2.0 * n - tile.y) * scale
    pts = np.rint(np.column_stack((px, py))).astype(np.int32)
    bounds = ring_starts.tolist()
    # Plain slices: np.split costs several times more per ring (tens of thousands of them).
    rings = [pts[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    return rings, keep[ring_of_geom]


def render_png(
    info: LayerInfo, tile: TileAddress, classes: list[str | None], wkbs: list[bytes]
) -> bytes:
    """The PNG of a tile's features (WGS84 WKB), coloured like the vector style; b"" if none."""
    if not wkbs:
        return b""
    style = info.default_style
    rings, feature_of = _rings(wkbs, tile)
    if not rings:
        return b""
    # BGRA, straight (not premultiplied) alpha: what PNG holds and maplibre expects.
    img = np.zeros((TILE_PX, TILE_PX, 4), dtype=np.uint8)
    # One fillPoly per colour: index 0 is the fill colour, then the palette's in order.
    colours = [style.fill_color, *style.palette.values()]
    index = {k: i + 1 for i, k in enumerate(style.palette)}
    colour_of = np.array([index.get(c, 0) if c is not None else 0 for c in classes], np.int64)
    ring_colour = colour_of[feature_of]
    for k, (r, g, b, a) in enumerate(colours):
        group = [rings[i] for i in np.flatnonzero(ring_colour == k).tolist()]
        if group:
            cv2.fillPoly(img, group, (b, g, r, a), lineType=cv2.LINE_8, shift=SHIFT)
    ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, PNG_LEVEL])
    if not ok:  # pragma: no cover - cv2 encodes any uint8 BGRA image
        raise RuntimeError(f"PNG encoding failed for layer '{info.slug}'")
    return bytes(buf)


def render_raster(conn: Connection, info: LayerInfo, tile: TileAddress) -> bytes:
    """Render one PNG tile over a sync connection; zero bytes is an empty tile."""
    sql, params = raster_query(info, tile)
    row = conn.exec_driver_sql(sql, params).one()
    return render_png(info, tile, list(row[0] or ()), [bytes(w) for w in row[1] or ()])


async def render_raster_async(
    fetch_row: Callable[[str, dict[str, Any]], Awaitable[tuple[Any, ...] | None]],
    info: LayerInfo,
    tile: TileAddress,
    draw: Callable[..., Awaitable[bytes]] | None = None,
) -> bytes:
    """render_raster over an async executor; `draw` runs render_png (e.g. in a thread)."""
    sql, params = raster_query(info, tile)
    row = await fetch_row(sql, params)
    classes = list(row[0] or ()) if row else []
    wkbs = [bytes(w) for w in row[1] or ()] if row else []
    if draw is None:
        return render_png(info, tile, classes, wkbs)
    return await draw(render_png, info, tile, classes, wkbs)
