"""Typed values from messy columns: numbers, booleans and dates, with a mask of what failed."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingest.tabular import parse_numbers

__all__ = ["parse_booleans", "parse_dates", "parse_numbers", "present_mask"]

_TRUE = {"true", "t", "1", "yes", "y", "co", "có", "x", "đúng", "dung"}
_FALSE = {"false", "f", "0", "no", "n", "khong", "không", "sai", ""}

_DATE_FORMATS = (
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y",
    "%d-%m-%Y",
    "%d.%m.%Y",
    "%Y/%m/%d",
)


def present_mask(arr: pa.Array) -> np.ndarray:
    """True where a value is present (not null, not an empty string)."""
    if pa.types.is_string(arr.type):
        trimmed = pc.utf8_trim_whitespace(arr)
        mask = pc.and_(pc.is_valid(trimmed), pc.not_equal(trimmed, "").fill_null(False))
    else:
        mask = pc.is_valid(arr)
    return np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)


def parse_booleans(arr: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Booleans from bool, numbers or words (true/false, có/không, x); mask of failures."""
    if pa.types.is_boolean(arr.type):
        return arr, np.zeros(len(arr), dtype=bool)
    values = arr.cast(pa.string()).to_pylist()
    out: list[bool | None] = []
    bad = np.zeros(len(values), dtype=bool)
    for i, v in enumerate(values):
        if v is None:
            out.append(None)
            continue
        key = v.strip().lower()
        if key in _TRUE:
            out.append(True)
        elif key in _FALSE:
            out.append(None if key == "" else False)
        else:
            out.append(None)
            bad[i] = True
    return pa.array(out, pa.bool_()), bad


def parse_dates(arr: pa.Array, timezone: str) -> tuple[pa.Array, np.ndarray]:
    """UTC timestamps from ISO 8601 or Vietnamese d/m/Y text; naive values are in `timezone`."""
    n = len(arr)
    if pa.types.is_timestamp(arr.type):
        ts = arr
        if ts.type.tz is None:
            ts = pc.assume_timezone(ts.cast(pa.timestamp("us")), timezone)
        return ts.cast(pa.timestamp("us", tz="UTC")), np.zeros(n, dtype=bool)
    if pa.types.is_date(arr.type):
        ts = pc.assume_timezone(arr.cast(pa.timestamp("us")), timezone)
        return ts.cast(pa.timestamp("us", tz="UTC")), np.zeros(n, dtype=bool)
    text = pc.utf8_trim_whitespace(arr.cast(pa.string()))
    present = present_mask(text)
    result = pa.nulls(n, pa.timestamp("us"))
    for fmt in _DATE_FORMATS:
        parsed = pc.strptime(text, format=fmt, unit="us", error_is_null=True)
        result = pc.coalesce(result, parsed)
    local = pc.assume_timezone(result, timezone, ambiguous="earliest", nonexistent="earliest")
    out = local.cast(pa.timestamp("us", tz="UTC"))
    missing = present & ~np.asarray(pc.is_valid(out).to_numpy(zero_copy_only=False), dtype=bool)
    if missing.any():
        # Offsets (+07:00, Z) and fractions: Python's ISO parser, only for the leftovers.
        values = out.to_pylist()
        raw = text.to_pylist()
        zone = ZoneInfo(timezone)
        for i in np.flatnonzero(missing):
            try:
                dt = datetime.fromisoformat(str(raw[i]).replace("Z", "+00:00"))
            except ValueError:
                continue
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=zone)
            values[i] = dt
            missing[i] = False
        out = pa.array(values, pa.timestamp("us", tz="UTC"))
    return out, missing
