"""Exact coverage fractions of polygons over a grid, as a reusable index (pure numpy).

The fraction of a cell a polygon covers is its exact area share (as exactextract computes
it), found with Green's theorem: for each cell, the area is the integral along the polygon's
boundary of g(Y) dX, where g is 1 below the cell, the distance to the cell's bottom inside
it, and 0 above. Each boundary edge is cut at every grid line into pieces inside one cell;
a piece adds its trapezoid to its own cell and its width to every cell below it in its
column (a running sum down the column). Cost: the boundary's cells plus one pass over each
polygon's bounding box, all vectorised.

The index depends only on the grid's geometry (bounds and shape) and the polygons, not on
the values, so one index answers any raster on the same grid (every flood level of a DEM,
every band) with gathers and segment reductions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely

# A fraction within this of 1 is a whole cell (the running sums carry ~1e-12 of rounding).
_WHOLE = 1.0 - 1e-9
_EMPTY = 1e-12
# Longest run of whole cells the index keeps in one piece (see build_index); below 128.
RUN_MAX = 64


@dataclass(frozen=True)
class CoverageIndex:
    """Covered cells of each polygon: whole cells as row runs, partial ones with fractions.

    Run k covers flat cells `[run_start[k], run_start[k] + run_len[k])` of row `run_row[k]`,
    all whole cells of polygon `run_poly[k]`; runs are sorted by start. Partial cells of
    polygon i are `edge[edge_off[i]:edge_off[i+1]]`, with `edge_frac` their share. Flat
    indices are row-major over `shape`.
    """

    shape: tuple[int, int]
    count: int
    run_start: npt.NDArray[np.int64]
    run_len: npt.NDArray[np.int64]
    run_row: npt.NDArray[np.int64]
    run_poly: npt.NDArray[np.int64]
    edge: npt.NDArray[np.int64]
    edge_frac: npt.NDArray[np.float64]
    edge_off: npt.NDArray[np.int64]

    @property
    def nbytes(self) -> int:
        """Memory the index holds."""
        return int(
            self.run_start.nbytes * 4
            + self.edge.nbytes
            + self.edge_frac.nbytes
            + self.edge_off.nbytes
        )


def _polygon_rings(geom: shapely.Geometry) -> list[npt.NDArray[np.float64]]:
    """Coordinates of every ring, shells counter-clockwise and holes clockwise."""
    rings: list[npt.NDArray[np.float64]] = []
    parts = shapely.get_parts(geom)
    for part in parts:
        if part.geom_type == "Polygon":
            polys = [part]
        elif part.geom_type in ("MultiPolygon", "GeometryCollection"):
            polys = [p for p in shapely.get_parts(part) if p.geom_type == "Polygon"]
        else:
            continue
        for p in polys:
            if p.is_empty:
                continue
            p = shapely.orient_polygons(p)
            rings.append(np.asarray(p.exterior.coords, np.float64)[:, :2])
            rings.extend(np.asarray(r.coords, np.float64)[:, :2] for r in p.interiors)
    return rings


def _cell_coverage(
    rings: list[npt.NDArray[np.float64]], shape: tuple[int, int]
) -> tuple[npt.NDArray[np.float64], int, int] | None:
    """Coverage fractions over the polygon's bounding box of cells: (array, row0, col0)."""
    if not rings:
        return None
    edges = np.concatenate([np.column_stack([r[:-1], r[1:]]) for r in rings if len(r) > 1])
    x0, y0, x1, y1 = edges[:, 0], edges[:, 1], edges[:, 2], edges[:, 3]
    rows, cols = shape
    c_lo = int(np.floor(min(x0.min(), x1.min())))
    c_hi = int(np.ceil(max(x0.max(), x1.max())))
    r_lo = int(np.floor(min(y0.min(), y1.min())))
    r_hi = int(np.ceil(max(y0.max(), y1.max())))
    c_lo, r_lo = max(c_lo, 0), max(r_lo, 0)
    c_hi, r_hi = min(max(c_hi, c_lo + 1), cols), min(max(r_hi, r_lo + 1), rows)
    if c_hi <= c_lo or r_hi <= r_lo:
        return None
    dx, dy = x1 - x0, y1 - y0
    # Crossings with every vertical and horizontal grid line, as parameters along each edge.
    ts = [np.zeros(len(edges)), np.ones(len(edges))]
    ids = [np.arange(len(edges)), np.arange(len(edges))]
    for a, d in ((x0, dx), (y0, dy)):
        lo = np.ceil(np.minimum(a, a + d))
        hi = np.floor(np.maximum(a, a + d))
        n = np.where(d != 0, np.maximum(hi - lo + 1, 0), 0).astype(np.int64)
        total = int(n.sum())
        if total == 0:
            continue
        eid = np.repeat(np.arange(len(edges)), n)
        start = np.repeat(np.cumsum(n) - n, n)
        k = lo[eid] + (np.arange(total) - start)
        ts.append((k - a[eid]) / d[eid])
        ids.append(eid)
    t = np.concatenate(ts)
    eid = np.concatenate(ids)
    order = np.lexsort((t, eid))
    t, eid = t[order], eid[order]
    same = eid[1:] == eid[:-1]
    ta, tb, e = t[:-1][same], t[1:][same], eid[:-1][same]
    xa, xb = x0[e] + ta * dx[e], x0[e] + tb * dx[e]
    ya, yb = y0[e] + ta * dy[e], y0[e] + tb * dy[e]
    piece_dx = xb - xa
    keep = piece_dx != 0
    xa, xb, ya, yb, piece_dx = xa[keep], xb[keep], ya[keep], yb[keep], piece_dx[keep]
    xm, ym = (xa + xb) / 2, (ya + yb) / 2
    c = np.clip(np.floor(xm).astype(np.int64), c_lo, c_hi - 1) - c_lo
    r = np.clip(np.floor(ym).astype(np.int64), r_lo, r_hi - 1)
    h, w = r_hi - r_lo, c_hi - c_lo
    # Own cell: the part of the cell below the piece (Y grows downwards, rows too).
    own = np.bincount((r - r_lo) * w + c, weights=piece_dx * (r + 1 - ym), minlength=h * w).reshape(
        h, w
    )
    below_r = r - r_lo + 1
    inside = below_r < h
    below = np.bincount(
        below_r[inside] * w + c[inside], weights=piece_dx[inside], minlength=h * w
    ).reshape(h, w)
    cov: npt.NDArray[np.float64] = (own + np.cumsum(below, axis=0)).astype(np.float64, copy=False)
    # Shells are counter-clockwise in lon/lat-like axes; with Y downwards the sum is negative.
    if cov.sum() < 0:
        cov = -cov
    return cov, r_lo, c_lo


def build_index(
    bounds: tuple[float, float, float, float],
    shape: tuple[int, int],
    polygons: list[shapely.Geometry],
) -> CoverageIndex:
    """The coverage index of polygons (in the grid's CRS) over a north-up grid."""
    xmin, ymin, xmax, ymax = bounds
    rows, cols = shape
    sx, sy = cols / (xmax - xmin), rows / (ymax - ymin)
    starts: list[npt.NDArray[np.int64]] = []
    lens: list[npt.NDArray[np.int64]] = []
    run_rows: list[npt.NDArray[np.int64]] = []
    polys: list[npt.NDArray[np.int64]] = []
    edge: list[npt.NDArray[np.int64]] = []
    frac: list[npt.NDArray[np.float64]] = []
    for i, geom in enumerate(polygons):
        got = None
        clipped = shapely.clip_by_rect(geom, xmin, ymin, xmax, ymax) if geom is not None else None
        if clipped is not None and not clipped.is_empty:
            # Cell coordinates: columns to the east, rows to the south.
            in_cells = shapely.transform(
                clipped,
                lambda xy: np.column_stack([(xy[:, 0] - xmin) * sx, (ymax - xy[:, 1]) * sy]),
            )
            got = _cell_coverage(_polygon_rings(in_cells), shape)
        if got is None:
            edge.append(np.zeros(0, np.int64))
            frac.append(np.zeros(0, np.float64))
            continue
        cov, r0, c0 = got
        whole = cov >= _WHOLE
        part = (cov > _EMPTY) & ~whole
        # Runs of whole cells along each row: where the padded mask switches on and off.
        padded = np.zeros((whole.shape[0], whole.shape[1] + 2), np.int8)
        padded[:, 1:-1] = whole
        step = np.diff(padded, axis=1)
        on_r, on_c = np.nonzero(step == 1)
        _, off_c = np.nonzero(step == -1)
        # Cut into pieces of at most RUN_MAX cells: sums in the raster's own float32 then stay
        # within ~1e-7 (as exact as float32 input), and counts fit in an int8.
        run_len = (off_c - on_c).astype(np.int64)
        pieces = (run_len + RUN_MAX - 1) // RUN_MAX
        which = np.repeat(np.arange(len(run_len)), pieces)
        k = np.arange(int(pieces.sum())) - np.repeat(np.cumsum(pieces) - pieces, pieces)
        rows_abs = (on_r[which] + r0).astype(np.int64)
        starts.append(rows_abs * cols + on_c[which] + c0 + k * RUN_MAX)
        lens.append(np.minimum(run_len[which] - k * RUN_MAX, RUN_MAX))
        run_rows.append(rows_abs)
        polys.append(np.full(len(which), i, np.int64))
        rr, cc = np.nonzero(part)
        edge.append((rr + r0).astype(np.int64) * cols + (cc + c0))
        frac.append(np.minimum(cov[part], 1.0))
    empty = np.zeros(0, np.int64)
    run_start = np.concatenate(starts) if starts else empty
    order = np.argsort(run_start, kind="stable")
    return CoverageIndex(
        shape=shape,
        count=len(polygons),
        run_start=run_start[order],
        run_len=(np.concatenate(lens) if lens else empty)[order],
        run_row=(np.concatenate(run_rows) if run_rows else empty)[order],
        run_poly=(np.concatenate(polys) if polys else empty)[order],
        edge=np.concatenate(edge) if edge else empty,
        edge_frac=np.concatenate(frac) if frac else np.zeros(0, np.float64),
        edge_off=_offsets(edge),
    )


def _offsets(parts: list[npt.NDArray[Any]]) -> npt.NDArray[np.int64]:
    return np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)


@dataclass(frozen=True)
class Sums:
    """Per polygon, coverage-weighted sums over the valid cells of a grid."""

    weight: npt.NDArray[np.float64]  # sum of fractions (exactextract's count)
    total: npt.NDArray[np.float64]  # sum of value x fraction
    minimum: npt.NDArray[np.float64]  # nan where no valid cell
    maximum: npt.NDArray[np.float64]
    area: npt.NDArray[np.float64]  # sum of fraction x cell area (m²)
    above: list[npt.NDArray[np.float64]]  # per threshold, area (m²) where value > threshold


def _segment_sum(values: npt.NDArray[Any], off: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """Sum of each segment [off[i], off[i+1]) (0 for empty segments)."""
    csum = np.concatenate([[0.0], np.cumsum(values, dtype=np.float64)])
    out: npt.NDArray[np.float64] = csum[off[1:]] - csum[off[:-1]]
    return out


def _segment_reduce(
    ufunc: Any, values: npt.NDArray[np.float64], off: npt.NDArray[np.int64], empty: float
) -> npt.NDArray[np.float64]:
    n = len(off) - 1
    out = np.full(n, empty)
    nonempty = off[1:] > off[:-1]
    if values.size and nonempty.any():
        starts = off[:-1][nonempty]
        out[nonempty] = ufunc.reduceat(values, starts)
    return out


def _run_reduce(
    ufunc: Any, flat: npt.NDArray[Any], index: CoverageIndex, dtype: Any = None
) -> npt.NDArray[Any]:
    """ufunc.reduce over each whole-cell run of a flat grid (one pass over the grid)."""
    n = len(index.run_start)
    if n == 0:
        return np.zeros(0, dtype or flat.dtype)
    ends = index.run_start + index.run_len
    # reduceat reduces [idx[j], idx[j+1]): interleave starts and ends and keep every other
    # result. An end at the grid's last cell cannot be an index: those runs are done alone.
    last = ends >= flat.size
    bounds = np.empty(2 * n, np.int64)
    bounds[0::2] = index.run_start
    bounds[1::2] = np.where(last, index.run_start, ends)
    if last[-1]:
        bounds = bounds[:-1]
    out: npt.NDArray[Any] = ufunc.reduceat(flat, bounds, dtype=dtype)[0::2]
    for j in np.nonzero(last)[0]:
        out[j] = ufunc.reduce(flat[index.run_start[j] :], dtype=dtype)
    return out


def sums(
    index: CoverageIndex,
    values: npt.NDArray[Any],
    valid: npt.NDArray[np.bool_],
    row_area_m2: npt.NDArray[np.float64],
    above: list[float] | None = None,
    want_minmax: bool = True,
) -> Sums:
    """Coverage-weighted count, sum, min, max, valid area and areas above thresholds."""
    n = index.count
    cols = index.shape[1]
    flat_v = values.reshape(-1)
    flat_ok = valid.reshape(-1)
    thresholds = above or []
    poly = index.run_poly
    run_area = row_area_m2[index.run_row]

    def per_poly(x: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
        return np.bincount(poly, weights=x.astype(np.float64), minlength=n).astype(np.float64)

    def count(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.float64]:
        # Pieces hold at most RUN_MAX (< 128) cells: an int8 sum cannot overflow (and numpy
        # reduces int8 faster than uint8 or bool).
        got: npt.NDArray[np.float64] = _run_reduce(np.add, mask.view(np.int8), index).astype(
            np.float64
        )
        return got

    # Whole cells: reductions over pieces of runs of the grid itself (no gathers, no
    # full-grid temporaries); the few pieces holding a cell without value are redone below.
    run_count = count(flat_ok)
    if flat_v.dtype.kind == "f":
        run_total = _run_reduce(np.add, flat_v, index).astype(np.float64)
    else:  # integers could overflow their own type
        run_total = _run_reduce(np.add, flat_v, index, np.float64)
    run_above = [count(flat_v > x) for x in thresholds]
    want = want_minmax and len(poly) > 0
    run_lo = _run_reduce(np.minimum, flat_v, index).astype(np.float64) if want else None
    run_hi = _run_reduce(np.maximum, flat_v, index).astype(np.float64) if want else None
    bad = np.nonzero(run_count < index.run_len)[0]
    if len(bad):
        lens = index.run_len[bad]
        off = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
        cells = np.repeat(index.run_start[bad], lens) + (
            np.arange(int(off[-1])) - np.repeat(off[:-1], lens)
        )
        raw = flat_v[cells]
        ok = flat_ok[cells]
        v = raw.astype(np.float64)
        run_total[bad] = _segment_sum(np.where(ok, v, 0.0), off)
        for k, x in enumerate(thresholds):
            run_above[k][bad] = _segment_sum(ok & (raw > x), off)
        if run_lo is not None and run_hi is not None:
            run_lo[bad] = _segment_reduce(np.minimum, np.where(ok, v, np.inf), off, np.inf)
            run_hi[bad] = _segment_reduce(np.maximum, np.where(ok, v, -np.inf), off, -np.inf)
    weight = per_poly(run_count)
    total = per_poly(run_total)
    area = per_poly(run_count * run_area)
    above_area = [per_poly(c * run_area) for c in run_above]
    lo = np.full(n, np.inf)
    hi = np.full(n, -np.inf)
    if run_lo is not None and run_hi is not None:
        has = run_count > 0
        np.minimum.at(lo, poly[has], run_lo[has])
        np.maximum.at(hi, poly[has], run_hi[has])
    # Partial cells: few (the boundaries), gathered with their fractions.
    cells, off = index.edge, index.edge_off
    raw = flat_v[cells]
    ok = flat_ok[cells]
    w = np.where(ok, index.edge_frac, 0.0)
    area_w = w * row_area_m2[cells // cols]
    weight += _segment_sum(w, off)
    total += _segment_sum(np.where(ok, raw.astype(np.float64), 0.0) * w, off)
    area += _segment_sum(area_w, off)
    for k, x in enumerate(thresholds):
        # Compared in the raster's own dtype, as a mask of the grid would be.
        above_area[k] = above_area[k] + _segment_sum(np.where(raw > x, area_w, 0.0), off)
    if want_minmax:
        v = raw.astype(np.float64)
        lo = np.minimum(lo, _segment_reduce(np.minimum, np.where(ok, v, np.inf), off, np.inf))
        hi = np.maximum(hi, _segment_reduce(np.maximum, np.where(ok, v, -np.inf), off, -np.inf))
    lo[~np.isfinite(lo)] = np.nan
    hi[~np.isfinite(hi)] = np.nan
    return Sums(weight=weight, total=total, minimum=lo, maximum=hi, area=area, above=above_area)
