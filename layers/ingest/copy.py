"""PostgreSQL COPY: binary rows built with numpy from Arrow columns, and the COPY runs.

No Python object is created per row: a million parcels are encoded in a few vectorised passes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg.copy import QueuedLibpqWriter
from sqlalchemy import Connection

from layers.ingest.wkbfast import coordinate_positions, read_xy

COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
COPY_TRAILER = b"\xff\xff"
_PG_EPOCH_US = int(datetime(2000, 1, 1, tzinfo=UTC).timestamp() * 1_000_000)

Kind = Literal[
    "int4",
    "int8",
    "float8",
    "bool",
    "timestamptz",
    "bytes",
    "jsonb",
    "geometry",
    "json_table",
    "lod_size",
]


@dataclass
class CopyColumn:
    """One column to encode: fixed-width numpy values, an Arrow binary/string array, or
    (encoded lazily, chunk by chunk, so encoding overlaps the server's COPY work) shapely
    geometries ("geometry", as EWKB), an Arrow table ("json_table", one JSON object per row)
    or a WKB array ("lod_size": each geometry's drawn size, float8, see `lod_sizes`).
    """

    kind: Kind
    values: np.ndarray | pa.Array | pa.Table
    null: np.ndarray | None = None


def _fixed(col: CopyColumn, n: int) -> tuple[np.ndarray, int, np.ndarray]:
    """Big-endian payload bytes (n x width), width, and the null mask."""
    values = col.values
    if isinstance(values, pa.Array | pa.ChunkedArray):
        null = ~np.asarray(pc.is_valid(values).to_numpy(zero_copy_only=False), dtype=bool)
        if col.kind == "timestamptz":
            raw = values.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).fill_null(0)
            arr = np.asarray(raw.to_numpy(zero_copy_only=False), dtype=np.int64) - _PG_EPOCH_US
        elif col.kind == "bool":
            arr = np.asarray(values.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
        elif col.kind == "float8":
            arr = np.asarray(values.cast(pa.float64()).fill_null(0).to_numpy(), dtype=np.float64)
        else:
            arr = np.asarray(values.cast(pa.int64()).fill_null(0).to_numpy(), dtype=np.int64)
    else:
        arr = np.asarray(values)
        null = np.zeros(n, dtype=bool) if col.null is None else col.null
    if col.null is not None:
        null = null | col.null
    if col.kind == "bool":
        return arr.astype(np.uint8).reshape(n, 1), 1, null
    if col.kind == "float8":
        return arr.astype(">f8").view(np.uint8).reshape(n, 8), 8, null
    if col.kind == "int4":
        return arr.astype(">i4").view(np.uint8).reshape(n, 4), 4, null
    return arr.astype(">i8").view(np.uint8).reshape(n, 8), 8, null


def _varlen(col: CopyColumn, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lengths, contiguous data, null mask) of a binary/string Arrow array."""
    arr = col.values
    assert isinstance(arr, pa.Array | pa.ChunkedArray)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    null = ~np.asarray(pc.is_valid(arr).to_numpy(zero_copy_only=False), dtype=bool)
    if col.null is not None:
        null = null | col.null
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.binary() if pa.types.is_string(arr.type) else pa.large_binary())
    if arr.null_count:
        arr = arr.fill_null(b"")
    bufs = arr.buffers()
    off_dtype = np.int64 if pa.types.is_large_binary(arr.type) else np.int32
    offsets = np.frombuffer(bufs[1], dtype=off_dtype)[arr.offset : arr.offset + n + 1].astype(
        np.int64
    )
    data = (
        np.frombuffer(bufs[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
        if bufs[2] is not None
        else np.zeros(0, np.uint8)
    )
    lengths = np.diff(offsets)
    lengths[null] = 0
    if null.any() and len(data):
        # Drop the bytes of null entries (normally none) so data stays aligned with lengths.
        keep = np.repeat(~null, np.diff(offsets))
        data = data[keep]
    return lengths, data, null


def _fixed_binary(raw: np.ndarray, width: int) -> pa.Array:
    """An (n x width) uint8 array as an Arrow binary array, one value per row."""
    n = raw.shape[0]
    fixed = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(width), n, [None, pa.py_buffer(np.ascontiguousarray(raw).tobytes())]
    )
    return fixed.cast(pa.binary())


def encode_rows(columns: Sequence[CopyColumn], n: int) -> bytes:
    """Binary COPY tuples (no header or trailer) for n rows of the given columns.

    Each row is the concatenation of fixed pieces (field count, big-endian lengths,
    fixed-width values) and variable ones (WKB, JSON); Arrow joins them row-wise in C++.
    """
    if n == 0:
        return b""
    columns = [_materialise(c) for c in columns]
    empty = pa.scalar(b"", pa.binary())
    pieces: list[Any] = [pa.scalar(len(columns).to_bytes(2, "big"), pa.binary())]
    for col in columns:
        if col.kind in ("bytes", "jsonb"):
            lengths, _data, null = _varlen(col, n)
            extra = 1 if col.kind == "jsonb" else 0  # jsonb's binary form starts with version 1
            field_len = np.where(null, -1, lengths + extra).astype(">i4")
            pieces.append(_fixed_binary(field_len.view(np.uint8).reshape(n, 4), 4))
            values = col.values
            assert isinstance(values, pa.Array | pa.ChunkedArray)
            if isinstance(values, pa.ChunkedArray):
                values = values.combine_chunks()
            values = values.cast(pa.binary()) if not pa.types.is_binary(values.type) else values
            if col.null is not None:
                values = pc.if_else(pa.array(col.null), empty, values)
            if extra:
                version = pc.if_else(pa.array(null), empty, pa.scalar(b"\x01", pa.binary()))
                pieces.append(version)
            pieces.append(values.fill_null(b""))
        else:
            raw, width, null = _fixed(col, n)
            field_len = np.where(null, -1, width).astype(">i4")
            pieces.append(_fixed_binary(field_len.view(np.uint8).reshape(n, 4), 4))
            value = _fixed_binary(raw, width)
            if null.any():
                value = pc.if_else(pa.array(null), empty, value)
            pieces.append(value)
    joined = pc.binary_join_element_wise(*pieces, empty)
    bufs = joined.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int32)[joined.offset : joined.offset + n + 1]
    return bytes(bufs[2].to_pybytes()[int(offsets[0]) : int(offsets[-1])])


def iter_copy_chunks(
    columns: Sequence[CopyColumn], n: int, chunk_rows: int = 50_000, first: int = 0
) -> Iterator[bytes]:
    """The whole binary COPY stream (header, tuples, trailer) of rows first..first+n-1."""
    yield COPY_HEADER
    end = first + n
    for start in range(first, end, chunk_rows):
        stop = min(end, start + chunk_rows)
        part = [_slice(c, start, stop) for c in columns]
        yield encode_rows(part, stop - start)
    yield COPY_TRAILER


def _materialise(col: CopyColumn) -> CopyColumn:
    if col.kind == "geometry":
        import shapely

        from layers.ingest.parallel import pmap

        geoms = shapely.set_srid(np.asarray(col.values, dtype=object), 4326)
        wkb = pa.array(pmap(shapely.to_wkb, geoms, include_srid=True), pa.binary())
        return CopyColumn("bytes", wkb, col.null)
    if col.kind == "json_table":
        assert isinstance(col.values, pa.Table)
        return CopyColumn("jsonb", json_objects(col.values), col.null)
    if col.kind == "lod_size":
        assert isinstance(col.values, pa.Array | pa.ChunkedArray)
        size, null = lod_sizes(col.values)
        return CopyColumn("float8", size, null if col.null is None else null | col.null)
    return col


def lod_sizes(wkb: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's drawn size in degrees (layers.features.tiles.TILE_SIZE_SQL) and its NULL mask.

    Computed from the WKB's own doubles when every row is a 2-D Point or Polygon (the
    coordinates are gathered in one pass), else from shapely's bounds. Empty or missing
    geometries have no size, as in PostGIS.
    """
    if isinstance(wkb, pa.ChunkedArray):
        wkb = wkb.combine_chunks()
    n = len(wkb)
    where = coordinate_positions(wkb) if n else None
    if where is not None and where.kind == "Point":
        # An empty point is written as NaN coordinates, which PostGIS reads as empty.
        null = where.first < 0
        x, _ = read_xy(wkb, where.pos)
        null[~null] = np.isnan(x[where.first[~null]])
        return np.zeros(n, dtype=np.float64), null
    if where is not None:
        x, y = read_xy(wkb, where.pos)
        has = where.first >= 0
        starts = where.first[has]
        # Rows' coordinates are contiguous and in row order, so per-row extremes are reduceats.
        xmin = np.full(n, np.nan)
        xmax, ymin, ymax = xmin.copy(), xmin.copy(), xmin.copy()
        if len(starts):
            xmin[has] = np.minimum.reduceat(x, starts)
            xmax[has] = np.maximum.reduceat(x, starts)
            ymin[has] = np.minimum.reduceat(y, starts)
            ymax[has] = np.maximum.reduceat(y, starts)
    else:
        import shapely

        b = shapely.bounds(shapely.from_wkb(np.asarray(wkb.to_numpy(zero_copy_only=False))))
        xmin, ymin, xmax, ymax = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    w = xmax - xmin
    h = ymax - ymin
    size = np.maximum(np.sqrt(w * h), np.maximum(w / 4, h / 4))
    null = np.isnan(size)
    return np.where(null, 0.0, size), null


def _slice(col: CopyColumn, start: int, stop: int) -> CopyColumn:
    if isinstance(col.values, pa.Table):
        return CopyColumn(col.kind, col.values.slice(start, stop - start), None)
    values = col.values[start:stop]
    null = None if col.null is None else col.null[start:stop]
    return CopyColumn(col.kind, values, null)


# --- JSON objects, built column-wise in Arrow ---------------------------------------------

_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f]"


def _json_fallback(arr: pa.Array) -> pa.Array:
    def default(v: object) -> object:
        if isinstance(v, bytes):
            return v.hex()
        return str(v)

    return pa.array(
        [
            "null" if v is None else json.dumps(v, ensure_ascii=False, default=default)
            for v in arr.to_pylist()
        ],
        pa.string(),
    )


def json_fragments(arr: pa.Array) -> pa.Array:
    """Each value of a column as JSON text ('null' for nulls)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    t = arr.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        s = arr.cast(pa.string())
        if pc.any(pc.match_substring_regex(s, _CONTROL)).as_py():
            return _json_fallback(arr)
        s = pc.replace_substring(s, "\\", "\\\\")
        s = pc.replace_substring(s, '"', '\\"')
        s = pc.replace_substring(s, "\n", "\\n")
        s = pc.replace_substring(s, "\r", "\\r")
        s = pc.replace_substring(s, "\t", "\\t")
        s = pc.binary_join_element_wise('"', s, '"', "")
        return s.fill_null("null")
    if pa.types.is_integer(t):
        return arr.cast(pa.string()).fill_null("null")
    if pa.types.is_floating(t):
        f = arr.cast(pa.float64())
        finite = pc.is_finite(f)
        f = pc.if_else(finite, f, pa.scalar(None, pa.float64()))
        return f.cast(pa.string()).fill_null("null")
    if pa.types.is_boolean(t):
        return pc.if_else(arr, "true", "false").fill_null("null")
    if pa.types.is_timestamp(t):
        ts = arr if t.tz else pc.assume_timezone(arr, "UTC")
        ts = ts.cast(pa.timestamp("us", tz="UTC"))
        whole = ts.cast(pa.timestamp("s", tz="UTC"), safe=False)
        has_fraction = pc.any(
            pc.not_equal(ts.cast(pa.int64()), pc.multiply(whole.cast(pa.int64()), 1_000_000))
        ).as_py()
        fmt_src = ts if has_fraction else whole
        text = pc.strftime(fmt_src, format="%Y-%m-%dT%H:%M:%SZ")
        return pc.binary_join_element_wise('"', text, '"', "").fill_null("null")
    if pa.types.is_date(t):
        text = pc.strftime(arr.cast(pa.timestamp("s")), format="%Y-%m-%d")
        return pc.binary_join_element_wise('"', text, '"', "").fill_null("null")
    return _json_fallback(arr)


def json_objects(table: pa.Table) -> pa.Array:
    """One JSON object per row of `table`, keys = column names, as Arrow strings."""
    if table.num_columns == 0:
        return pa.array(["{}"] * table.num_rows, pa.string())
    parts: list[Any] = ["{"]
    for i, name in enumerate(table.column_names):
        key = json.dumps(name, ensure_ascii=False) + ":"
        parts.append(("," if i else "") + key)
        parts.append(json_fragments(table.column(name)))
    parts.append("}")
    return pc.binary_join_element_wise(*parts, "")


# --- running COPY ------------------------------------------------------------------------------

OnRows = Callable[[int], None]


def copy_binary_raw(
    raw: psycopg.Connection[Any],
    table: str,
    columns: str,
    cols: Sequence[CopyColumn],
    count: int,
    *,
    first: int = 0,
    chunk_rows: int = 50_000,
    on_rows: OnRows | None = None,
    queued: bool = False,
) -> None:
    """Binary COPY of rows first..first+count-1 of `cols` into `table` over a psycopg connection.

    `table` and `columns` are already quoted identifiers of our own; `on_rows` hears how many
    rows each chunk sent. `queued` hands the writing to a thread, so encoding overlaps it.
    """
    with raw.cursor() as cur:
        writer = QueuedLibpqWriter(cur) if queued else None
        with cur.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT binary)", writer=writer) as cp:
            sent = 0
            for chunk in iter_copy_chunks(cols, count, chunk_rows, first=first):
                cp.write(chunk)
                if chunk is not COPY_HEADER and chunk is not COPY_TRAILER:
                    rows = min(chunk_rows, count - sent)
                    sent += rows
                    if on_rows is not None:
                        on_rows(rows)


def _driver(conn: Connection) -> psycopg.Connection[Any]:
    raw = conn.connection.driver_connection
    assert raw is not None
    return raw  # type: ignore[no-any-return]


def copy_binary(
    conn: Connection,
    table: str,
    columns: str,
    cols: Sequence[CopyColumn],
    count: int,
    on_rows: OnRows | None = None,
) -> None:
    """Binary COPY into `table` in the transaction of a SQLAlchemy connection."""
    copy_binary_raw(_driver(conn), table, columns, cols, count, on_rows=on_rows, queued=True)


def copy_text_rows(
    conn: Connection, table: str, columns: str, rows: Iterable[Sequence[Any]]
) -> None:
    """Text COPY of Python rows into `table` (small row counts: rejects and the like)."""
    with (
        _driver(conn).cursor() as cur,
        cur.copy(f"COPY {table} ({columns}) FROM STDIN") as cp,  # our own identifiers
    ):
        for row in rows:
            cp.write_row(row)
