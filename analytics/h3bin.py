"""Vectorised H3 binning: points and polygons to cells, time buckets, count/sum/mean per cell."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import h3ronpy
import h3ronpy.vector as h3v
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from numpy.typing import NDArray

RESOLUTIONS: tuple[int, ...] = (5, 6, 7, 8, 9, 10)
# bucket width in seconds; 0 is the "all time" bucket every layer gets.
BUCKET_WIDTHS: dict[str, int] = {
    "all": 0,
    "15min": 900,
    "hour": 3600,
    "day": 86400,
    "week": 604800,
}
# Week buckets (epoch-aligned) are only a storage pyramid: a 30-day window reads four weeks
# and a few days instead of thirty days of rows.
TIME_WIDTHS: tuple[int, ...] = (900, 3600, 86400, 604800)
PolygonMode = Literal["auto", "centroid", "coverage"]
# A polygon covering more than this fraction of a cell's area is spread over the cells it
# overlaps; smaller ones are binned by their centroid (cheap and accurate enough).
COVERAGE_AREA_FRACTION = 0.5
_M_PER_DEG_LAT = 110_574.0
_M_PER_DEG_LNG_EQ = 111_320.0

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
U64 = NDArray[np.uint64]


def points_to_cells(lng: F64, lat: F64, res: int) -> U64:
    """H3 cells (uint64) of WGS84 points at one resolution, in one vectorised call."""
    if len(lng) == 0:
        return np.zeros(0, dtype=np.uint64)
    arr = h3v.coordinates_to_cells(
        np.ascontiguousarray(lat, dtype=np.float64),
        np.ascontiguousarray(lng, dtype=np.float64),
        res,
    )
    return np.asarray(arr, dtype=np.uint64)


def cells_to_strings(cells: U64) -> list[str]:
    """Hex string ids of cells, as deck.gl's H3HexagonLayer wants them."""
    if len(cells) == 0:
        return []
    out: list[str] = h3ronpy.cells_to_string(np.asarray(cells, dtype=np.uint64)).to_pylist()
    return out


def parse_cells(ids: Sequence[str]) -> U64:
    """uint64 cells from hex string ids."""
    if len(ids) == 0:
        return np.zeros(0, dtype=np.uint64)
    return np.asarray(h3ronpy.cells_parse(list(ids)), dtype=np.uint64)


def cells_to_lnglat(cells: U64) -> tuple[F64, F64]:
    """Centre longitude and latitude of each cell."""
    if len(cells) == 0:
        empty = np.zeros(0, dtype=np.float64)
        return empty, empty
    rb = h3v.cells_to_coordinates(np.asarray(cells, dtype=np.uint64))
    lat = np.asarray(rb.column("lat"), dtype=np.float64)
    lng = np.asarray(rb.column("lng"), dtype=np.float64)
    return lng, lat


def cell_polygons(cells: U64) -> NDArray[np.object_]:
    """Shapely hexagons of cells (WGS84)."""
    if len(cells) == 0:
        return np.zeros(0, dtype=object)
    wkb = h3v.cells_to_wkb_polygons(np.asarray(cells, dtype=np.uint64))
    return np.asarray(shapely.from_wkb(np.asarray(wkb.to_pylist(), dtype=object)))


def cell_area_m2(res: int) -> float:
    """Average area of an H3 cell at `res` near the province (m²)."""
    probe = points_to_cells(np.array([105.0]), np.array([19.0]), res)
    return float(np.asarray(h3ronpy.cells_area_m2(probe), dtype=np.float64)[0])


def bucket_floor(t: F64, width: int) -> I64:
    """Start (epoch seconds) of the `width`-second bucket of each time; NaN times give -1."""
    if width == 0:
        return np.zeros(len(t), dtype=np.int64)
    out = np.full(len(t), -1, dtype=np.int64)
    ok = ~np.isnan(t)
    out[ok] = (np.floor(t[ok] / width) * width).astype(np.int64)
    return out


def area_m2(geoms: NDArray[np.object_]) -> F64:
    """Approximate area in m² of WGS84 geometries (local equirectangular scale)."""
    if len(geoms) == 0:
        return np.zeros(0, dtype=np.float64)
    lat = shapely.get_y(shapely.centroid(geoms))
    scale = _M_PER_DEG_LAT * _M_PER_DEG_LNG_EQ * np.cos(np.radians(lat))
    return np.asarray(shapely.area(geoms) * scale, dtype=np.float64)


@dataclass(frozen=True)
class Contributions:
    """What each input item adds to which cell: item index, cell and weight (1 for points)."""

    item: I64
    cell: U64
    weight: F64


def point_contributions(lng: F64, lat: F64, res: int) -> Contributions:
    """Every point counts once in its own cell."""
    n = len(lng)
    return Contributions(
        np.arange(n, dtype=np.int64), points_to_cells(lng, lat, res), np.ones(n, dtype=np.float64)
    )


def geometry_contributions(
    geoms: NDArray[np.object_], res: int, polygon_mode: PolygonMode = "auto"
) -> Contributions:
    """Cells of any geometries: points in place, small polygons by centroid, large ones by area.

    Large polygons (or every polygon with mode "coverage") are spread over the cells they
    overlap with weights equal to the share of their area in each cell, so a count stays 1
    per feature and sums stay exact in total.
    """
    n = len(geoms)
    if n == 0:
        e = np.zeros(0, dtype=np.int64)
        return Contributions(e, e.astype(np.uint64), e.astype(np.float64))
    type_ids = shapely.get_type_id(geoms)
    is_poly = np.isin(type_ids, (3, 6))
    areas = np.zeros(n, dtype=np.float64)
    if is_poly.any():
        areas[is_poly] = area_m2(geoms[is_poly])
    if polygon_mode == "centroid":
        large = np.zeros(n, dtype=bool)
    elif polygon_mode == "coverage":
        large = is_poly.copy()
    else:
        large = is_poly & (areas > COVERAGE_AREA_FRACTION * cell_area_m2(res))
    small_idx = np.flatnonzero(~large)
    pts = shapely.centroid(geoms[small_idx])
    small = Contributions(
        small_idx.astype(np.int64),
        points_to_cells(shapely.get_x(pts), shapely.get_y(pts), res),
        np.ones(len(small_idx), dtype=np.float64),
    )
    large_idx = np.flatnonzero(large)
    if len(large_idx) == 0:
        return small
    cov = _coverage(geoms[large_idx], res)
    return Contributions(
        np.concatenate([small.item, large_idx[cov.item]]),
        np.concatenate([small.cell, cov.cell]),
        np.concatenate([small.weight, cov.weight]),
    )


def _coverage(polys: NDArray[np.object_], res: int) -> Contributions:
    wkb = shapely.to_wkb(polys)
    lists = h3v.wkb_to_cells(
        list(wkb), res, containment_mode=h3ronpy.ContainmentMode.IntersectsBoundary
    )
    per_poly = lists.to_pylist()
    lengths = np.fromiter((len(x) if x else 0 for x in per_poly), dtype=np.int64, count=len(polys))
    flat = np.fromiter(
        (c for x in per_poly if x for c in x), dtype=np.uint64, count=int(lengths.sum())
    )
    item = np.repeat(np.arange(len(polys), dtype=np.int64), lengths)
    # A polygon no cell boundary touches lies inside one cell: fall back to its centroid.
    missing = np.flatnonzero(lengths == 0)
    if len(missing):
        cen = shapely.centroid(polys[missing])
        flat = np.concatenate([flat, points_to_cells(shapely.get_x(cen), shapely.get_y(cen), res)])
        item = np.concatenate([item, missing])
    hexes = cell_polygons(flat)
    inter = shapely.area(shapely.intersection(polys[item], hexes))
    total = np.bincount(item, weights=inter, minlength=len(polys))
    weight = np.divide(inter, total[item], out=np.zeros_like(inter), where=total[item] > 0)
    keep = weight > 0
    return Contributions(item[keep], flat[keep], weight[keep])


@dataclass
class AggTable:
    """Aggregates as columns: one row per (res, bucket width, bucket start, cell)."""

    measures: list[str]
    res: NDArray[np.int16] = field(default_factory=lambda: np.zeros(0, dtype=np.int16))
    bucket_s: NDArray[np.int32] = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    bucket: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    cell: U64 = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))
    count: F64 = field(default_factory=lambda: np.zeros(0, dtype=np.float64))
    sums: F64 = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float64))
    nvals: F64 = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float64))

    def __len__(self) -> int:
        return len(self.cell)

    def take(self, idx: NDArray[np.bool_] | I64) -> AggTable:
        """Rows selected by a mask or index array."""
        return AggTable(
            list(self.measures),
            self.res[idx],
            self.bucket_s[idx],
            self.bucket[idx],
            self.cell[idx],
            self.count[idx],
            self.sums[idx],
            self.nvals[idx],
        )

    def mean(self, name: str) -> F64:
        """Mean of a measure per row (NaN where no value was seen)."""
        i = self.measures.index(name)
        n = self.nvals[:, i]
        out: F64 = np.divide(self.sums[:, i], n, out=np.full(len(n), np.nan), where=n > 0)
        return out

    def keys(self) -> NDArray[np.void]:
        """Row keys as one structured array, for set operations."""
        return make_keys(self.res, self.bucket_s, self.bucket, self.cell)

    def sorted(self) -> AggTable:
        """Rows in key order, so two tables can be compared."""
        order = np.lexsort((self.cell, self.bucket, self.bucket_s, self.res))
        return self.take(order)


_KEY_DTYPE = np.dtype([("res", "<i2"), ("bucket_s", "<i4"), ("bucket", "<i8"), ("cell", "<u8")])


def make_keys(
    res: NDArray[np.int16], bucket_s: NDArray[np.int32], bucket: I64, cell: U64
) -> NDArray[np.void]:
    """Structured (res, bucket_s, bucket, cell) keys."""
    k = np.empty(len(cell), dtype=_KEY_DTYPE)
    k["res"], k["bucket_s"], k["bucket"], k["cell"] = res, bucket_s, bucket, cell
    return k


def concat(tables: Sequence[AggTable], measures: list[str]) -> AggTable:
    """One table from several with the same measures."""
    if not tables:
        m = len(measures)
        return AggTable(measures, sums=np.zeros((0, m)), nvals=np.zeros((0, m)))
    return AggTable(
        list(measures),
        np.concatenate([t.res for t in tables]),
        np.concatenate([t.bucket_s for t in tables]),
        np.concatenate([t.bucket for t in tables]),
        np.concatenate([t.cell for t in tables]),
        np.concatenate([t.count for t in tables]),
        np.concatenate([t.sums for t in tables]),
        np.concatenate([t.nvals for t in tables]),
    )


def group(
    contrib: Contributions,
    bucket: I64,
    values: Mapping[str, F64],
    res: int,
    bucket_s: int,
) -> AggTable:
    """Sum contributions by (cell, bucket): count, and per measure the sum and non-null count.

    `bucket` is per input item (-1 drops the item, e.g. a feature without time in a time bucket).
    """
    measures = list(values)
    b = bucket[contrib.item]
    keep = b >= 0
    cell, b, w, item = contrib.cell[keep], b[keep], contrib.weight[keep], contrib.item[keep]
    if len(cell) == 0:
        return concat([], measures)
    ub, bi = np.unique(b, return_inverse=True)
    if len(ub) == 1:
        uc, gi = np.unique(cell, return_inverse=True)
        gb = np.full(len(uc), ub[0], dtype=np.int64)
    else:
        uc0, ci = np.unique(cell, return_inverse=True)
        combo = ci.astype(np.int64) * len(ub) + bi
        uk, gi = np.unique(combo, return_inverse=True)
        uc, gb = uc0[uk // len(ub)], ub[uk % len(ub)]
    ng = len(uc)
    count = np.bincount(gi, weights=w, minlength=ng).astype(np.float64)
    sums = np.zeros((ng, len(measures)), dtype=np.float64)
    nvals = np.zeros((ng, len(measures)), dtype=np.float64)
    for j, name in enumerate(measures):
        v = np.asarray(values[name], dtype=np.float64)[item]
        ok = ~np.isnan(v)
        sums[:, j] = np.bincount(gi, weights=np.where(ok, v * w, 0.0), minlength=ng)
        nvals[:, j] = np.bincount(gi, weights=ok * w, minlength=ng)
    return AggTable(
        measures,
        np.full(ng, res, dtype=np.int16),
        np.full(ng, bucket_s, dtype=np.int32),
        gb.astype(np.int64),
        uc.astype(np.uint64),
        count,
        sums,
        nvals,
    )


def aggregate(
    t: F64,
    values: Mapping[str, F64],
    contributions: Mapping[int, Contributions],
    widths: Sequence[int] = (0,),
) -> AggTable:
    """Full aggregate table over resolutions (keys of `contributions`) and bucket widths.

    `t` is epoch seconds per item (NaN when unknown); width 0 is the all-time bucket.
    """
    measures = list(values)
    buckets = {w: bucket_floor(t, w) for w in widths}
    parts = []
    for res, c in sorted(contributions.items()):
        for width in widths:
            parts.append(group(c, buckets[width], values, res, width))
    return concat(parts, measures)


def aggregate_points(
    lng: F64,
    lat: F64,
    t: F64 | None = None,
    values: Mapping[str, F64] | None = None,
    resolutions: Sequence[int] = RESOLUTIONS,
    widths: Sequence[int] = (0,),
) -> AggTable:
    """Aggregate points at each resolution and bucket width."""
    tt = t if t is not None else np.full(len(lng), np.nan)
    contribs = {r: point_contributions(lng, lat, r) for r in resolutions}
    return aggregate(tt, values or {}, contribs, widths)


def count_points(lng: F64, lat: F64, res: int) -> tuple[U64, I64]:
    """Cells (ascending) and point counts at one resolution: the fast path (no time, no measures)."""
    if len(lng) == 0:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
    arr = h3v.coordinates_to_cells(
        np.ascontiguousarray(lat, dtype=np.float64),
        np.ascontiguousarray(lng, dtype=np.float64),
        res,
    )
    # One hash pass over the points (Arrow's value_counts, on h3ronpy's own Arrow array): at
    # 10 M points np.unique's sort of every point cost 0.5 s more CPU. Only the distinct cells
    # are sorted.
    vc = pc.value_counts(pa.array(arr))
    cells = np.asarray(vc.field("values").to_numpy(zero_copy_only=False), dtype=np.uint64)
    counts = np.asarray(vc.field("counts").to_numpy(zero_copy_only=False), dtype=np.int64)
    order = np.argsort(cells, kind="stable")
    return cells[order], counts[order]
