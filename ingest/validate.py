"""Validation and quarantine: geometry checks and repairs, property coercion, schema inference."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from ingest import values as V
from ingest.crs import CrsChoice, transform_coords, transform_geometries
from layers.ingest import wkbfast
from layers.ingest.parallel import get_coordinates_split, pmap, serial, set_coordinates_split

REASONS = (
    "null_geometry",
    "empty_geometry",
    "unparsable_coordinates",
    "outside_province",
    "geometry_type_mismatch",
    "unparsable_number",
    "unparsable_date",
    "schema_violation",
    "missing_key",
    "duplicate_key",
)

_FAMILY = {
    "Point": "point",
    "MultiPoint": "point",
    "LineString": "line",
    "MultiLineString": "line",
    "LinearRing": "line",
    "Polygon": "polygon",
    "MultiPolygon": "polygon",
}
_MULTI = {"point": "MultiPoint", "line": "MultiLineString", "polygon": "MultiPolygon"}
_SINGLE = {"point": "Point", "line": "LineString", "polygon": "Polygon"}
_DIM = {"point": 0, "line": 1, "polygon": 2}


@dataclass
class Prepared:
    """Rows ready to load (WGS84, coerced) plus everything quarantined, with reasons."""

    wkb: pa.Array  # WGS84 WKB of the kept rows (SRID from the column's typmod)
    row_numbers: np.ndarray  # 1-based row numbers of the kept rows in the source
    properties: pa.Table  # kept rows
    source_key: pa.Array | None
    observed_at: pa.Array | None
    geometry_type: str
    property_schema: dict[str, Any]
    reject_rows: np.ndarray  # 0-based source indices
    reject_reasons: np.ndarray
    reject_details: np.ndarray
    repaired: int = 0
    notes: list[str] = field(default_factory=list)
    # Rows handed to prepare(early=...) (0-based source indices), and which kept rows'
    # WKB differs from what was sent then; None when nothing was sent early.
    early_rows: np.ndarray | None = None
    rewritten: np.ndarray | None = None

    @property
    def count(self) -> int:
        """Rows ready to load."""
        return len(self.wkb)

    def reject_counts(self) -> dict[str, int]:
        """Rejected rows per reason."""
        return dict(Counter(str(r) for r in self.reject_reasons))


class _Quarantine:
    """First reason per row wins; `ok` marks rows with none."""

    def __init__(self, n: int) -> None:
        self.reason = np.full(n, None, dtype=object)
        self.detail = np.full(n, None, dtype=object)
        self._ok = np.ones(n, dtype=bool)

    def add(self, mask: np.ndarray, reason: str, detail: str | np.ndarray) -> None:
        new = mask & self._ok
        if not new.any():
            return
        self.reason[new] = reason
        if isinstance(detail, np.ndarray):
            self.detail[new] = detail[new]
        else:
            self.detail[new] = detail
        self._ok &= ~new

    @property
    def ok(self) -> np.ndarray:
        return self._ok.copy()


def _family(types: np.ndarray) -> np.ndarray:
    return np.array([_FAMILY.get(t, "other") for t in types], dtype=object)


_TYPE_NAMES = np.array(
    ["Point", "LineString", "LinearRing", "Polygon", "MultiPoint", "MultiLineString",
     "MultiPolygon", "GeometryCollection"], dtype=object,
)  # fmt: skip
# Family per shapely type id: 0 point, 1 line, 2 polygon, 3 other.
_TYPE_FAMILY = np.array([0, 1, 1, 2, 0, 1, 2, 3])
_FAMILY_NAMES = ("point", "line", "polygon", "other")


def infer_geometry_type(geoms: np.ndarray, types: np.ndarray | None = None) -> str:
    """Layer geometry type for a new layer: the dominant family, multi if any row is multi.

    `types` (shapely type ids) overrides the geometries' own where it is 0 or more.
    """
    ids = np.asarray(shapely.get_type_id(geoms))
    if types is not None:
        ids = np.where(types >= 0, types, ids)
    types = ids[ids >= 0]
    if len(types) == 0:
        return "Geometry"
    fams = _TYPE_FAMILY[types]
    fam_id = int(np.bincount(fams, minlength=4).argmax())
    fam = _FAMILY_NAMES[fam_id]
    if fam == "other":
        return "Geometry"
    if np.any(types[fams == fam_id] >= 4):
        return _MULTI[fam]
    return _SINGLE[fam]


def _extract_family(geom: shapely.Geometry, fam: str) -> shapely.Geometry | None:
    parts = [
        p for p in shapely.get_parts(geom) if _FAMILY.get(p.geom_type) == fam and not p.is_empty
    ]
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    if fam == "polygon":
        return shapely.union_all(parts)
    return (
        _to_multi(np.array(parts, dtype=object), fam)[0]
        if len(parts) == 1
        else (shapely.MultiLineString(parts) if fam == "line" else shapely.MultiPoint(parts))
    )


def _conform(
    geoms: np.ndarray, target: str, ok: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Geometries made to the target type; masks of mismatches and changes; details."""
    out = geoms.copy()
    mismatch = np.zeros(len(geoms), dtype=bool)
    changed = np.zeros(len(geoms), dtype=bool)
    detail = np.full(len(geoms), None, dtype=object)
    if target == "Geometry":
        return out, mismatch, changed, detail
    fam = _FAMILY[target]
    idx = np.flatnonzero(ok)
    types = np.asarray(shapely.get_type_id(geoms[idx]))
    names = np.array(["Point", "LineString", "LinearRing", "Polygon", "MultiPoint",
                      "MultiLineString", "MultiPolygon", "GeometryCollection"], dtype=object)  # fmt: skip
    tnames = names[np.clip(types, 0, 7)]
    want_multi = target.startswith("Multi")
    single = _SINGLE[fam]
    multi = _MULTI[fam]
    exact = tnames == target
    if want_multi:
        promote = tnames == single
        if promote.any():
            pi = idx[promote]
            out[pi] = _to_multi(geoms[pi], fam)
            changed[pi] = True
        handled = exact | promote
    else:
        demote = (tnames == multi) & (np.asarray(shapely.get_num_geometries(geoms[idx])) == 1)
        if demote.any():
            di = idx[demote]
            out[di] = shapely.get_geometry(geoms[di], 0)
            changed[di] = True
        handled = exact | demote
    for j in np.flatnonzero(~handled):
        i = idx[j]
        g = geoms[i]
        if tnames[j] == "GeometryCollection":
            part = _extract_family(g, fam)
            if part is not None:
                if want_multi and part.geom_type == single:
                    part = _to_multi(np.array([part], dtype=object), fam)[0]
                if part.geom_type == target:
                    out[i] = part
                    changed[i] = True
                    continue
        mismatch[i] = True
        detail[i] = f"{tnames[j]} in a {target} layer"
    return out, mismatch, changed, detail


def _to_multi(geoms: np.ndarray, fam: str) -> np.ndarray:
    ctor = {"polygon": shapely.MultiPolygon, "line": shapely.MultiLineString}.get(
        fam, shapely.MultiPoint
    )
    return np.array([ctor([g]) for g in geoms], dtype=object)


def _schema_type(prop: dict[str, Any]) -> tuple[str, bool]:
    """(base JSON type, nullable) of a schema property."""
    t = prop.get("type", "string")
    if isinstance(t, list):
        nullable = "null" in t
        base = next((x for x in t if x != "null"), "string")
        return str(base), nullable
    return str(t), False


def infer_property(col: pa.Array, typed: bool = False) -> dict[str, Any]:
    """JSON Schema of one column: typed Arrow columns directly, text by what ≥90% parses as.

    Text from typed formats (GeoPackage, Shapefile…) stays text: its type was declared.
    """
    t = col.type
    if pa.types.is_boolean(t):
        return {"type": "boolean"}
    if pa.types.is_integer(t):
        return {"type": "integer"}
    if pa.types.is_floating(t):
        values = col.to_numpy(zero_copy_only=False)
        finite = values[np.isfinite(values)]
        if len(finite) and np.all(finite == np.round(finite)) and np.all(np.abs(finite) < 2**53):
            return {"type": "integer"}
        return {"type": "number"}
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return {"type": "string", "format": "date-time" if pa.types.is_timestamp(t) else "date"}
    if not pa.types.is_string(t) or typed:
        return {"type": "string"}
    present = V.present_mask(col)
    n = int(present.sum())
    if n == 0:
        return {"type": "string"}
    text = pc.utf8_trim_whitespace(col)
    leading_zero = pc.any(pc.match_substring_regex(text, r"^0\d")).as_py()
    if not leading_zero:
        nums, bad = V.parse_numbers(col)
        good = present & ~bad & np.isfinite(nums)
        if good.sum() >= 0.9 * n:
            finite = nums[good]
            integral = (
                np.all(finite == np.round(finite))
                and not pc.any(pc.match_substring(text, ".")).as_py()
                and not pc.any(pc.match_substring(text, ",")).as_py()
            )
            return {"type": "integer" if integral else "number"}
    if pc.any(pc.match_substring_regex(text, r"\d")).as_py():
        dates, bad = V.parse_dates(col, "UTC")
        if (present & ~bad).sum() >= 0.9 * n and pc.all(
            pc.match_substring_regex(pc.drop_null(text), r"^$|\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}")
        ).as_py():
            return {"type": "string", "format": "date-time"}
    return {"type": "string"}


def infer_schema(table: pa.Table, typed: bool = False) -> dict[str, Any]:
    """JSON Schema of a whole attribute table (new layers)."""
    return {
        "type": "object",
        "properties": {
            n: infer_property(table.column(n).combine_chunks(), typed) for n in table.column_names
        },
        "required": [],
        "additionalProperties": True,
    }


def _coerce(
    col: pa.Array, prop: dict[str, Any], name: str, q: _Quarantine, timezone: str
) -> pa.Array:
    base, _nullable = _schema_type(prop)
    fmt = prop.get("format")
    if base in ("integer", "number"):
        nums, bad = V.parse_numbers(col)
        q.add(bad, "unparsable_number", _bad_detail(col, bad, name, "a number"))
        if base == "integer":
            frac = np.isfinite(nums) & (nums != np.round(nums))
            q.add(frac, "unparsable_number", _bad_detail(col, frac, name, "an integer"))
            ints = np.where(np.isfinite(nums), nums, 0).astype(np.int64)
            return pa.array(ints, pa.int64(), mask=~np.isfinite(nums))
        return pa.array(nums, pa.float64(), mask=~np.isfinite(nums))
    if base == "boolean":
        out, bad = V.parse_booleans(col)
        q.add(bad, "schema_violation", _bad_detail(col, bad, name, "true/false"))
        return out
    if base == "string" and fmt in ("date-time", "date"):
        out, bad = V.parse_dates(col, timezone)
        q.add(bad, "unparsable_date", _bad_detail(col, bad, name, "a date"))
        return out
    if pa.types.is_floating(col.type):
        values = col.to_numpy(zero_copy_only=False)
        finite = np.isfinite(values)
        if np.all(values[finite] == np.round(values[finite])):
            return pa.array(np.where(finite, values, 0).astype(np.int64), mask=~finite).cast(
                pa.string()
            )
    if pa.types.is_timestamp(col.type):
        return col
    return col.cast(pa.string())


def _bad_detail(col: pa.Array, bad: np.ndarray, name: str, what: str) -> np.ndarray:
    detail = np.full(len(col), None, dtype=object)
    for i in np.flatnonzero(bad)[:100_000]:
        detail[i] = f"'{name}': {col[int(i)].as_py()!r} is not {what}"
    return detail


class _Recorder:
    """Quarantine additions kept in order, to replay later into a _Quarantine."""

    def __init__(self) -> None:
        self.adds: list[tuple[np.ndarray, str, str | np.ndarray]] = []

    def add(self, mask: np.ndarray, reason: str, detail: str | np.ndarray) -> None:
        self.adds.append((np.asarray(mask, dtype=bool), reason, detail))

    def replay(self, q: _Quarantine) -> None:
        for mask, reason, detail in self.adds:
            q.add(mask, reason, detail)


@dataclass
class _Props:
    schema: dict[str, Any]
    table: pa.Table
    keys: pa.Array | None
    observed: pa.Array | None
    time_bad: np.ndarray | None


@dataclass
class Early:
    """Rows loadable before geometry validation ends (files of 2-D Points or Polygons).

    Their WKB is already in WGS84 and their properties are final; rows that validation
    later quarantines or rewrites are fixed up by the loader (see Prepared.early_rows).
    """

    rows: np.ndarray  # 0-based source indices, ascending
    wkb: pa.Array
    properties: pa.Table
    source_key: pa.Array | None
    observed_at: pa.Array | None
    geometry_type: str  # the file's single geometry type: the likely layer type
    property_schema: dict[str, Any]


def _properties(
    attributes: pa.Table,
    property_schema: dict[str, Any] | None,
    typed: bool,
    key: str | None,
    time_field: str | None,
    timezone: str,
    rec: _Recorder | _Quarantine,
) -> _Props:
    """Coerce the attributes to the schema; reasons go to `rec` in the order of checks."""
    n = attributes.num_rows
    schema = property_schema or infer_schema(attributes, typed)
    props_decl = schema.get("properties", {}) if isinstance(schema, dict) else {}
    by_lower = {c.lower(): c for c in attributes.column_names}
    out_cols: dict[str, pa.Array] = {}
    q: Any = rec
    for col_name in attributes.column_names:
        col = attributes.column(col_name).combine_chunks()
        prop_name = col_name
        if col_name not in props_decl:
            match = next((p for p in props_decl if p.lower() == col_name.lower()), None)
            prop_name = match or col_name
        prop = props_decl.get(prop_name)
        out_cols[prop_name] = (
            _coerce(col, prop, prop_name, q, timezone) if prop is not None else _passthrough(col)
        )
    for req in schema.get("required", []) if isinstance(schema, dict) else []:
        if req in out_cols:
            absent = ~V.present_mask(out_cols[req])
        elif req.lower() in by_lower:
            absent = ~V.present_mask(out_cols[by_lower[req.lower()]])
        else:
            absent = np.ones(n, dtype=bool)
        rec.add(absent, "schema_violation", f"required property '{req}' is missing")
    for name, prop in props_decl.items():
        if "enum" in prop and name in out_cols:
            vals = out_cols[name]
            allowed = pa.array(prop["enum"]).cast(vals.type, safe=False)
            bad = V.present_mask(vals) & ~np.asarray(
                pc.is_in(vals, value_set=allowed).to_numpy(zero_copy_only=False), dtype=bool
            )
            rec.add(bad, "schema_violation", f"'{name}' is not one of {prop['enum']}")
    props = pa.table(out_cols) if out_cols else pa.table({"_": pa.nulls(n)}).drop_columns(["_"])
    keys = None
    if key is not None:
        if key not in props.column_names:
            from layers.errors import InvalidInputError

            raise InvalidInputError(
                f"--key '{key}' is not a column of the file; columns: "
                + ", ".join(props.column_names),
                i18n="err.validate.key_not_column",
                key=key,
                items=", ".join(props.column_names),
            )
        keys = _passthrough(props.column(key).combine_chunks())
        keys = keys.cast(pa.string()) if not pa.types.is_string(keys.type) else keys
        if pa.types.is_floating(props.column(key).type):
            keys = _coerce(props.column(key).combine_chunks(), {"type": "string"}, key, q, timezone)
        rec.add(~V.present_mask(keys), "missing_key", f"key '{key}' is empty")
    observed = time_bad = None
    if time_field is not None and time_field in props.column_names:
        observed, time_bad = V.parse_dates(props.column(time_field).combine_chunks(), timezone)
    return _Props(schema, props, keys, observed, time_bad)


def prepare(
    geometry_wkb: np.ndarray,
    attributes: pa.Table,
    crs: CrsChoice,
    province: shapely.Geometry,
    *,
    geometry_type: str | None,
    property_schema: dict[str, Any] | None,
    key: str | None = None,
    time_field: str | None = None,
    timezone: str = "Asia/Ho_Chi_Minh",
    coordinate_errors: np.ndarray | None = None,
    coordinate_detail: np.ndarray | None = None,
    typed: bool = False,
    early: Callable[[Early], bool] | None = None,
    geometry_arrow: pa.Array | None = None,
) -> Prepared:
    """Check, repair, transform and coerce every row; quarantine the ones that cannot load.

    With `early`, files of 2-D Points or Polygons hand their rows to it (transformed, with
    final properties) before the costly geometry checks, so loading can overlap validation;
    it returns whether it started loading them. `geometry_arrow`, the same WKB as an Arrow
    binary array, saves rebuilding one from the Python objects.
    """
    n = attributes.num_rows
    q = _Quarantine(n)
    notes: list[str] = []
    if coordinate_errors is not None:
        q.add(
            coordinate_errors,
            "unparsable_coordinates",
            coordinate_detail if coordinate_detail is not None else "coordinate is not a number",
        )
    # Points/polygons: rewrite the doubles inside the source WKB; GEOS objects (source
    # CRS) only check validity and types, and serialise just the rows they change.
    source_wkb = (
        geometry_arrow
        if geometry_arrow is not None and len(geometry_arrow) == n
        else pa.array(geometry_wkb, pa.binary())
    )
    fast = wkbfast.coordinate_positions(source_wkb)  # None for Z/M or mixed types
    out_wkb: pa.Array | None = None
    simple = np.zeros(n, dtype=bool)
    if fast is not None:
        x, y = wkbfast.read_xy(source_wkb, fast.pos)
        source_xy = (x, y)
        if crs.swap_axes:
            x, y = y, x
        lon_all, lat_all = transform_coords(crs.proj, x, y)
        out_wkb = wkbfast.write_xy(source_wkb, fast.pos, lon_all, lat_all)
    # Property values do not depend on the geometry; their reasons are replayed after the
    # geometry's, so each row keeps the same first reason.
    rec = _Recorder()
    pr = _properties(attributes, property_schema, typed, key, time_field, timezone, rec)
    early_rows: np.ndarray | None = None
    overlap: AbstractContextManager[None] = nullcontext()
    if early is not None and fast is not None and out_wkb is not None:
        send = wkbfast.sound_rows(out_wkb, fast)
        if coordinate_errors is not None:
            send &= ~coordinate_errors
        early_rows = np.flatnonzero(send)
        sel = None if len(early_rows) == n else pa.array(early_rows, pa.int64())

        def pick(arr: Any) -> Any:
            return arr if arr is None or sel is None else arr.take(sel)

        started = early(
            Early(
                rows=early_rows,
                wkb=pick(out_wkb),
                properties=pick(pr.table),
                source_key=pick(pr.keys),
                observed_at=pick(pr.observed),
                geometry_type=fast.kind,
                property_schema=pr.schema,
            )
        )
        if started:
            overlap = serial()
    # GEOS work stays in this thread while an early COPY keeps the server busy.
    with overlap:
        if fast is not None:
            # Rows whose validity is certain from their coordinates need no GEOS object.
            simple = wkbfast.certainly_valid(fast, *source_xy, n)
        parse = ~simple
        if simple.any():
            geoms = np.full(n, None, dtype=object)
            geoms[parse] = pmap(shapely.from_wkb, geometry_wkb[parse], on_invalid="ignore")
        else:
            geoms = pmap(shapely.from_wkb, geometry_wkb, on_invalid="ignore")

        def materialise(rows: np.ndarray) -> None:
            lazy = rows[simple[rows] & np.asarray(shapely.is_missing(geoms[rows]), dtype=bool)]
            if len(lazy):
                geoms[lazy] = shapely.from_wkb(geometry_wkb[lazy])

        missing = parse & np.asarray(shapely.is_missing(geoms), dtype=bool)
        q.add(missing, "null_geometry", "no geometry")
        empty = ~missing & np.asarray(shapely.is_empty(geoms), dtype=bool)
        q.add(empty, "empty_geometry", "empty geometry")
        live = q.ok
        has_z = bool(np.any(shapely.has_z(geoms[live])))
        if has_z:
            materialise(np.flatnonzero(simple))  # (cannot happen: Z rows take no fast path)
            parse[:] = True
            geoms = shapely.force_2d(geoms)
            fast = None
        idx = np.flatnonzero(live)
        valid = np.ones(n, dtype=bool)
        if fast is not None:
            first_lon, first_lat = lon_all[fast.first[idx]], lat_all[fast.first[idx]]
            check = live & parse
            valid[check] = np.asarray(pmap(shapely.is_valid, geoms[check]), dtype=bool)
        else:
            out_wkb = None
            # Transform every coordinate at once; keep each geometry's first vertex for the
            # province test, which saves building points.
            coords, owner, split = get_coordinates_split(geoms[idx])
            if len(coords):
                x, y = coords[:, 0], coords[:, 1]
                if crs.swap_axes:
                    x, y = y, x
                lon, lat = transform_coords(
                    crs.proj, np.ascontiguousarray(x), np.ascontiguousarray(y)
                )
                geoms[idx] = set_coordinates_split(
                    geoms[idx].copy(), np.column_stack([lon, lat]), split
                )
                first = np.searchsorted(owner, np.arange(len(idx)))
                first_lon, first_lat = lon[first], lat[first]
            else:
                first_lon = first_lat = np.zeros(0)
            valid[live] = np.asarray(pmap(shapely.is_valid, geoms[live]), dtype=bool)
        # Repairs, counted (ST_MakeValid semantics: GEOS make_valid).
        invalid = live & ~valid
        repaired = int(invalid.sum())
        if repaired:
            geoms[invalid] = shapely.make_valid(geoms[invalid])
            notes.append(f"{repaired} invalid geometries repaired (make_valid)")
        # Outside the province: a cheap point test first, the full intersection for the rest.
        if len(idx):
            shapely.prepare(province)
            inside = np.asarray(shapely.contains_xy(province, first_lon, first_lat), dtype=bool)
            unsure = idx[~inside]
            if len(unsure):
                materialise(unsure)
                candidates = geoms[unsure]
                if fast is not None:
                    candidates = transform_geometries(candidates, crs.proj, crs.swap_axes)
                hit = np.asarray(shapely.intersects(province, candidates), dtype=bool)
                out_mask = np.zeros(n, dtype=bool)
                out_mask[unsure[~hit]] = True
                q.add(out_mask, "outside_province", "outside the province boundary")
        live = q.ok
        kind_id = {"Point": 0, "Polygon": 3}.get(fast.kind if fast is not None else "", -1)
        target = geometry_type or infer_geometry_type(
            geoms[live], np.where(simple[live], kind_id, -1)
        )
        if fast is not None and target in (fast.kind, "Geometry"):
            conform_rows = live & parse  # the certain rows already have the target type
        else:
            materialise(np.flatnonzero(live))
            conform_rows = live
        conformed, mismatch, changed, detail = _conform(geoms, target, conform_rows)
        q.add(mismatch, "geometry_type_mismatch", detail)
        geoms = conformed
        reserialise = invalid | changed  # rows whose WKB is not the source's, rewritten
        rec.replay(q)
        source_key = pr.keys
        if source_key is not None:
            live_keys = np.asarray(source_key.to_numpy(zero_copy_only=False), dtype=object)
            dup = np.zeros(n, dtype=bool)
            ok_idx = np.flatnonzero(q.ok)
            _, first_i = np.unique(live_keys[ok_idx].astype(str), return_index=True)
            dup[ok_idx] = True
            dup[ok_idx[first_i]] = False
            q.add(dup, "duplicate_key", f"key '{key}' repeats an earlier row")
        if pr.time_bad is not None:
            q.add(pr.time_bad, "unparsable_date", f"'{time_field}' is not a date")
        keep = q.ok
        keep_idx = np.flatnonzero(keep)
        take = pa.array(keep_idx, pa.int64())
        rewritten: np.ndarray | None = None
        if out_wkb is not None:
            kept_wkb = out_wkb.take(take)
            redo = keep & reserialise
            rewritten = redo[keep_idx]
            if redo.any():
                fixed = transform_geometries(geoms[redo], crs.proj, crs.swap_axes)
                kept_wkb = pc.replace_with_mask(
                    kept_wkb, pa.array(rewritten), pa.array(shapely.to_wkb(fixed), pa.binary())
                )
        else:
            kept_wkb = pa.array(pmap(shapely.to_wkb, geoms[keep]), pa.binary())
            early_rows = None  # nothing sent early can be trusted: the loader starts over
        rej = np.flatnonzero(~keep)
        return Prepared(
            wkb=kept_wkb,
            row_numbers=keep_idx + 1,
            properties=pr.table.take(take),
            source_key=None if source_key is None else source_key.take(take),
            observed_at=None if pr.observed is None else pr.observed.take(take),
            geometry_type=target,
            property_schema=pr.schema,
            reject_rows=rej,
            reject_reasons=q.reason[rej],
            reject_details=q.detail[rej],
            repaired=repaired,
            notes=notes,
            early_rows=early_rows,
            rewritten=rewritten,
        )


def _passthrough(col: pa.Array) -> pa.Array:
    return col
