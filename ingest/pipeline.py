"""One import, end to end: read, resolve the CRS, validate, then load atomically (or dry-run)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import shapely
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, Engine

from ingest import crs as crsmod
from ingest.formats import ReadLimits, SourceData, hide_paths, read_source
from ingest.load import EarlyLoad, LoadCounts, load
from ingest.province import province_boundary, tolerant_boundary
from ingest.validate import Early, Prepared, prepare
from layers.errors import ConflictError, InvalidInputError, IocError, NotFoundError
from layers.features.items import layer_row_count
from layers.features.partitions import BuildSet
from layers.features.registry import (
    LayerInfo,
    LayerSpec,
    LayerVisibility,
    Sector,
    create_or_update_layer,
    get_layer,
    layer_id_of,
)
from layers.ingest.batches import create_batch, finish_batch, write_rejects
from layers.ingest.locks import hold_batch, lock_layer_for_import
from layers.settings import Settings

Progress = Callable[[str, int, int], None]
EXAMPLES = 20
PREVIEW_ROWS = 20


class ImportOptions(BaseModel):
    """What to import where, and how."""

    model_config = ConfigDict(extra="forbid")

    path: Path
    layer: str = Field(pattern=r"^[a-z][a-z0-9_]{1,62}$")
    source_layer: str | None = None
    crs: str | None = None
    key: str | None = None
    mode: Literal["append", "upsert", "replace"] = "append"
    encoding: str | None = None
    dry_run: bool = False
    # A replace that would leave the layer empty needs allow_empty; one that keeps less than
    # settings.ingest_replace_min_share of the rows needs force (the page asks to confirm).
    allow_empty: bool = False
    force: bool = False
    actor: str = "cli"
    kind: str = "file"
    connector: str | None = None
    source_name: str | None = None
    time_field: str | None = None
    title: str | None = None
    # how the layer shows in the catalogue (set by GIS staff on the import form); applied to a
    # new layer, and to an existing one when given
    title_en: str | None = Field(default=None, max_length=200)
    sector: Sector | None = None
    color: str | None = Field(default=None, pattern=r"^#[0-9a-fA-F]{6}$")
    name_field: str | None = Field(default=None, max_length=63)
    visibility: LayerVisibility | None = None


def has_presentation(opts: ImportOptions) -> bool:
    """Whether the import form said how the layer should show in the catalogue."""
    return any(
        v is not None
        for v in (
            opts.title,
            opts.title_en,
            opts.sector,
            opts.color,
            opts.name_field,
            opts.visibility,
        )
    )


def check_name_field(property_schema: dict[str, Any] | None, name: str) -> None:
    """A layer's name field must be one of its properties (InvalidInputError naming them)."""
    props = (property_schema or {}).get("properties", {})
    if props and name not in props:
        raise InvalidInputError(
            f"name field '{name}' is not a column of the file; columns: "
            + ", ".join(sorted(props)),
            param="name_field",
            i18n="imp.err.name_field",
            field=name,
            columns=", ".join(sorted(props)),
        )


def presented(spec: LayerSpec, opts: ImportOptions) -> LayerSpec:
    """The layer's catalogue entry with the import form's title, sector, colour, name field and
    visibility (only those given); a name field must be one of the layer's properties."""
    values = spec.model_dump(include=set(LayerSpec.model_fields))
    if opts.title:
        values["title_vi"] = opts.title
    if opts.title_en:
        values["title_en"] = opts.title_en
    if opts.sector:
        values["sector"] = opts.sector
    if opts.color:
        rgb = tuple(int(opts.color[i : i + 2], 16) for i in (1, 3, 5))
        style = dict(values["default_style"])
        style["fill_color"] = (*rgb, 200)
        values["default_style"] = style
    if opts.name_field:
        check_name_field(spec.property_schema, opts.name_field)
        values["name_field"] = opts.name_field
    if opts.visibility is not None:
        values["visibility"] = opts.visibility.model_dump()
    values["sensitive"] = False  # derived again from the visibility
    return LayerSpec.model_validate(values)


class ImportReport(BaseModel):
    """What an import found and did (also what a dry run returns)."""

    batch_id: int | None
    layer: str
    layer_created: bool
    mode: str
    dry_run: bool
    format: str
    source_layer: str | None
    source_layers: list[str]
    encoding: str | None
    crs: dict[str, Any]
    geometry_type: str
    property_schema: dict[str, Any]
    rows_read: int
    rows_valid: int
    rows_rejected: int
    repaired: int
    rejects_by_reason: dict[str, int]
    reject_examples: list[dict[str, Any]]
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    strategy: str | None = None
    notes: list[str]
    preview: list[dict[str, Any]] = Field(default_factory=list)
    seconds: float = 0.0
    timings: dict[str, float] = Field(default_factory=dict)

    def summary(self) -> str:
        """One paragraph for the CLI."""
        head = "dry run: " if self.dry_run else ""
        crs = self.crs
        lines = [
            f"{head}{self.rows_read} rows read from {self.format}"
            + (f" layer '{self.source_layer}'" if self.source_layer else "")
            + f"; CRS {crs.get('name')} (EPSG:{crs.get('srid')}, {crs.get('source')})",
            f"valid {self.rows_valid}, rejected {self.rows_rejected}, repaired {self.repaired}",
        ]
        if not self.dry_run:
            lines.append(
                f"layer '{self.layer}'{' (created)' if self.layer_created else ''}: "
                f"inserted {self.inserted}, updated {self.updated}, unchanged {self.unchanged}, "
                f"deleted {self.deleted}; batch {self.batch_id}"
            )
        for reason, count in sorted(self.rejects_by_reason.items()):
            lines.append(f"  rejected {count:>8} {reason}")
        for ex in self.reject_examples[:5]:
            lines.append(f"    row {ex['row']}: {ex['reason']}: {ex['detail']}")
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)


def _jsonable(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return v


def _sample_coords(source: SourceData, limit: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    n = source.num_rows
    idx = np.unique(np.linspace(0, max(n - 1, 0), num=min(n, limit)).astype(np.int64))
    geoms = shapely.from_wkb(source.geometry[idx], on_invalid="ignore")
    coords = shapely.get_coordinates(geoms)
    if len(coords) > limit:
        coords = coords[np.linspace(0, len(coords) - 1, num=limit).astype(np.int64)]
    return coords[:, 0], coords[:, 1]


def resolve_crs(
    source: SourceData, option: str | None, boundary: shapely.Geometry, settings: Settings
) -> crsmod.CrsChoice:
    """--crs, else the file's CRS, else detection among WGS84 and the VN-2000 systems."""
    if option:
        choice = crsmod.recognise(option, "option")
        if source.crs_wkt:
            choice.notes.append("--crs overrides the CRS stored in the file")
        return choice
    x, y = _sample_coords(source)
    allow_swap = source.coordinate_columns is not None and any(
        c.strip().lower() in ("x", "y") for c in source.coordinate_columns
    )
    if source.crs_wkt:
        try:
            stated = crsmod.recognise(source.crs_wkt, "file")
        except InvalidInputError as exc:
            note = f"the file's CRS was not recognised ({exc.detail}); detecting"
        else:
            if crsmod.inside_fraction(stated.proj, x, y, boundary) >= 0.5:
                return stated
            # GeoJSON/KML always claim WGS84; VN-2000 metres written into them are common.
            try:
                found = crsmod.detect(x, y, boundary, settings.province_official_srid, allow_swap)
            except InvalidInputError:
                stated.notes.append("most of the data lies outside the province in this CRS")
                return stated
            found.notes.insert(
                0,
                f"the file says {stated.name} but its coordinates fit EPSG:{found.srid}: "
                "the stated CRS is wrong; using the detected one",
            )
            return found
    else:
        note = "the file has no CRS; detected from the coordinates"
    choice = crsmod.detect(x, y, boundary, settings.province_official_srid, allow_swap)
    choice.notes.insert(0, note)
    return choice


def _reject_rows(
    source: SourceData, prepared: Prepared
) -> list[tuple[int, str, str, dict[str, Any]]]:
    rows = prepared.reject_rows
    if len(rows) == 0:
        return []
    attrs = source.attributes.take(pa.array(rows, pa.int64())).to_pylist()
    geoms = shapely.from_wkb(source.geometry[rows], on_invalid="ignore")
    wkts = shapely.to_wkt(geoms, rounding_precision=-1)
    out = []
    for i, r in enumerate(rows):
        original = {k: _jsonable(v) for k, v in attrs[i].items()}
        w = wkts[i]
        original["_geometry_wkt"] = None if w is None else (w if len(w) <= 4000 else w[:4000] + "…")
        out.append(
            (
                int(r) + 1,
                str(prepared.reject_reasons[i]),
                str(prepared.reject_details[i] or ""),
                original,
            )
        )
    return out


def _preview(prepared: Prepared) -> list[dict[str, Any]]:
    k = min(PREVIEW_ROWS, prepared.count)
    props = prepared.properties.slice(0, k).to_pylist()
    geoms = shapely.from_wkb(prepared.wkb.slice(0, k).to_numpy(zero_copy_only=False))
    wkts = shapely.to_wkt(geoms, rounding_precision=7)
    return [
        {
            "row": int(prepared.row_numbers[i]),
            "properties": {key: _jsonable(v) for key, v in props[i].items()},
            "geometry_wkt": wkts[i] if len(wkts[i]) <= 300 else wkts[i][:300] + "…",
        }
        for i in range(k)
    ]


def _existing_layer(conn: Connection, slug: str) -> LayerInfo | None:
    try:
        return get_layer(conn, slug)
    except NotFoundError:
        return None


def read_limits(settings: Settings) -> ReadLimits:
    """The import limits of these settings."""
    return ReadLimits(
        uncompressed_bytes=settings.ingest_max_uncompressed_bytes,
        compression_ratio=settings.ingest_max_compression_ratio,
        archive_members=settings.ingest_max_archive_members,
        rows=settings.ingest_max_rows,
        columns=settings.ingest_max_columns,
        line_bytes=settings.ingest_max_line_bytes,
    )


def analyse(
    conn: Connection,
    settings: Settings,
    opts: ImportOptions,
    progress: Progress | None = None,
    early: Callable[[Early], bool] | None = None,
) -> tuple[SourceData, crsmod.CrsChoice, Prepared, LayerInfo | None]:
    """Read, resolve the CRS and validate; writes nothing itself (`early` may start a load)."""
    if progress:
        progress("read", 0, 0)
    source = read_source(opts.path, opts.source_layer, opts.encoding, read_limits(settings))
    info = _existing_layer(conn, opts.layer)
    boundary = province_boundary(settings, conn)
    choice = resolve_crs(source, opts.crs, boundary, settings)
    if progress:
        progress("validate", 0, source.num_rows)
    prepared = prepare(
        source.geometry,
        source.attributes,
        choice,
        tolerant_boundary(boundary, settings.province_tolerance_m),
        geometry_type=info.geometry_type if info else None,
        property_schema=info.property_schema if info else None,
        key=opts.key,
        time_field=(info.time_field if info else None) or opts.time_field,
        timezone=settings.timezone,
        coordinate_errors=source.coordinate_errors,
        coordinate_detail=source.coordinate_detail,
        typed=source.coordinate_columns is None and source.format not in ("CSV", "XLSX"),
        early=early,
        geometry_arrow=source.geometry_arrow,
    )
    return source, choice, prepared, info


def check_replace(
    conn: Connection, settings: Settings, opts: ImportOptions, info: LayerInfo | None, kept: int
) -> None:
    """Refuse a replace that would empty the layer or drop most of it without confirmation."""
    if opts.mode != "replace" or info is None:
        return
    before = layer_row_count(conn, info.id)
    if kept == 0 and before > 0 and not opts.allow_empty:
        raise InvalidInputError(
            f"replace would empty layer '{opts.layer}' ({before} rows): the file has no valid"
            " row; fix the file, or give --allow-empty (API: allow_empty=true) to empty it",
            param="file",
            rows_before=before,
            rows_kept=0,
            layer=opts.layer,
            confirm="allow_empty",
            i18n="imp.err.replace_empty",
        )
    share = settings.ingest_replace_min_share
    if 0 < kept < share * before and not opts.force:
        raise ConflictError(
            f"replace would keep only {kept} of the {before} rows of layer '{opts.layer}'"
            f" (less than {share:.0%}); confirm with --force (API: force=true)",
            param="force",
            rows_before=before,
            rows_kept=kept,
            layer=opts.layer,
            share=f"{share:.0%}",
            confirm="force",
            i18n="imp.err.replace_few",
        )


def build_report(
    opts: ImportOptions,
    source: SourceData,
    choice: crsmod.CrsChoice,
    prepared: Prepared,
    rejects: list[tuple[int, str, str, dict[str, Any]]],
    *,
    created: bool,
    batch_id: int | None,
    counts: LoadCounts | None,
    seconds: float,
) -> ImportReport:
    """The report shared by dry runs, the CLI, the API and connectors."""
    return ImportReport(
        batch_id=batch_id,
        layer=opts.layer,
        layer_created=created,
        mode=opts.mode,
        dry_run=opts.dry_run,
        format=source.format,
        source_layer=source.source_layer,
        source_layers=source.layers,
        encoding=source.encoding,
        crs=choice.summary(),
        geometry_type=prepared.geometry_type,
        property_schema=prepared.property_schema,
        rows_read=source.num_rows,
        rows_valid=prepared.count,
        rows_rejected=len(prepared.reject_rows),
        repaired=prepared.repaired,
        rejects_by_reason=prepared.reject_counts(),
        reject_examples=[
            {"row": r, "reason": reason, "detail": detail, "original": orig}
            for r, reason, detail, orig in rejects[:EXAMPLES]
        ],
        inserted=counts.inserted if counts else 0,
        updated=counts.updated if counts else 0,
        unchanged=counts.unchanged if counts else 0,
        deleted=counts.deleted if counts else 0,
        strategy=counts.strategy if counts else None,
        notes=[*source.notes, *[n for n in choice.notes if n], *prepared.notes],
        preview=_preview(prepared) if opts.dry_run else [],
        seconds=round(seconds, 3),
    )


def run_import(
    engine: Engine,
    settings: Settings,
    opts: ImportOptions,
    progress: Progress | None = None,
    batch_id: int | None = None,
) -> ImportReport:
    """Import one file. A dry run writes nothing; a real run lands whole or not at all."""
    t0 = time.perf_counter()
    marks: list[tuple[str, float]] = [("start", t0)]
    outer = progress

    def tracked(stage: str, done: int, total: int) -> None:
        if marks[-1][0] != stage:
            marks.append((stage, time.perf_counter()))
        if outer:
            outer(stage, done, total)

    progress = tracked
    if opts.mode == "upsert" and not opts.key:
        raise InvalidInputError(
            "--mode upsert needs --key FIELD (the stable id of a row)",
            i18n="err.pipeline.mode_upsert_needs_key_field",
        )
    if opts.dry_run:
        with engine.connect() as conn:
            source, choice, prepared, info = analyse(conn, settings, opts, progress)
            check_replace(conn, settings, opts, info, prepared.count)
            rejects = _reject_rows(source, prepared)
            conn.rollback()
        if opts.name_field:
            # the layer's name field must be one of the file's columns: say so at the dry run
            schema = info.property_schema if info else prepared.property_schema
            check_name_field(schema, opts.name_field)
        return build_report(
            opts, source, choice, prepared, rejects,
            created=info is None, batch_id=None, counts=None,
            seconds=time.perf_counter() - t0,
        )  # fmt: skip
    source_name = opts.source_name or opts.path.name
    if batch_id is None:
        with engine.begin() as conn:
            existing = layer_id_of(conn, opts.layer)
            batch_id = create_batch(
                conn,
                layer_id=existing,
                source=source_name,
                actor=opts.actor,
                mode=opts.mode,
                kind=opts.kind,
                connector=opts.connector,
            )

    def new_layer_spec(geometry_type: str, property_schema: dict[str, Any]) -> LayerSpec:
        spec = LayerSpec(
            slug=opts.layer,
            title_vi=opts.title or opts.layer,
            title_en=opts.title_en or opts.title or opts.layer,
            sector=opts.sector or "other",
            geometry_type=geometry_type,
            property_schema=property_schema,
            source_system=f"import: {source_name}",
            time_field=opts.time_field,
        )
        return presented(spec, opts)

    builds = BuildSet(engine)  # side tables of this import, closed once its transaction ended
    try:
        with engine.begin() as conn:
            hold_batch(conn, batch_id)
            lock_layer_for_import(conn, opts.layer, settings.ingest_lock_wait_s)
            early_load = EarlyLoad(conn, batch_id, opts.mode, builds)

            def on_early(early: Early) -> bool:
                # Load while validation runs (the server works on its own core meanwhile).
                found = _existing_layer(conn, opts.layer)
                if found is None:
                    # The file's own type; corrected below if validation infers another.
                    spec = new_layer_spec(early.geometry_type, early.property_schema)
                    early_load.start(create_or_update_layer(conn, spec), early)
                elif found.geometry_type in (early.geometry_type, "Geometry"):
                    early_load.start(found.id, early)
                return early_load.started

            try:
                source, choice, prepared, info = analyse(conn, settings, opts, progress, on_early)
                if early_load.started:
                    progress("copy", 0, source.num_rows)  # what remains of the early COPY
            finally:
                early_load.wait()  # never leave the COPY thread holding the connection
            created = info is None
            check_replace(conn, settings, opts, info, prepared.count)
            if info is None:
                spec = new_layer_spec(prepared.geometry_type, prepared.property_schema)
                layer_id = create_or_update_layer(conn, spec)
            else:
                layer_id = info.id
                if has_presentation(opts) and not opts.dry_run:
                    create_or_update_layer(conn, presented(get_layer(conn, opts.layer), opts))
            rejects = _reject_rows(source, prepared)
            counts = early_load.finish(prepared, progress) if early_load.started else None
            write_rejects(conn, batch_id, rejects)
            if counts is None:
                counts = load(conn, layer_id, batch_id, prepared, opts.mode, builds, progress)
            report = build_report(
                opts, source, choice, prepared, rejects,
                created=created, batch_id=batch_id, counts=counts,
                seconds=time.perf_counter() - t0,
            )  # fmt: skip
            marks.append(("commit", time.perf_counter()))
            report.timings = {
                a[0]: round(b[1] - a[1], 3) for a, b in zip(marks, marks[1:], strict=False)
            }
            if early_load.started:
                report.timings["early_copy"] = early_load.copy_seconds  # overlaps the above
            finish_batch(
                conn,
                batch_id,
                status="succeeded",
                counts={
                    "read": report.rows_read,
                    "valid": report.rows_valid,
                    "rejected": report.rows_rejected,
                    "repaired": report.repaired,
                    "inserted": counts.inserted,
                    "updated": counts.updated,
                    "unchanged": counts.unchanged,
                    "deleted": counts.deleted,
                },
                report=report.model_dump(mode="json"),
                layer_id=layer_id,
            )
        report.timings["commit"] = round(time.perf_counter() - marks[-1][1], 3)
        report.seconds = round(time.perf_counter() - t0, 3)
        return report
    except Exception as exc:
        detail = exc.detail if isinstance(exc, IocError) else f"{type(exc).__name__}: {exc}"
        detail = hide_paths(detail, opts.path)  # never the server's directories
        with engine.begin() as conn:
            finish_batch(conn, batch_id, status="failed", counts={}, report={}, errors=[detail])
        raise
    finally:
        builds.close()
