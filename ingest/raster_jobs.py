"""Raster import jobs for the API: a batch row tracks the job, a background task runs it."""

from __future__ import annotations

import shutil

from sqlalchemy import Engine

from ingest.raster import RasterImportOptions, import_raster
from layers.errors import IocError
from layers.rasters import store
from layers.settings import Settings


def start_raster_job(engine: Engine, opts: RasterImportOptions) -> int:
    """Record a running batch for an uploaded raster; returns its id."""
    with engine.begin() as conn:
        return store.create_batch(conn, opts.source_name or opts.path.name, opts.actor, opts.kind)


def run_raster_job(
    engine: Engine, settings: Settings, opts: RasterImportOptions, batch_id: int
) -> None:
    """Run one raster import; a failure is stored on the batch with its clear message."""
    try:
        import_raster(engine, settings, opts, batch_id=batch_id)
    except IocError as exc:
        with engine.begin() as conn:
            store.finish_batch(
                conn, batch_id, None, "failed", {"kind": "raster"}, [{"error": exc.detail}]
            )
    except Exception as exc:  # a bug: still close the batch, then let it be logged
        with engine.begin() as conn:
            store.finish_batch(
                conn, batch_id, None, "failed", {"kind": "raster"}, [{"error": str(exc)[:500]}]
            )
        raise
    finally:
        shutil.rmtree(opts.path.parent, ignore_errors=True)
