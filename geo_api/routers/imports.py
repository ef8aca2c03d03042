"""/api/imports: upload a file as a background import job, follow its progress and report."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, File, Form, Query, UploadFile
from fastapi.responses import JSONResponse

from geo_api.deps import EngineDep, SettingsDep
from ingest import jobs
from ingest.pipeline import ImportOptions, run_import

router = APIRouter(prefix="/api/imports", tags=["imports"])


@router.post("", summary="Upload a file to import (background job; dry_run answers at once)")
def create_import(
    engine: EngineDep,
    settings: SettingsDep,
    background: BackgroundTasks,
    file: Annotated[
        UploadFile, File(description="gpkg, shp (zip), geojson, kml/kmz, fgb, dxf, csv, xlsx")
    ],
    layer: Annotated[str, Form(description="Target layer slug (created if new)")],
    source_layer: Annotated[str | None, Form()] = None,
    crs: Annotated[str | None, Form(description="e.g. EPSG:9208")] = None,
    key: Annotated[str | None, Form()] = None,
    mode: Annotated[Literal["append", "upsert", "replace"], Form()] = "append",
    encoding: Annotated[str | None, Form()] = None,
    dry_run: Annotated[bool, Form()] = False,
) -> JSONResponse:
    """Start an import job (202 with its id), or return a dry run's report (200)."""
    path = jobs.save_upload(settings, file.filename or "upload", file.file)
    opts = ImportOptions(
        path=path,
        layer=layer,
        source_layer=source_layer or None,
        crs=crs or None,
        key=key or None,
        mode=mode,
        encoding=encoding or None,
        dry_run=dry_run,
        actor="api",
        kind="upload",
        source_name=file.filename,
    )
    if dry_run:
        try:
            report = run_import(engine, settings, opts)
        finally:
            import shutil

            shutil.rmtree(path.parent, ignore_errors=True)
        return JSONResponse(report.model_dump(mode="json"))
    batch_id = jobs.start_job(engine, opts)
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
def get_import(batch_id: int, engine: EngineDep) -> dict[str, Any]:
    """Status, progress and (when finished) the report of one import."""
    return jobs.job_status(engine, batch_id)


@router.get("/{batch_id}/rejects", summary="Quarantined rows of an import")
def get_rejects(
    batch_id: int, engine: EngineDep, limit: Annotated[int, Query(ge=1, le=100_000)] = 1000
) -> list[dict[str, Any]]:
    """Rejected rows with row numbers, reasons and original values."""
    from layers.batches import list_rejects

    jobs.job_status(engine, batch_id)
    with engine.connect() as conn:
        return list_rejects(conn, batch_id, limit)
