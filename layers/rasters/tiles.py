"""Raster tiles of COG layers: windowed reads (from overviews) into WebMercatorQuad tiles.

Distinct from layers/features/raster_tiles.py, which draws PNG overviews of dense *vector* layers.
COGs are stored in EPSG:3857, so a tile is one windowed, decimated read: no warping.
"""

from __future__ import annotations

import io
import math
import threading
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import rasterio
from PIL import Image
from rasterio.enums import Resampling
from rasterio.windows import Window

from layers.errors import InvalidInputError
from layers.rasters import colormaps
from layers.rasters.store import RasterMeta

MEDIA_TYPE = "image/png"
TILE_SIZE = 256
ORIGIN = 20037508.342789244  # half the WebMercator world width, metres
_local = threading.local()


def open_dataset(path: Path, threaded: bool = False) -> Any:
    """A rasterio dataset for this thread (datasets are not shared between threads).

    `threaded` opens it to decode the blocks of one large read on every core (GDAL's
    NUM_THREADS): for whole-raster query reads, not for tiles (a block or two each).
    """
    cache: dict[str, Any] | None = getattr(_local, "datasets", None)
    if cache is None:
        cache = {}
        _local.datasets = cache
    key = f"{path}|{int(threaded)}"
    ds = cache.get(key)
    if ds is None or ds.closed:
        if len(cache) > 32:
            for old in cache.values():
                old.close()
            cache.clear()
        ds = rasterio.open(path, num_threads="ALL_CPUS") if threaded else rasterio.open(path)
        cache[key] = ds
    return ds


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """WebMercator bounds (minx, miny, maxx, maxy) of a tile."""
    size = 2 * ORIGIN / (1 << z)
    minx = -ORIGIN + x * size
    maxy = ORIGIN - y * size
    return minx, maxy - size, minx + size, maxy


def read_window(
    path: Path,
    meta: RasterMeta,
    bounds: tuple[float, float, float, float],
    width: int,
    height: int,
    bands: list[int] | None = None,
    resampling: Resampling = Resampling.nearest,
) -> tuple[npt.NDArray[Any], npt.NDArray[np.bool_]] | None:
    """Pixels of `bounds` (EPSG:3857) at width x height, with a validity mask; None if outside."""
    a, _, c, _, e, f = meta.transform
    minx, miny, maxx, maxy = bounds
    c0, c1 = (minx - c) / a, (maxx - c) / a
    r0, r1 = (maxy - f) / e, (miny - f) / e
    cc0, cc1 = max(c0, 0.0), min(c1, float(meta.width))
    rr0, rr1 = max(r0, 0.0), min(r1, float(meta.height))
    if cc1 <= cc0 or rr1 <= rr0:
        return None
    ox0 = int(round((cc0 - c0) / (c1 - c0) * width))
    ox1 = int(round((cc1 - c0) / (c1 - c0) * width))
    oy0 = int(round((rr0 - r0) / (r1 - r0) * height))
    oy1 = int(round((rr1 - r0) / (r1 - r0) * height))
    if ox1 <= ox0 or oy1 <= oy0:
        return None
    idx = bands or list(range(1, meta.bands + 1))
    ds = open_dataset(path)
    part = ds.read(
        idx,
        window=Window(cc0, rr0, cc1 - cc0, rr1 - rr0),
        out_shape=(len(idx), oy1 - oy0, ox1 - ox0),
        resampling=resampling,
    )
    nodata = meta.nodata
    out = np.full((len(idx), height, width), nodata if nodata is not None else 0, part.dtype)
    out[:, oy0:oy1, ox0:ox1] = part
    valid = np.zeros((height, width), bool)
    inner = np.ones(part.shape[1:], bool)
    for b in range(part.shape[0]):
        if nodata is not None:
            inner &= part[b] != nodata
        if part.dtype.kind == "f":
            inner &= np.isfinite(part[b])
    valid[oy0:oy1, ox0:ox1] = inner
    return out, valid


def parse_rescale(raw: str | None, meta: RasterMeta) -> tuple[float, float]:
    """`rescale=lo,hi` (or the layer's default); InvalidInputError says what is wrong."""
    if raw is None or raw == "":
        if meta.rescale is not None:
            return meta.rescale
        s = meta.statistics[0]
        return (s.min or 0.0, s.max or 1.0)
    parts = raw.split(",")
    try:
        lo, hi = (float(p) for p in parts)
    except ValueError as exc:
        raise InvalidInputError(
            f"rescale must be two numbers 'min,max'; got {raw!r}",
            param="rescale",
            i18n="err.rasters_tiles.rescale_must_be_two_numbers",
            raw=raw,
        ) from exc
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        raise InvalidInputError(
            f"rescale needs min < max; got {raw!r}",
            param="rescale",
            i18n="err.rasters_tiles.rescale_needs_min_max_got",
            raw=raw,
        )
    return lo, hi


def parse_colormap(raw: str | None, meta: RasterMeta) -> str:
    """`colormap=name` (or the layer's default), one of analytics.colormaps.COLORMAPS."""
    name = raw or meta.colormap
    if name not in colormaps.COLORMAPS:
        raise InvalidInputError(
            f"colormap must be one of {', '.join(colormaps.COLORMAPS)}; got {name!r}",
            param="colormap",
            i18n="err.rasters_tiles.colormap_must_be_one_got",
            items=", ".join(colormaps.COLORMAPS),
            name=name,
        )
    if name == "rgb" and meta.bands < 3:
        raise InvalidInputError(
            "colormap 'rgb' needs a raster with 3 bands",
            param="colormap",
            i18n="err.rasters_tiles.colormap_rgb_needs_raster_with",
        )
    return name


def _png(rgba: npt.NDArray[np.uint8]) -> bytes:
    buf = io.BytesIO()
    # Level 1: tiles are small and drawn on demand; deflate effort buys little here.
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def render_tile(
    path: Path,
    meta: RasterMeta,
    z: int,
    x: int,
    y: int,
    colormap: str,
    rescale: tuple[float, float],
) -> bytes:
    """One coloured 256-px PNG tile; b'' when the tile is outside the raster or all nodata."""
    bands = [1, 2, 3] if colormap == "rgb" else [1]
    got = read_window(path, meta, tile_bounds(z, x, y), TILE_SIZE, TILE_SIZE, bands)
    if got is None or not got[1].any():
        return b""
    data, valid = got
    if colormap == "rgb":
        rgba = colormaps.rgb_to_rgba(data, valid, *rescale)
    else:
        rgba = colormaps.to_rgba(data[0], valid, rescale[0], rescale[1], colormap)
    return _png(rgba)


def render_terrain(path: Path, meta: RasterMeta, z: int, x: int, y: int) -> bytes:
    """One terrain-RGB tile (nodata at sea level); b'' when outside the raster."""
    got = read_window(
        path, meta, tile_bounds(z, x, y), TILE_SIZE, TILE_SIZE, [1], Resampling.bilinear
    )
    if got is None:
        return b""
    data, valid = got
    return _png(colormaps.terrain_rgb(data[0], valid))


def native_zoom(meta: RasterMeta) -> int:
    """The zoom whose tile pixels match the raster's pixels (its natural max zoom)."""
    res = abs(meta.transform[0])
    return max(0, min(22, round(math.log2(2 * ORIGIN / TILE_SIZE / res))))


def tilejson(meta: RasterMeta, name: str, url: str, terrain_url: str | None) -> dict[str, Any]:
    """TileJSON 3.0 of a raster layer, with its legend, defaults and statistics."""
    lo, hi = meta.rescale or (meta.statistics[0].min or 0.0, meta.statistics[0].max or 1.0)
    doc: dict[str, Any] = {
        "tilejson": "3.0.0",
        "name": name,
        "kind": "raster",
        "tiles": [url],
        "tileSize": TILE_SIZE,
        "minzoom": 0,
        "maxzoom": native_zoom(meta) + 2,
        "bounds": list(meta.bounds),
        "center": [
            (meta.bounds[0] + meta.bounds[2]) / 2,
            (meta.bounds[1] + meta.bounds[3]) / 2,
            max(0, native_zoom(meta) - 5),
        ],
        "raster": {
            "role": meta.role,
            "bands": meta.bands,
            "dtype": meta.dtype,
            "nodata": meta.nodata,
            "units": meta.units,
            "resolution_m": meta.resolution_m,
            "colormap": meta.colormap,
            "rescale": [lo, hi],
            "statistics": [s.model_dump() for s in meta.statistics],
            "legend": colormaps.legend(meta.colormap, lo, hi) if meta.colormap != "rgb" else [],
        },
    }
    if terrain_url is not None:
        doc["terrain"] = {
            "tiles": [terrain_url],
            "encoding": "terrain-rgb",
            "decoder": {"rScaler": 6553.6, "gScaler": 25.6, "bScaler": 0.1, "offset": -10000},
        }
    return doc
