"""Coordinates read and rewritten in place inside WKB, for 2-D little-endian Points/Polygons.

The structure of a geometry does not change when its CRS does, so the transformed WKB is
the source WKB with its doubles replaced: no GEOS objects are built or serialised for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from numpy.lib.stride_tricks import as_strided


def _u32(data: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Little-endian uint32 at each byte offset in `pos` (one row gather of 4-byte windows)."""
    if len(data) < 4:
        return np.zeros(len(pos), dtype=np.uint32)
    windows = as_strided(data, shape=(len(data) - 3, 4), strides=(1, 1), writeable=False)
    return np.ascontiguousarray(windows[pos]).view("<u4").reshape(-1).astype(np.uint32)


def _buffers(wkb: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(data bytes, start offsets, valid mask) of a binary array."""
    bufs = wkb.buffers()
    n = len(wkb)
    offsets = np.frombuffer(bufs[1], dtype=np.int32)[wkb.offset : wkb.offset + n + 1].astype(
        np.int64
    )
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    valid = np.asarray(wkb.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    return data, offsets, valid


@dataclass(frozen=True)
class Positions:
    """Where the coordinates are inside a WKB array of 2-D Points or 2-D Polygons."""

    pos: np.ndarray  # byte offset of every (x, y) pair, in geometry order
    first: np.ndarray  # per row: index in `pos` of its first pair, -1 without coordinates
    kind: str  # "Point" or "Polygon"
    rings: tuple[np.ndarray, np.ndarray, np.ndarray] | None  # polygons: (row, start, npts)


def coordinate_positions(wkb: pa.Array) -> Positions | None:
    """Byte offset of every coordinate pair (in geometry order) and each row's first pair.

    Returns None unless every present value is a 2-D little-endian Point, or every one a
    2-D little-endian Polygon. Rows without coordinates get first index -1.
    """
    data, offsets, valid = _buffers(wkb)
    n = len(wkb)
    starts = offsets[:-1]
    lengths = np.diff(offsets)
    rows = np.flatnonzero(valid & (lengths >= 5))
    if len(rows) == 0 or np.any(valid & (lengths < 5)):
        return None
    if not np.all(data[starts[rows]] == 1):
        return None
    types = _u32(data, starts[rows] + 1)
    first = np.full(n, -1, dtype=np.int64)
    if np.all(types == 1):
        if not np.all(lengths[rows] == 21):
            return None
        pos = starts[rows] + 5
        first[rows] = np.arange(len(rows))
        return Positions(pos, first, "Point", None)
    if not np.all(types == 3):
        return None
    nrings = _u32(data, starts[rows] + 5)
    cursor = starts[rows] + 9
    ring_geom: list[np.ndarray] = []
    ring_level: list[np.ndarray] = []
    ring_start: list[np.ndarray] = []
    ring_npts: list[np.ndarray] = []
    for level in range(int(nrings.max()) if len(nrings) else 0):
        active = np.flatnonzero(nrings > level)
        npts = _u32(data, cursor[active]).astype(np.int64)
        ring_geom.append(rows[active])
        ring_level.append(np.full(len(active), level))
        ring_start.append(cursor[active] + 4)
        ring_npts.append(npts)
        cursor[active] += 4 + 16 * npts
    if not ring_geom:
        return None
    g = np.concatenate(ring_geom)
    lv = np.concatenate(ring_level)
    st = np.concatenate(ring_start)
    npts = np.concatenate(ring_npts)
    if len(ring_geom) > 1:  # holes: put each geometry's rings together, in ring order
        order = np.lexsort((lv, g))
        g, st, npts = g[order], st[order], npts[order]
    if not np.array_equal(cursor, offsets[rows + 1]):
        return None  # trailing bytes or a structure we did not expect
    total = int(npts.sum())
    ring_first = np.zeros(len(npts), dtype=np.int64)
    np.cumsum(npts[:-1], out=ring_first[1:])
    pos = np.repeat(st - 16 * ring_first, npts) + 16 * np.arange(total, dtype=np.int64)
    # First coordinate of each geometry = first coordinate of its first ring with points.
    has = npts > 0
    gi, idx = np.unique(g[has], return_index=True)
    first[gi] = ring_first[has][idx]
    return Positions(pos, first, "Polygon", (g, st, npts))


def sound_rows(wkb: pa.Array, where: Positions) -> np.ndarray:
    """Rows PostGIS's WKB reader surely accepts: present, and every ring closed with 4+ points.

    PostGIS rejects short or open rings (GEOS does too, so such rows are quarantined anyway);
    the closure test compares bytes, which is stricter than comparing doubles.
    """
    data, offsets, valid = _buffers(wkb)
    ok = valid & (np.diff(offsets) >= 5)
    if where.rings is None:
        return ok
    g, st, npts = where.rings
    bad = npts < 4
    pairs = _pairs(data)
    chk = np.flatnonzero(~bad)
    bad[chk] = np.any(pairs[st[chk]] != pairs[st[chk] + 16 * (npts[chk] - 1)], axis=1)
    ok[g[bad]] = False
    return ok


def _pairs(buf: np.ndarray, writeable: bool = False) -> np.ndarray:
    """Every 16-byte window of `buf` (one per byte offset): a row per possible (x, y) pair.

    Indexing its rows by byte position gathers or scatters unaligned pairs in one pass.
    """
    rows = max(len(buf) - 15, 0)
    return as_strided(buf, shape=(rows, 16), strides=(1, 1), writeable=writeable)


def read_xy(wkb: pa.Array, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The doubles at `pos` (x) and `pos + 8` (y)."""
    data, _, _ = _buffers(wkb)
    xy = np.ascontiguousarray(_pairs(data)[pos]).view("<f8").astype(np.float64, copy=False)
    return np.ascontiguousarray(xy[:, 0]), np.ascontiguousarray(xy[:, 1])


def write_xy(wkb: pa.Array, pos: np.ndarray, x: np.ndarray, y: np.ndarray) -> pa.Array:
    """A copy of `wkb` with the doubles at `pos` replaced by x, y."""
    data, offsets, valid = _buffers(wkb)
    out = data.copy()
    xy = np.empty((len(pos), 2), dtype="<f8")
    xy[:, 0] = x
    xy[:, 1] = y
    # Pair windows never overlap each other, so the scatter through the strided view is exact.
    _pairs(out, writeable=True)[pos] = xy.view(np.uint8)
    n = len(wkb)
    off32 = offsets.astype(np.int32)
    validity = None if valid.all() else pa.array(valid).buffers()[1]
    return pa.Array.from_buffers(pa.binary(), n, [validity, pa.py_buffer(off32), pa.py_buffer(out)])


def certainly_valid(where: Positions, x: np.ndarray, y: np.ndarray, n: int) -> np.ndarray:
    """Rows GEOS would surely find valid, decided from the coordinates alone.

    Points with finite coordinates, and polygons of one strictly convex ring: closed, finite,
    every turn the same way and clearly away from collinear, once around in total. Such a
    ring is simple, so the polygon is valid; anything else (holes, concave, repeated or
    nearly collinear vertices) is left to GEOS. `x`, `y` are in `where.pos` order.
    """
    out = np.zeros(n, dtype=bool)
    finite = np.isfinite(x) & np.isfinite(y)
    if where.rings is None:
        rows = np.flatnonzero(where.first >= 0)
        out[rows] = finite[where.first[rows]]
        return out
    g, _st, npts = where.rings
    ring_first = np.zeros(len(npts), dtype=np.int64)
    np.cumsum(npts[:-1], out=ring_first[1:])
    single = np.bincount(g, minlength=n)[g] == 1
    r = np.flatnonzero(single & (npts >= 4))
    last = ring_first[r] + npts[r] - 1
    closed = (x[ring_first[r]] == x[last]) & (y[ring_first[r]] == y[last])
    r = r[closed]
    if len(r) == 0:
        return out
    k = npts[r] - 1  # distinct vertices, the closing one dropped
    bounds = np.cumsum(k) - k
    kv = np.repeat(k, k)
    base = np.repeat(ring_first[r], k)
    local = np.arange(int(k.sum()), dtype=np.int64) - np.repeat(bounds, k)
    cur = base + local
    prv = base + (local - 1) % kv
    nxt = base + (local + 1) % kv
    ax, ay = x[cur] - x[prv], y[cur] - y[prv]
    bx, by = x[nxt] - x[cur], y[nxt] - y[cur]
    cross = ax * by - ay * bx
    dot = ax * bx + ay * by
    tol = 1e-9 * np.hypot(ax, ay) * np.hypot(bx, by)
    left = np.logical_and.reduceat(cross > tol, bounds)
    right = np.logical_and.reduceat(cross < -tol, bounds)
    turning = np.add.reduceat(np.arctan2(cross, dot), bounds)
    fin = np.logical_and.reduceat(finite[cur], bounds)
    ok = (left | right) & fin & (np.abs(turning) < 3 * np.pi)
    out[g[r[ok]]] = True
    return out
