"""Readers: every supported file format into one Arrow table plus WKB geometries and a CRS."""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyogrio
import shapely

from ingest import tabular
from ingest.encoding import (
    EncodingGuess,
    dbf_text_samples,
    guess_encoding,
    normalise_encoding_name,
    tcvn3_to_unicode,
)
from layers.errors import InvalidInputError, PayloadTooLargeError

VECTOR_FORMATS = {
    ".gpkg": "GPKG",
    ".shp": "ESRI Shapefile",
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".kml": "KML",
    ".kmz": "KMZ",
    ".fgb": "FlatGeobuf",
    ".dxf": "DXF",
}
TABULAR_FORMATS = {".csv": "CSV", ".txt": "CSV", ".tsv": "CSV", ".xlsx": "XLSX"}
SUPPORTED = sorted([*VECTOR_FORMATS, *TABULAR_FORMATS, ".zip"])

# KML bookkeeping fields carry nothing a sector layer needs.
_KML_NOISE = {
    "id",
    "timestamp",
    "begin",
    "end",
    "altitudeMode",
    "tessellate",
    "extrude",
    "visibility",
    "drawOrder",
    "icon",
}
_DXF_NOISE = {"PaperSpace", "SubClasses", "Linetype"}


@dataclass
class SourceData:
    """A file read into memory: attributes, WKB geometries (source CRS) and what we learned."""

    format: str
    path: Path
    source_layer: str | None
    layers: list[str]
    attributes: pa.Table
    geometry: np.ndarray  # WKB bytes or None per row
    crs_wkt: str | None
    encoding: str | None = None
    notes: list[str] = field(default_factory=list)
    coordinate_columns: tuple[str, str] | None = None
    coordinate_errors: np.ndarray | None = None  # rows whose coordinates did not parse
    coordinate_detail: np.ndarray | None = None  # per bad row: which column and what value
    geometry_arrow: pa.Array | None = None  # the same WKB as an Arrow binary array, if read so

    @property
    def num_rows(self) -> int:
        """Number of rows read."""
        return int(self.attributes.num_rows)


@dataclass(frozen=True)
class ReadLimits:
    """What one import may hold (settings ingest_max_*); beyond it a clear 413, never a crash."""

    uncompressed_bytes: int = 1024**3
    compression_ratio: float = 200.0
    archive_members: int = 10_000
    rows: int = 5_000_000
    columns: int = 2_000
    line_bytes: int = 1024**2


def hide_paths(message: str, path: Path) -> str:
    """A driver's message without the server's directories (only the file's own name)."""
    for place in (str(path), str(path.parent)):
        message = message.replace(place + "/", "").replace(place, path.name)
    return message


def check_archive(path: Path, limits: ReadLimits) -> None:
    """Refuse zip bombs before anything is extracted: members, total size and ratio."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise InvalidInputError(
            f"{path.name}: not a readable zip archive",
            file=path.name,
            i18n="err.formats.not_readable_zip_archive",
        ) from exc
    if len(infos) > limits.archive_members:
        raise PayloadTooLargeError(
            f"{path.name}: {len(infos)} files in the archive; at most {limits.archive_members}",
            file=path.name,
            i18n="err.formats.files_in_archive_at_most",
            n=len(infos),
            archive_members=limits.archive_members,
        )
    total = sum(i.file_size for i in infos)
    packed = max(1, sum(i.compress_size for i in infos))
    if total > limits.uncompressed_bytes:
        raise PayloadTooLargeError(
            f"{path.name}: {total} bytes once uncompressed; at most {limits.uncompressed_bytes}",
            file=path.name,
            i18n="err.formats.bytes_once_uncompressed_at_most",
            total=total,
            uncompressed_bytes=limits.uncompressed_bytes,
        )
    if total > 1024**2 and total / packed > limits.compression_ratio:
        raise PayloadTooLargeError(
            f"{path.name}: compressed {total / packed:.0f} to 1 (a zip bomb?); at most"
            f" {limits.compression_ratio:.0f} to 1",
            file=path.name,
            i18n="err.formats.compressed_to_1_zip_bomb",
            ratio=format(total / packed, ".0f"),
            compression_ratio=format(limits.compression_ratio, ".0f"),
        )


def _extract(path: Path, member: str, into: Path, limits: ReadLimits) -> Path:
    """Stream one member out of a zip, counting the bytes against the limit as they come."""
    target = into / Path(member).name
    written = 0
    with zipfile.ZipFile(path) as zf, zf.open(member) as src, target.open("wb") as out:
        while chunk := src.read(1024 * 1024):
            written += len(chunk)
            if written > limits.uncompressed_bytes:
                raise PayloadTooLargeError(
                    f"{path.name}: '{Path(member).name}' is more than"
                    f" {limits.uncompressed_bytes} bytes once uncompressed",
                    file=path.name,
                    i18n="err.formats.more_than_bytes_once_uncompressed",
                    name=Path(member).name,
                    uncompressed_bytes=limits.uncompressed_bytes,
                )
            out.write(chunk)
    return target


def _raw(table: pa.Table, column: str, i: int) -> str:
    value = table.column(column)[i].as_py()
    return "" if value is None else str(value)


def _coordinate_detail(
    table: pa.Table, coords: tuple[str, str], bad_x: np.ndarray, bad_y: np.ndarray
) -> np.ndarray:
    """Per row with a bad coordinate: the column and its value, as the other rejects say it."""
    detail = np.full(table.num_rows, None, dtype=object)
    for i in np.flatnonzero(bad_x | bad_y)[:100_000]:
        name = coords[0] if bad_x[i] else coords[1]
        detail[i] = f"'{name}': {_raw(table, name, int(i))!r} is not a number"
    return detail


def _no_usable_coordinates(
    path: Path, table: pa.Table, coords: tuple[str, str], n: int
) -> InvalidInputError:
    """The error for a table none of whose rows has a usable coordinate pair (with examples)."""
    rows = list(range(min(n, 3)))
    # row numbers as a spreadsheet shows them: the header is row 1
    examples = "; ".join(
        f"{i + 2} ({coords[0]}={_raw(table, coords[0], i)!r}, "
        f"{coords[1]}={_raw(table, coords[1], i)!r})"
        for i in rows
    )
    return InvalidInputError(
        f"{path.name}: none of the {n} rows has usable coordinates in columns "
        f"'{coords[0]}' and '{coords[1]}' (numbers are expected); for example rows {examples}",
        param="file",
        i18n="imp.err.no_coordinates",
        file=path.name,
        n=str(n),
        x=coords[0],
        y=coords[1],
        examples=examples,
    )


def _zip_member(path: Path) -> tuple[str, str]:
    """The dataset inside a zip: (GDAL path, extension)."""
    with zipfile.ZipFile(path) as zf:
        names = [n for n in zf.namelist() if not n.endswith("/") and "__MACOSX" not in n]
    for ext in (".shp", ".gpkg", ".geojson", ".json", ".kml", ".fgb", ".dxf", ".csv", ".xlsx"):
        hits = sorted(n for n in names if n.lower().endswith(ext))
        if hits:
            return hits[0], ext
    raise InvalidInputError(
        f"{path.name}: the zip holds no dataset I can read ({', '.join(names[:8])})",
        i18n="err.formats.zip_holds_no_dataset_i",
        file=path.name,
        items=", ".join(names[:8]),
    )


def detect_format(path: Path) -> str:
    """Short format name from the file name (and the content of a zip)."""
    ext = path.suffix.lower()
    if ext == ".zip":
        _member, inner = _zip_member(path)
        name = VECTOR_FORMATS.get(inner) or TABULAR_FORMATS.get(inner)
        return f"{name} (zipped)"
    if ext in VECTOR_FORMATS:
        return VECTOR_FORMATS[ext]
    if ext in TABULAR_FORMATS:
        return TABULAR_FORMATS[ext]
    raise InvalidInputError(
        f"{path.name}: unsupported file type '{ext}'; supported: {', '.join(SUPPORTED)}",
        i18n="err.formats.unsupported_file_type_supported",
        file=path.name,
        ext=ext,
        items=", ".join(SUPPORTED),
    )


def read_source(
    path: Path,
    source_layer: str | None = None,
    encoding: str | None = None,
    limits: ReadLimits | None = None,
) -> SourceData:
    """Read any supported file; `source_layer` picks a GeoPackage layer or an XLSX sheet."""
    limits = limits or ReadLimits()
    if not path.exists():
        raise InvalidInputError(
            f"{path.name} does not exist", file=path.name, i18n="err.formats.does_not_exist"
        )
    ext = path.suffix.lower()
    if ext in (".zip", ".kmz"):
        check_archive(path, limits)  # before anything looks inside
    fmt = detect_format(path)
    if ext == ".zip":
        member, inner = _zip_member(path)
        if inner in TABULAR_FORMATS:
            tmpdir = Path(tempfile.mkdtemp(prefix="iocmap-unzip-"))
            try:
                extracted = _extract(path, member, tmpdir, limits)
                data = read_source(extracted, source_layer, encoding, limits)
            finally:  # the table is in memory by now: nothing may stay on disk
                shutil.rmtree(tmpdir, ignore_errors=True)
            data.format = fmt
            data.path = path
            return data
        gdal_path = f"/vsizip/{path}/{member}"
        data = _read_vector(
            path, gdal_path, inner, fmt, source_layer, encoding, zipped=True, limits=limits
        )
    elif ext in TABULAR_FORMATS:
        data = _read_tabular(path, fmt, source_layer, encoding, limits)
    else:
        data = _read_vector(
            path, str(path), ext, fmt, source_layer, encoding, zipped=False, limits=limits
        )
    if data.num_rows > limits.rows:
        raise PayloadTooLargeError(
            f"{path.name}: {data.num_rows} rows; at most {limits.rows} per import",
            file=path.name,
            i18n="err.formats.rows_at_most_per_import",
            num_rows=data.num_rows,
            rows=limits.rows,
        )
    return data


def _shapefile_encoding(
    path: Path, gdal_path: str, zipped: bool, encoding: str | None
) -> tuple[str | None, EncodingGuess | None, list[str]]:
    """Encoding to read a shapefile's DBF with: --encoding, else .cpg, else sniffed bytes."""
    notes: list[str] = []
    dbf_bytes: bytes | None = None
    cpg: str | None = None
    if zipped:
        member = gdal_path.split(str(path) + "/", 1)[1]
        stem = member[: -len(".shp")]
        with zipfile.ZipFile(path) as zf:
            names = {n.lower(): n for n in zf.namelist()}
            if (stem + ".dbf").lower() in names:
                dbf_bytes = zf.read(names[(stem + ".dbf").lower()])
            if (stem + ".cpg").lower() in names:
                cpg = zf.read(names[(stem + ".cpg").lower()]).decode("ascii", "replace")
    else:
        for suffix in (".dbf", ".DBF"):
            if path.with_suffix(suffix).exists():
                dbf_bytes = path.with_suffix(suffix).read_bytes()
        for suffix in (".cpg", ".CPG"):
            if path.with_suffix(suffix).exists():
                cpg = path.with_suffix(suffix).read_text(errors="replace")
    guess = guess_encoding(dbf_text_samples(dbf_bytes)) if dbf_bytes else None
    if encoding:
        return normalise_encoding_name(encoding), guess, notes
    if cpg and cpg.strip():
        enc = normalise_encoding_name(cpg)
        notes.append(f"encoding {enc} from the .cpg file")
        if guess is not None and enc == "utf-8" and guess.is_legacy:
            notes.append(guess.message() + " (despite the .cpg)")
            return ("tcvn3" if guess.encoding == "tcvn3" else "latin-1"), guess, notes
        return enc, guess, notes
    if guess is None or guess.encoding == "ascii":
        return None, guess, notes
    if guess.encoding == "utf-8":
        notes.append("no .cpg: text detected as UTF-8")
        return "utf-8", guess, notes
    notes.append(guess.message())
    return ("tcvn3" if guess.encoding == "tcvn3" else "latin-1"), guess, notes


def _read_vector(
    path: Path,
    gdal_path: str,
    ext: str,
    fmt: str,
    source_layer: str | None,
    encoding: str | None,
    zipped: bool,
    limits: ReadLimits | None = None,
) -> SourceData:
    limits = limits or ReadLimits()
    notes: list[str] = []
    try:
        layer_list = [str(row[0]) for row in pyogrio.list_layers(gdal_path)]
    except Exception as exc:
        raise InvalidInputError(
            hide_paths(f"{path.name}: cannot open as {fmt}: {exc}", path),
            file=path.name,
            i18n="err.formats.cannot_open_as",
            fmt=fmt,
            exc=hide_paths(str(exc), path),
        ) from exc
    if source_layer is not None and source_layer not in layer_list:
        raise InvalidInputError(
            f"{path.name} has no layer '{source_layer}'; it has: {', '.join(layer_list)}",
            i18n="err.formats.has_no_layer_it_has",
            file=path.name,
            source_layer=source_layer,
            items=", ".join(layer_list),
        )
    chosen = source_layer or (layer_list[0] if layer_list else None)
    if source_layer is None and len(layer_list) > 1:
        notes.append(
            f"{len(layer_list)} layers in the file; read '{chosen}' "
            "(choose another with --source-layer)"
        )
    read_encoding = normalise_encoding_name(encoding) if encoding else None
    raw_text: str | None = None  # decode text bytes ourselves with this (legacy VN encodings)
    kwargs: dict[str, object] = {}
    if ext == ".shp":
        read_encoding, _guess, enc_notes = _shapefile_encoding(path, gdal_path, zipped, encoding)
        notes.extend(enc_notes)
        if read_encoding in {"tcvn3", "vni", "latin-1"}:
            raw_text = read_encoding
            kwargs["ENCODING"] = ""  # GDAL hands us the DBF bytes untouched
            read_encoding = None
        elif read_encoding:
            kwargs["ENCODING"] = read_encoding
            read_encoding = None
    try:
        # Counted before reading (GDAL scans the file without keeping the features).
        count = int(
            pyogrio.read_info(gdal_path, layer=chosen, force_feature_count=True)["features"]
        )
    except Exception:  # an unknown count: the row limit applies after reading
        count = -1
    if count > limits.rows:
        raise PayloadTooLargeError(
            f"{path.name}: {count} rows; at most {limits.rows} per import",
            file=path.name,
            i18n="err.formats.rows_at_most_per_import_2",
            count=count,
            rows=limits.rows,
        )
    if ext == ".dxf":
        # Closed polylines are cadastral parcels: read them as polygons.
        pyogrio.set_gdal_config_options({"DXF_CLOSED_LINE_AS_POLYGON": "TRUE"})
    try:
        meta, table = pyogrio.read_arrow(gdal_path, layer=chosen, encoding=read_encoding, **kwargs)
    except Exception as exc:
        raise InvalidInputError(
            hide_paths(f"{path.name}: cannot read layer '{chosen}': {exc}", path),
            file=path.name,
            i18n="err.formats.cannot_read_layer",
            chosen=chosen,
            exc=hide_paths(str(exc), path),
        ) from exc
    geom_name = meta.get("geometry_name") or "wkb_geometry"
    if geom_name not in table.column_names:
        geom_name = next(
            (n for n in table.column_names if n in ("wkb_geometry", "geometry", "geom")), ""
        )
    geometry = (
        np.asarray(table.column(geom_name).to_numpy(zero_copy_only=False), dtype=object)
        if geom_name
        else np.full(table.num_rows, None, dtype=object)
    )
    geometry_arrow = _binary(table.column(geom_name)) if geom_name else None
    attrs = table.drop_columns([geom_name]) if geom_name else table
    noise = _KML_NOISE if ext in (".kml", ".kmz") else _DXF_NOISE if ext == ".dxf" else set()
    drop = [n for n in attrs.column_names if n in noise]
    if ext in (".kml", ".kmz"):
        drop += [
            n
            for n in attrs.column_names
            if n in ("description",) and attrs.column(n).null_count == attrs.num_rows
        ]
    attrs = attrs.drop_columns(drop) if drop else attrs
    attrs = _plain_types(attrs)
    if raw_text is not None:
        attrs = _decode_bytes(attrs, raw_text)
        if raw_text == "tcvn3":
            notes.append("TCVN3 text converted to Unicode")
    crs = meta.get("crs")
    return SourceData(
        format=fmt,
        path=path,
        source_layer=chosen,
        layers=layer_list,
        attributes=attrs,
        geometry=geometry,
        crs_wkt=str(crs) if crs else None,
        encoding=raw_text or str(kwargs.get("ENCODING") or meta.get("encoding") or "") or None,
        notes=notes,
        geometry_arrow=geometry_arrow,
    )


def _binary(col: pa.ChunkedArray) -> pa.Array | None:
    """One plain Arrow binary array (kept so validation need not rebuild it from objects)."""
    arr = col.combine_chunks()
    if isinstance(arr, pa.ExtensionArray):
        arr = arr.storage
    if pa.types.is_large_binary(arr.type):
        arr = arr.cast(pa.binary())
    return arr if pa.types.is_binary(arr.type) else None


def _plain_types(table: pa.Table) -> pa.Table:
    """Dictionary and large types to their plain form, so downstream code sees few types."""
    cols = []
    for name in table.column_names:
        col = table.column(name)
        t = col.type
        if pa.types.is_dictionary(t):
            col = col.cast(t.value_type)
        elif pa.types.is_large_string(t):
            col = col.cast(pa.string())
        cols.append(col)
    return pa.table(cols, names=table.column_names)


def _decode_bytes(table: pa.Table, codec: str) -> pa.Table:
    """Decode undecoded text columns (DBF bytes) with a legacy codec, per distinct value."""
    cols = []
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_string(col.type):
            enc = pc.dictionary_encode(col.cast(pa.binary())).combine_chunks()
            decoded = [_decode_one(v, codec) for v in enc.dictionary.to_pylist()]
            col = pa.chunked_array([pc.take(pa.array(decoded, pa.string()), enc.indices)])
        cols.append(col)
    return pa.table(cols, names=table.column_names)


def _decode_one(value: bytes | None, codec: str) -> str | None:
    if value is None:
        return None
    text = value.decode("latin-1")
    return tcvn3_to_unicode(text) if codec == "tcvn3" else text


def _read_tabular(
    path: Path,
    fmt: str,
    source_layer: str | None,
    encoding: str | None,
    limits: ReadLimits | None = None,
) -> SourceData:
    notes: list[str] = []
    if fmt == "XLSX":
        sheets = tabular.xlsx_sheets(path)
        table, read_notes, sheet = tabular.read_xlsx(path, source_layer)
        layers = sheets
        chosen: str | None = sheet
    else:
        enc = normalise_encoding_name(encoding) if encoding else None
        lim = limits or ReadLimits()
        table, read_notes, _delim = tabular.read_csv(path, enc, lim.columns, lim.line_bytes)
        layers = [path.stem]
        chosen = path.stem
    notes.extend(read_notes)
    n = table.num_rows
    coords = tabular.find_coordinate_columns(table.column_names)
    geometry = np.full(n, None, dtype=object)
    coord_errors = np.zeros(n, dtype=bool)
    coord_detail = None
    if coords is not None:
        xs, bad_x = tabular.parse_numbers(table.column(coords[0]).combine_chunks())
        ys, bad_y = tabular.parse_numbers(table.column(coords[1]).combine_chunks())
        coord_errors = bad_x | bad_y
        ok = np.isfinite(xs) & np.isfinite(ys)
        coord_detail = _coordinate_detail(table, coords, bad_x, bad_y)
        if n and not ok.any():
            raise _no_usable_coordinates(path, table, coords, n)
        pts = np.full(n, None, dtype=object)
        if ok.any():
            pts[ok] = shapely.points(xs[ok], ys[ok])
        geometry = shapely.to_wkb(pts)
        notes.append(f"coordinates from columns '{coords[0]}' (x) and '{coords[1]}' (y)")
        table = table.drop_columns(list(coords))
    else:
        wkt_col = tabular.find_wkt_column(table.column_names)
        if wkt_col is None:
            raise InvalidInputError(
                f"{path.name}: no coordinate columns found; name them lat/lon, "
                "latitude/longitude, vĩ độ/kinh độ or x/y (or give a WKT column); "
                f"columns are: {', '.join(table.column_names)}",
                i18n="err.formats.no_coordinate_columns_found_name",
                file=path.name,
                items=", ".join(table.column_names),
            )
        texts = table.column(wkt_col).to_numpy(zero_copy_only=False)
        geoms = shapely.from_wkt(texts, on_invalid="ignore")
        coord_errors = np.array(
            [t not in (None, "") for t in texts], dtype=bool
        ) & shapely.is_missing(geoms)
        geometry = shapely.to_wkb(geoms)
        notes.append(f"geometries from WKT column '{wkt_col}'")
        table = table.drop_columns([wkt_col])
    return SourceData(
        format=fmt,
        path=path,
        source_layer=chosen,
        layers=layers,
        attributes=table,
        geometry=np.asarray(geometry, dtype=object),
        crs_wkt=None,
        encoding=encoding,
        notes=notes,
        coordinate_columns=coords,
        coordinate_errors=coord_errors,
        coordinate_detail=coord_detail if coords is not None else None,
    )
