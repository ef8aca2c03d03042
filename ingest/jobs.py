"""Import jobs for the API: the upload is saved, a batch row tracks progress, a worker runs it.

The job's state lives in import_batch (status, progress, report), never in the API process,
so any replica can answer GET /api/imports/{id}.
"""

from __future__ import annotations

import re
import shutil
import time
import uuid
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from ingest.pipeline import ImportOptions, Progress
from layers.errors import InvalidInputError, IocError, NotFoundError, PayloadTooLargeError
from layers.features.registry import layer_id_of
from layers.ingest import batches
from layers.ingest.batches import create_batch, get_batch, recent_batch_ids, set_progress
from layers.settings import Settings

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
MAX_NAME_CHARS = 120


def save_upload(settings: Settings, filename: str, stream: BinaryIO) -> Path:
    """Store an uploaded file under MEDIA/imports/<uuid>/, refusing oversize uploads."""
    name = _SAFE_NAME.sub("_", Path(filename or "upload").name).strip("._") or "upload"
    if len(name) > MAX_NAME_CHARS:  # the file system allows 255 bytes; keep the extension
        suffix = Path(name).suffix[:16]
        name = name[: MAX_NAME_CHARS - len(suffix)] + suffix
    folder = settings.media_root / "imports" / uuid.uuid4().hex
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    written = 0
    with target.open("wb") as out:
        while chunk := stream.read(1024 * 1024):
            written += len(chunk)
            if written > settings.ingest_max_upload_bytes:
                out.close()
                shutil.rmtree(folder, ignore_errors=True)
                raise PayloadTooLargeError(
                    f"upload exceeds {settings.ingest_max_upload_bytes} bytes",
                    i18n="err.jobs.upload_exceeds_bytes",
                    ingest_max_upload_bytes=settings.ingest_max_upload_bytes,
                )
            out.write(chunk)
    return target


def start_job(engine: Engine, opts: ImportOptions) -> int:
    """Record a running batch for an upload; the caller then runs `run_job` in the background."""
    with engine.begin() as conn:
        layer_id = layer_id_of(conn, opts.layer)
        return create_batch(
            conn,
            layer_id=layer_id,
            source=opts.source_name or opts.path.name,
            actor=opts.actor,
            mode=opts.mode,
            kind=opts.kind,
        )


def progress_writer(engine: Engine, batch_id: int) -> Progress:
    """A progress callback that records stages on the batch (best effort, never waits)."""
    last = [0.0]

    def write(stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] < 0.5 and stage not in ("done",):
            return
        last[0] = now
        # The import's own transaction may hold locks on import_batch (FK DDL); progress
        # is best-effort and must never wait for it, or the two would wait on each other.
        try:
            with engine.begin() as conn:
                set_progress(
                    conn,
                    batch_id,
                    {"stage": stage, "done": done, "total": total},
                    lock_timeout_ms=50,
                )
        except DBAPIError:
            return

    return write


def run_job(engine: Engine, settings: Settings, opts: ImportOptions, batch_id: int) -> None:
    """Run one import job in a memory-limited worker; its outcome is stored on the batch."""
    from ingest.worker import run_import_in_worker

    try:
        run_import_in_worker(settings, opts, batch_id)
    except Exception as exc:
        # run_import stored its own failures; a worker that died could not: do it here.
        detail = exc.detail if isinstance(exc, IocError) else f"{type(exc).__name__}: {exc}"
        fail_if_running(engine, batch_id, detail)
    finally:
        shutil.rmtree(opts.path.parent, ignore_errors=True)


def fail_if_running(engine: Engine, batch_id: int, detail: str) -> None:
    """Mark a batch failed unless it already finished (its worker died or was killed)."""
    with engine.begin() as conn:
        batches.fail_if_running(conn, batch_id, detail)


def job_status(engine: Engine, batch_id: int) -> dict[str, Any]:
    """A batch as the API shows it: status, progress, counts, report and errors."""
    from layers.ingest.locks import sweep_interrupted_batches

    sweep_interrupted_batches(engine, batch_id)  # a "running" batch whose worker died fails
    with engine.connect() as conn:
        row = get_batch(conn, batch_id)
    if row is None:
        raise NotFoundError(
            f"import {batch_id} does not exist",
            id=batch_id,
            i18n="err.jobs.import_does_not_exist",
            batch_id=batch_id,
        )
    slug = row["layer_slug"]
    return {
        "id": int(row["id"]),
        "layer": slug,
        "source": row["source"],
        "kind": row["kind"],
        "connector": row["connector"],
        "mode": row["mode"],
        "status": row["status"],
        "attempts": row["attempts"],
        "started_at": row["started_at"],
        "finished_at": row["finished_at"],
        "progress": row["progress"],
        "counts": row["counts"],
        "errors": row["errors"],
        "report": row["report"],
    }


def list_jobs(engine: Engine, limit: int = 50) -> list[dict[str, Any]]:
    """Most recent batches first (files and connector runs)."""
    if limit < 1 or limit > 1000:
        raise InvalidInputError(
            "limit must be between 1 and 1000", i18n="err.jobs.limit_must_be_between_1"
        )
    with engine.connect() as conn:
        id_list = recent_batch_ids(conn, limit)
    out = []
    for i in id_list:
        status = job_status(engine, int(i))
        status.pop("report")
        out.append(status)
    return out
