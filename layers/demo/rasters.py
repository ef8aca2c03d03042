"""Synthetic demo rasters (issue 20): a DEM of Nghệ An and a 1-in-100-year flood along the lower Cả.

Deterministic (fixed seeds), generated at seed time so the repository carries no pixels.
The Cả centreline below is an approximation drawn through the communes the river passes
(Mường Xén … Tương Dương, Con Cuông, Anh Sơn, Đô Lương, Nam Đàn, Bến Thủy, Cửa Hội): it gives
the synthetic valley a plausible course and is not survey data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely
from pyproj import Transformer
from rasterio import features
from rasterio.transform import Affine, from_origin
from scipy import ndimage

from layers.demo.boundaries import load_province

CA_RIVER_LONLAT: tuple[tuple[float, float], ...] = (
    (104.02, 19.43),
    (104.10, 19.38),
    (104.25, 19.30),
    (104.39, 19.24),
    (104.62, 19.14),
    (104.86, 19.04),
    (105.03, 18.91),
    (105.18, 18.94),
    (105.30, 18.89),
    (105.40, 18.80),
    (105.48, 18.72),
    (105.60, 18.61),
    (105.705, 18.645),
    (105.74, 18.70),
    (105.765, 18.765),
)
GENERATOR = "synthetic-v1"
NODATA = -9999.0
_TO_3857 = Transformer.from_crs(4326, 3857, always_xy=True)


@dataclass
class DemoRaster:
    """A generated raster on an EPSG:3857 grid."""

    values: npt.NDArray[np.float32]
    transform: Affine
    nodata: float


def ca_river() -> shapely.LineString:
    """The approximate Cả centreline (WGS84)."""
    return shapely.LineString(CA_RIVER_LONLAT)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    """Value noise: a coarse random grid, smoothly upsampled to `shape` (about -1..1)."""
    ch = max(2, shape[0] // cells + 2)
    cw = max(2, shape[1] // cells + 2)
    coarse = rng.standard_normal((ch, cw)).astype(np.float32)
    out = ndimage.zoom(coarse, (shape[0] / ch * 1.0001, shape[1] / cw * 1.0001), order=3)
    cropped: np.ndarray = out[: shape[0], : shape[1]]
    return cropped


def _grid(res_m: float) -> tuple[Affine, int, int, float]:
    """The EPSG:3857 grid covering the province at about res_m metres on the ground."""
    xmin, ymin, xmax, ymax = load_province().geometry.bounds
    lat_mid = (ymin + ymax) / 2
    res = res_m / math.cos(math.radians(lat_mid))
    (x0, x1), (y0, y1) = _TO_3857.transform([xmin - 0.01, xmax + 0.01], [ymin - 0.01, ymax + 0.01])
    width, height = int(math.ceil((x1 - x0) / res)), int(math.ceil((y1 - y0) / res))
    return from_origin(x0, y1, res, res), width, height, res


def _in_mercator(geom: shapely.Geometry) -> shapely.Geometry:
    return shapely.transform(
        geom, lambda xy: np.column_stack(_TO_3857.transform(xy[:, 0], xy[:, 1]))
    )


def generate_dem(res_m: float = 30.0) -> tuple[DemoRaster, DemoRaster]:
    """The synthetic DEM and the 1-in-100-year flood depth along the lower Cả (same grid)."""
    transform, width, height, res = _grid(res_m)
    # Work at a coarse step (~240 m) for the large forms, then refine with fine noise.
    step = max(1, int(round(240.0 / res_m)))
    ch, cw = math.ceil(height / step), math.ceil(width / step)
    coarse_t = transform * Affine.scale(step)
    rng = np.random.default_rng(40)
    cols = np.arange(cw)
    rows = np.arange(ch)
    xs = coarse_t.c + (cols + 0.5) * coarse_t.a
    ys = coarse_t.f + (rows + 0.5) * coarse_t.e
    lon = np.degrees(xs / 6378137.0)
    lat = np.degrees(np.arctan(np.sinh(ys / 6378137.0)))
    LON, LAT = np.meshgrid(lon, lat)
    # Distance inland from a coastline running NNW through Cửa Lò: 0 at the sea.
    inland = np.clip((105.80 + (LAT - 18.8) * 0.35 - LON) / 1.75, 0.0, 1.2)
    mountains = 40.0 + 2100.0 * inland**1.7
    rough = (
        0.55 * _smooth_noise(rng, (ch, cw), 40)
        + 0.3 * _smooth_noise(rng, (ch, cw), 12)
        + 0.15 * _smooth_noise(rng, (ch, cw), 4)
    )
    elev = mountains * (1.0 + 0.45 * rough * np.clip(inland * 2.5, 0, 1))
    # Pù Xai Lai Leng-like summit near the Lao border in Kỳ Sơn.
    elev += 900.0 * np.exp(-(((LON - 104.15) / 0.12) ** 2 + ((LAT - 19.27) / 0.10) ** 2))
    # The coastal plain: flat and low in the east, with a gentle rise.
    plain = 1.0 + 45.0 * inland + 1.2 * _smooth_noise(rng, (ch, cw), 30)
    elev = np.where(inland < 0.12, plain, np.maximum(elev, plain))
    # Carve the Cả valley: river bed falls from ~180 m at the border to 0 at the mouth,
    # and the floodplain rises slowly away from it (steeper in the mountains).
    river = _in_mercator(ca_river())
    along = np.linspace(0.0, 1.0, 400)
    pts = [river.interpolate(t, normalized=True) for t in along]
    pr = ((np.array([p.y for p in pts]) - coarse_t.f) / coarse_t.e).astype(int)
    pc = ((np.array([p.x for p in pts]) - coarse_t.c) / coarse_t.a).astype(int)
    ok = (pr >= 0) & (pr < ch) & (pc >= 0) & (pc < cw)
    tgrid = np.full((ch, cw), np.nan, np.float32)
    line = features.rasterize(
        [(river, 1)], out_shape=(ch, cw), transform=coarse_t, all_touched=True, dtype="uint8"
    ).astype(bool)
    tgrid[pr[ok], pc[ok]] = along[ok]
    dist_px, (ir, ic) = ndimage.distance_transform_edt(~line, return_indices=True)
    # t of each river cell: nearest sampled point's t (fills the cells between samples).
    known = ~np.isnan(tgrid)
    _, (kr, kc) = ndimage.distance_transform_edt(~known, return_indices=True)
    t_river = tgrid[kr, kc]
    t_near = t_river[ir, ic]
    dist_m = dist_px * step * res_m
    bed = 180.0 * (1.0 - t_near) ** 1.6 + 0.3
    # A floodplain ~0.5 km wide in the gorges widening to ~9 km near the mouth, rising
    # 1.5 m per km, then valley walls at 35 m per km.
    width_m = 500.0 + 9000.0 * np.clip((t_near - 0.4) / 0.6, 0, 1) ** 1.5
    valley = (
        bed
        + 0.0015 * np.minimum(dist_m, width_m)
        + 0.035 * np.maximum(0.0, dist_m - width_m)
        + 0.5 * np.abs(_smooth_noise(rng, (ch, cw), 20))
    )
    elev = np.minimum(elev, valley)
    # Fine relief scales with the height above the river bed: valleys stay smooth.
    relief = np.clip(0.3 + 0.08 * (elev - bed), 0.3, 25.0).astype(np.float32)
    # Refine to the full grid and add detail at ~30 m.
    fine = ndimage.zoom(elev.astype(np.float32), (height / ch, width / cw), order=1)
    fine = fine[:height, :width]
    if fine.shape != (height, width):
        fine = np.pad(fine, ((0, height - fine.shape[0]), (0, width - fine.shape[1])), mode="edge")
    detail = _smooth_noise(np.random.default_rng(41), (height, width), max(4, step // 2))
    fine_relief = ndimage.zoom(relief, (height / ch, width / cw), order=1)
    fr = np.full((height, width), 0.3, np.float32)
    fr[: fine_relief.shape[0], : fine_relief.shape[1]] = fine_relief[:height, :width]
    fine = fine + detail * fr
    fine = np.maximum(fine, 0.2).astype(np.float32)
    province = _in_mercator(load_province().geometry.buffer(0.01))
    inside = features.rasterize(
        [(province, 1)], out_shape=(height, width), transform=transform, dtype="uint8"
    ).astype(bool)
    dem = np.where(inside, fine, np.float32(NODATA)).astype(np.float32)
    # 1-in-100-year flood: a water surface ~5 m above the bed along the lower Cả (t > 0.6),
    # flooding the plain cells connected to the river.
    surface_c = np.where(t_near > 0.6, bed + 5.5 - 2.5 * (t_near - 0.6) / 0.4, -1e9)
    surface_c = np.where(dist_m < 18_000, surface_c, -1e9)
    surface = ndimage.zoom(surface_c.astype(np.float32), (height / ch, width / cw), order=0)
    sf = np.full((height, width), -1e9, np.float32)
    sf[: surface.shape[0], : surface.shape[1]] = surface[:height, :width]
    wet = inside & (sf > dem)
    labels, _ = ndimage.label(wet)
    river_cells = features.rasterize(
        [(river, 1)],
        out_shape=(height, width),
        transform=transform,
        all_touched=True,
        dtype="uint8",
    ).astype(bool)
    keep_ids = np.unique(labels[river_cells & wet])
    keep = np.isin(labels, keep_ids[keep_ids > 0])
    depth = np.where(keep, sf - dem, np.float32(NODATA)).astype(np.float32)
    return DemoRaster(dem, transform, NODATA), DemoRaster(depth, transform, NODATA)
