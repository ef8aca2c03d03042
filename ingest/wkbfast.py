"""Coordinates read and rewritten in place inside WKB, for 2-D little-endian Points/Polygons.

The structure of a geometry does not change when its CRS does, so the transformed WKB is
the source WKB with its doubles replaced: no GEOS objects are built or serialised for it.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def _u32(data: np.ndarray, pos: np.ndarray) -> np.ndarray:
    b = data[pos[:, None] + np.arange(4)].astype(np.uint32)
    return np.asarray(b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16) | (b[:, 3] << 24))


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


def coordinate_positions(wkb: pa.Array) -> tuple[np.ndarray, np.ndarray] | None:
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
        return pos, first
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
    return pos, first


def _views(buf: np.ndarray) -> list[np.ndarray]:
    """The buffer seen as little-endian doubles starting at byte offsets 0..7."""
    return [
        np.frombuffer(buf, dtype="<f8", offset=s, count=(len(buf) - s) // 8)
        if len(buf) > s
        else np.zeros(0, "<f8")
        for s in range(8)
    ]


def read_xy(wkb: pa.Array, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The doubles at `pos` (x) and `pos + 8` (y): one gather per double, by alignment."""
    data, _, _ = _buffers(wkb)
    views = _views(data)
    x = np.empty(len(pos), dtype=np.float64)
    y = np.empty(len(pos), dtype=np.float64)
    shift = pos % 8
    for s in range(8):
        sel = np.flatnonzero(shift == s)
        if len(sel):
            word = (pos[sel] - s) // 8
            x[sel] = views[s][word]
            y[sel] = views[s][word + 1]
    return x, y


def write_xy(wkb: pa.Array, pos: np.ndarray, x: np.ndarray, y: np.ndarray) -> pa.Array:
    """A copy of `wkb` with the doubles at `pos` replaced by x, y."""
    data, offsets, valid = _buffers(wkb)
    out = bytearray(data.tobytes())
    raw = np.frombuffer(out, dtype=np.uint8)
    views = [
        np.frombuffer(out, dtype="<f8", offset=s, count=(len(raw) - s) // 8)
        if len(raw) > s
        else np.zeros(0, "<f8")
        for s in range(8)
    ]
    shift = pos % 8
    for s in range(8):
        sel = np.flatnonzero(shift == s)
        if len(sel):
            word = (pos[sel] - s) // 8
            views[s][word] = x[sel]
            views[s][word + 1] = y[sel]
    n = len(wkb)
    off32 = offsets.astype(np.int32)
    validity = None if valid.all() else pa.array(valid).buffers()[1]
    return pa.Array.from_buffers(
        pa.binary(), n, [validity, pa.py_buffer(off32.tobytes()), pa.py_buffer(bytes(out))]
    )
