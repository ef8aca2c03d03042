"""/api/imports: upload a file as a background import job, follow its progress and report."""

from __future__ import annotations

import shutil
from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, File, Form, Query, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from geo_api import i18n
from geo_api.deps import EngineDep, SettingsDep
from ingest import jobs
from ingest.pipeline import ImportOptions
from ingest.worker import run_import_in_worker
from layers.errors import InvalidInputError
from layers.features.registry import Access, LayerVisibility, Sector

router = APIRouter(prefix="/api/imports", tags=["imports"])


def localized_report(lang: str, report: dict[str, Any]) -> dict[str, Any]:
    """An import report with its notes and reject details in `lang` (ingest writes English)."""
    out = dict(report)
    if isinstance(out.get("notes"), list):
        out["notes"] = i18n.stored_all(lang, out["notes"], "imp.note.")
    crs = out.get("crs")
    if isinstance(crs, dict) and isinstance(crs.get("notes"), list):
        out["crs"] = {**crs, "notes": i18n.stored_all(lang, crs["notes"], "imp.note.")}
    if isinstance(out.get("reject_examples"), list):
        out["reject_examples"] = [
            {**ex, "detail": i18n.stored(lang, str(ex.get("detail") or ""), "imp.detail.")}
            if isinstance(ex, dict)
            else ex
            for ex in out["reject_examples"]
        ]
    return out


@router.post("", summary="Upload a file to import (background job; dry_run answers at once)")
def create_import(
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    background: BackgroundTasks,
    file: Annotated[
        UploadFile, File(description="gpkg, shp (zip), geojson, kml/kmz, fgb, dxf, csv, xlsx")
    ],
    layer: Annotated[
        str,
        Form(
            pattern=r"^[a-z][a-z0-9_]{1,62}$",
            description="Target layer slug (created if new): a-z, 0-9 and _",
        ),
    ],
    source_layer: Annotated[str | None, Form()] = None,
    crs: Annotated[str | None, Form(description="e.g. EPSG:9208")] = None,
    key: Annotated[str | None, Form()] = None,
    mode: Annotated[Literal["append", "upsert", "replace"], Form()] = "append",
    encoding: Annotated[str | None, Form()] = None,
    dry_run: Annotated[bool, Form()] = False,
    allow_empty: Annotated[
        bool, Form(description="Let a replace with no valid row empty the layer")
    ] = False,
    force: Annotated[
        bool, Form(description="Confirm a replace that drops most of the layer's rows")
    ] = False,
    title_vi: Annotated[str | None, Form(max_length=200)] = None,
    title_en: Annotated[str | None, Form(max_length=200)] = None,
    sector: Annotated[Sector | None, Form()] = None,
    color: Annotated[str | None, Form(pattern=r"^#[0-9a-fA-F]{6}$")] = None,
    name_field: Annotated[str | None, Form(max_length=63)] = None,
    visibility: Annotated[Access | None, Form(description="public, signed_in or roles")] = None,
    roles: Annotated[
        list[str] | None, Form(description="who may read it (visibility=roles)")
    ] = None,
    raster_role: Annotated[
        Literal["elevation", "flood_depth", "imagery", "population", "generic"] | None,
        Form(
            description="Rasters: what the values are (default: guessed from the name);"
            " population rasters (people per pixel) count the people under a flood"
        ),
    ] = None,
) -> JSONResponse:
    """Start an import job (202 with its id), or return a dry run's report (200).

    The layer's title (vi/en), sector, colour, name field and visibility set how it shows in
    the catalogue and who may read it.
    """
    vis = None
    if visibility is not None:
        try:
            vis = LayerVisibility(access=visibility, roles=[r for r in roles or [] if r])
        except ValidationError as exc:
            raise InvalidInputError(
                "visibility 'roles' needs at least one role",
                param="roles",
                i18n="imp.err.roles_needed",
            ) from exc
    path = jobs.save_upload(settings, file.filename or "upload", file.file)
    from ingest.raster import is_raster_path

    if is_raster_path(path):  # issue 20: rasters become COG layers
        from ingest import raster_jobs
        from ingest.raster import RasterImportOptions, import_raster

        try:
            ropts = RasterImportOptions(
                path=path,
                layer=layer,
                crs=crs or None,
                dry_run=dry_run,
                actor="api",
                kind="upload",
                source_name=(file.filename or "upload")[:255],
                role=raster_role,
            )
            if dry_run:
                try:
                    raster_report = import_raster(engine, settings, ropts).as_dict()
                    return JSONResponse(localized_report(i18n.request_lang(request), raster_report))
                finally:
                    shutil.rmtree(path.parent, ignore_errors=True)
            rbatch = raster_jobs.start_raster_job(engine, ropts)
        except BaseException:
            shutil.rmtree(path.parent, ignore_errors=True)
            raise
        background.add_task(raster_jobs.run_raster_job, engine, settings, ropts, rbatch)
        return JSONResponse(
            {"id": rbatch, "status": "running", "href": f"/api/imports/{rbatch}"},
            status_code=202,
        )
    try:
        opts = ImportOptions(
            path=path,
            layer=layer,
            source_layer=source_layer or None,
            crs=crs or None,
            key=key or None,
            mode=mode,
            encoding=encoding or None,
            dry_run=dry_run,
            allow_empty=allow_empty,
            force=force,
            actor="api",
            kind="upload",
            source_name=(file.filename or "upload")[:255],
            title=title_vi or None,
            title_en=title_en or None,
            sector=sector,
            color=color or None,
            name_field=name_field or None,
            visibility=vis,
        )
        if dry_run:
            try:
                report = run_import_in_worker(settings, opts)
            finally:
                shutil.rmtree(path.parent, ignore_errors=True)
            return JSONResponse(
                localized_report(i18n.request_lang(request), report.model_dump(mode="json"))
            )
        if mode == "replace" and not (force and allow_empty):
            # A replace that needs confirmation answers now (as its dry run does), not
            # later as a failed background batch: the page can ask, then resubmit.
            run_import_in_worker(settings, opts.model_copy(update={"dry_run": True}))
        batch_id = jobs.start_job(engine, opts)
    except BaseException:
        shutil.rmtree(path.parent, ignore_errors=True)  # nothing may stay behind on a failure
        raise
    # run_job removes the upload when it ends, whatever the outcome.
    background.add_task(jobs.run_job, engine, settings, opts, batch_id)
    return JSONResponse(
        {"id": batch_id, "status": "running", "href": f"/api/imports/{batch_id}"},
        status_code=202,
    )


@router.get("", summary="Recent imports and connector runs")
def list_imports(
    engine: EngineDep, limit: Annotated[int, Query(ge=1, le=1000)] = 50
) -> list[dict[str, Any]]:
    """Most recent batches first."""
    return jobs.list_jobs(engine, limit)


@router.get("/{batch_id}", summary="An import's progress, then its report")
def get_import(batch_id: int, request: Request, engine: EngineDep) -> dict[str, Any]:
    """Status, progress and (when finished) the report of one import."""
    job = jobs.job_status(engine, batch_id)
    lang = i18n.request_lang(request)
    if isinstance(job.get("report"), dict):
        job["report"] = localized_report(lang, job["report"])
    if isinstance(job.get("errors"), list):
        # a failed job stored its error's English detail (a raster import: {"error": detail}):
        # read back through the catalogue
        job["errors"] = [
            {**e, "error": i18n.stored(lang, e["error"], "err.")}
            if isinstance(e, dict) and isinstance(e.get("error"), str)
            else e
            for e in i18n.stored_all(lang, job["errors"], "err.")
        ]
    return job


@router.get("/{batch_id}/rejects", summary="Quarantined rows of an import")
def get_rejects(
    batch_id: int,
    request: Request,
    engine: EngineDep,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
) -> list[dict[str, Any]]:
    """Rejected rows with row numbers, reasons, the bad value and the detail in words."""
    from layers.ingest.batches import list_rejects

    jobs.job_status(engine, batch_id)
    with engine.connect() as conn:
        rows = list_rejects(conn, batch_id, limit)
    lang = i18n.request_lang(request)
    for r in rows:
        r["detail"] = i18n.stored(lang, str(r.get("detail") or ""), "imp.detail.")
    return rows
