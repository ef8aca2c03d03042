"""Imports in a worker process with a memory limit, so one upload cannot take the server down.

The API runs each import (and each dry run) in a fresh `spawn`ed process whose address space
is capped with RLIMIT_AS (settings.ingest_worker_memory_bytes). A file that needs more fails
there with a clear error; a worker that dies anyway leaves its batch marked failed.
"""

from __future__ import annotations

import multiprocessing
import resource
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from ingest.pipeline import ImportOptions, ImportReport, run_import
from layers.errors import IocError, PayloadTooLargeError
from layers.settings import Settings


def _limit_memory(limit_bytes: int) -> None:
    if limit_bytes > 0:
        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))


def _run(settings: Settings, opts: ImportOptions, batch_id: int | None) -> ImportReport:
    from ingest.jobs import progress_writer
    from layers.db import make_engine

    engine = make_engine(settings)
    try:
        progress = progress_writer(engine, batch_id) if batch_id is not None else None
        try:
            report = run_import(engine, settings, opts, progress, batch_id=batch_id)
        except Exception as exc:
            if _out_of_memory(exc):
                raise _too_big(settings) from exc
            raise
        if progress is not None:
            progress("done", report.rows_read, report.rows_read)
        return report
    finally:
        engine.dispose()


# What libraries say when the address-space cap stops them: Python's MemoryError, and from
# C/C++ code (pyarrow, GDAL) a failed allocation or a thread whose stack could not be mapped.
_OUT_OF_MEMORY_WORDS = (
    "resource temporarily unavailable",
    "cannot allocate memory",
    "out of memory",
    "bad_alloc",
    "failed to launch worker thread",
)


def _out_of_memory(exc: BaseException) -> bool:
    """True when `exc` is the memory cap stopping the import, whatever library raised it."""
    if isinstance(exc, MemoryError):
        return True
    if isinstance(exc, IocError):
        return False  # our own clear errors pass through as they are
    text = str(exc).lower()
    return any(word in text for word in _OUT_OF_MEMORY_WORDS)


def _too_big(settings: Settings) -> PayloadTooLargeError:
    gib = settings.ingest_worker_memory_bytes / 1024**3
    return PayloadTooLargeError(
        f"the import needed more than the {gib:.1f} GiB an import may use"
        " (IOC_INGEST_WORKER_MEMORY_BYTES); split the file",
        param="file",
        i18n="err.worker.import_needed_more_than_gib",
        gib=format(gib, ".1f"),
    )


def run_import_in_worker(
    settings: Settings, opts: ImportOptions, batch_id: int | None = None
) -> ImportReport:
    """Run one import in a memory-limited child process; its errors are raised here."""
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=1,
        mp_context=ctx,
        initializer=_limit_memory,
        initargs=(settings.ingest_worker_memory_bytes,),
    ) as pool:
        try:
            return pool.submit(_run, settings, opts, batch_id).result()
        except (BrokenProcessPool, MemoryError) as exc:
            raise _too_big(settings) from exc
