"""CSV and XLSX tables: delimiter and BOM handling, coordinate columns, decimal-comma numbers."""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from layers.errors import InvalidInputError

LAT_NAMES = ("lat", "latitude", "vi do", "vido", "y", "toa do y", "northing", "y m")
LON_NAMES = (
    "lon",
    "lng",
    "long",
    "longitude",
    "kinh do",
    "kinhdo",
    "x",
    "toa do x",
    "easting",
    "x m",
)
WKT_NAMES = ("wkt", "geometry", "geom", "the_geom", "hinh hoc")

_NUMBER_RE = r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$"


def normalise_header(name: str) -> str:
    """Lower-case, accent-free, space-separated form of a column header (vĩ độ -> 'vi do')."""
    text = name.replace("đ", "d").replace("Đ", "D")
    text = unicodedata.normalize("NFD", text)
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn").lower()
    text = re.sub(r"[^a-z0-9]+", " ", text).strip()
    return text


def find_coordinate_columns(names: list[str]) -> tuple[str, str] | None:
    """(x/lon column, y/lat column) from the headers, or None when there is no pair."""
    norm = {normalise_header(n): n for n in names}
    for lon_name, lat_name in (
        ("lon", "lat"),
        ("lng", "lat"),
        ("long", "lat"),
        ("longitude", "latitude"),
        ("kinh do", "vi do"),
        ("kinhdo", "vido"),
        ("x", "y"),
        ("toa do x", "toa do y"),
        ("x m", "y m"),
        ("easting", "northing"),
        ("e", "n"),
    ):
        if lon_name in norm and lat_name in norm:
            return norm[lon_name], norm[lat_name]
    lon = next((norm[k] for k in LON_NAMES if k in norm), None)
    lat = next((norm[k] for k in LAT_NAMES if k in norm), None)
    if lon and lat:
        return lon, lat
    return None


def find_wkt_column(names: list[str]) -> str | None:
    """A column holding WKT geometries, if the headers name one."""
    norm = {normalise_header(n): n for n in names}
    return next((norm[k] for k in WKT_NAMES if k in norm), None)


def normalise_number_text(arr: pa.Array) -> pa.Array:
    """Turn '18,6850646', '1.234,5' and '1,234.5' into '18.6850646', '1234.5', '1234.5'."""
    s = pc.utf8_trim_whitespace(arr.cast(pa.string()))
    s = pc.replace_substring(s, "\u00a0", "")
    s = pc.replace_substring(s, " ", "")
    # Both separators: the last one is the decimal mark.
    eu = pc.match_substring_regex(s, r"^[+-]?\d{1,3}(\.\d{3})+(,\d+)?$")
    us = pc.match_substring_regex(s, r"^[+-]?\d{1,3}(,\d{3})+\.\d+$")
    eu_fixed = pc.replace_substring(pc.replace_substring(s, ".", ""), ",", ".")
    us_fixed = pc.replace_substring(s, ",", "")
    comma_decimal = pc.replace_substring(s, ",", ".", max_replacements=1)
    out = pc.if_else(eu, eu_fixed, pc.if_else(us, us_fixed, comma_decimal))
    return out


def parse_numbers(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Float values and a mask of entries that are present but not numbers (NaN where missing)."""
    if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type):
        values = pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False)
        return np.asarray(values, dtype=np.float64), np.zeros(len(arr), dtype=bool)
    text = normalise_number_text(arr)
    empty = pc.or_kleene(pc.is_null(text), pc.equal(text, "")).fill_null(True)
    ok = pc.match_substring_regex(text, _NUMBER_RE).fill_null(False)
    clean = pc.if_else(ok, text, pa.scalar(None, pa.string()))
    values = pc.cast(clean, pa.float64()).to_numpy(zero_copy_only=False)
    bad = np.asarray(pc.and_(pc.invert(ok), pc.invert(empty)).to_numpy(zero_copy_only=False))
    return np.asarray(values, dtype=np.float64), bad.astype(bool)


def _dedupe(names: list[str]) -> list[str]:
    out: list[str] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(names):
        name = raw.strip() or f"column_{i + 1}"
        if name in seen:
            seen[name] += 1
            name = f"{name}_{seen[name]}"
        else:
            seen[name] = 1
        out.append(name)
    return out


def decode_text(data: bytes, encoding: str | None) -> tuple[str, str, list[str]]:
    """Decode a text file: the given encoding, else UTF-8 (BOM stripped), else CP1258 with a note."""
    notes: list[str] = []
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
        notes.append("UTF-8 byte order mark removed")
    if encoding:
        return data.decode(encoding), encoding, notes
    try:
        return data.decode("utf-8"), "utf-8", notes
    except UnicodeDecodeError:
        notes.append("text is not valid UTF-8; decoded as Windows-1258 (pass --encoding to change)")
        return data.decode("cp1258", errors="replace"), "cp1258", notes


def sniff_delimiter(header_line: str) -> str:
    """';', tab or ',' — whichever splits the header line most."""
    counts = {d: header_line.count(d) for d in (";", "\t", ",", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def read_csv(
    path: Path,
    encoding: str | None,
    max_columns: int = 2_000,
    max_line_bytes: int = 1024**2,
) -> tuple[pa.Table, list[str], str]:
    """Every column as strings; also notes and the delimiter used.

    A header of more than `max_columns` columns, or a line or field longer than
    `max_line_bytes`, is refused with the file and row named.
    """
    raw = path.read_bytes()
    end = raw.find(b"\n", 0, max_line_bytes + 1)
    if end == -1 and len(raw) > max_line_bytes:
        raise InvalidInputError(
            f"{path.name}: the header line is longer than {max_line_bytes} bytes",
            file=path.name,
            i18n="err.tabular.header_line_longer_than_bytes",
            max_line_bytes=max_line_bytes,
        )
    text, _enc, notes = decode_text(raw, encoding)
    first = text.split("\n", 1)[0]
    delim = sniff_delimiter(first)
    header = next(csv.reader(io.StringIO(first), delimiter=delim))
    if len(header) > max_columns:
        raise InvalidInputError(
            f"{path.name}: {len(header)} columns; at most {max_columns}",
            file=path.name,
            i18n="err.tabular.columns_at_most",
            n=len(header),
            max_columns=max_columns,
        )
    names = _dedupe(header)
    try:
        table = pacsv.read_csv(
            io.BytesIO(text.encode("utf-8")),
            # A row may not straddle more than one block: this bounds a line (and a field).
            read_options=pacsv.ReadOptions(
                column_names=names, skip_rows=1, block_size=max_line_bytes
            ),
            parse_options=pacsv.ParseOptions(delimiter=delim, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as exc:
        msg = str(exc).strip().splitlines()[0][:300]
        if "straddl" in msg or "block" in msg:
            raise InvalidInputError(
                f"{path.name}: unreadable CSV: a line or field is longer than "
                f"{max_line_bytes} bytes",
                file=path.name,
                i18n="err.tabular.line_too_long",
                max_line_bytes=max_line_bytes,
            ) from exc
        raise InvalidInputError(
            f"{path.name}: unreadable CSV: {msg}",
            file=path.name,
            i18n="err.tabular.unreadable_csv",
            msg=msg,
        ) from exc
    notes.append(f"CSV delimiter {delim!r}")
    return table, notes, delim


def _xlsx_column(values: list[Any]) -> pa.Array:
    present = [v for v in values if v is not None and v != ""]
    if present and all(isinstance(v, bool) for v in present):
        return pa.array([None if v == "" else v for v in values], pa.bool_())
    if present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return pa.array([None if v == "" else float(v) for v in values], pa.float64())
    if present and all(isinstance(v, datetime | date) for v in present):
        return pa.array(
            [
                None
                if v in (None, "")
                else (v if isinstance(v, datetime) else datetime(v.year, v.month, v.day))
                for v in values
            ],
            pa.timestamp("us"),
        )
    return pa.array([None if v is None else str(v) for v in values], pa.string())


def xlsx_sheets(path: Path) -> list[str]:
    """Sheet names of a workbook."""
    import openpyxl

    wb = openpyxl.load_workbook(path, read_only=True)
    try:
        return list(wb.sheetnames)
    finally:
        wb.close()


def read_xlsx(path: Path, sheet: str | None) -> tuple[pa.Table, list[str], str]:
    """The first (or named) sheet, header on its first non-empty row."""
    import openpyxl

    wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        if sheet is not None and sheet not in wb.sheetnames:
            raise InvalidInputError(
                f"sheet '{sheet}' not found; the workbook has: {', '.join(wb.sheetnames)}",
                i18n="err.tabular.sheet_not_found_workbook_has",
                sheet=sheet,
                items=", ".join(wb.sheetnames),
            )
        ws = wb[sheet] if sheet else wb[wb.sheetnames[0]]
        rows = ws.iter_rows(values_only=True)
        header: list[Any] | None = None
        for row in rows:
            if any(v not in (None, "") for v in row):
                header = list(row)
                break
        if header is None:
            return pa.table({}), ["empty sheet"], ws.title
        while header and header[-1] in (None, ""):
            header.pop()
        names = _dedupe(["" if h is None else str(h) for h in header])
        cols: list[list[Any]] = [[] for _ in names]
        for row in rows:
            if not any(v not in (None, "") for v in row):
                continue
            for i in range(len(names)):
                cols[i].append(row[i] if i < len(row) else None)
        table = pa.table({n: _xlsx_column(c) for n, c in zip(names, cols, strict=True)})
        return table, [f"sheet '{ws.title}'"], ws.title
    finally:
        wb.close()
