"""Advisory locks that serialise work on one layer across processes and replicas."""

from __future__ import annotations

import time

from sqlalchemy import Connection, Engine, func, select, text, update

from layers.errors import ConflictError
from layers.models import import_batch

# First key of the two-key advisory lock space: imports into a layer.
IMPORT_LOCK_CLASS = 7714


def lock_layer_for_import(conn: Connection, slug: str, wait_s: float) -> None:
    """Hold the layer's import lock until the caller's transaction ends; imports into one layer
    queue behind each other (never deadlock on the swap), and give up after `wait_s`."""
    deadline = time.monotonic() + wait_s
    while True:
        got = conn.execute(
            text("SELECT pg_try_advisory_xact_lock(:cls, hashtext(:slug))"),
            {"cls": IMPORT_LOCK_CLASS, "slug": slug},
        ).scalar()
        if got:
            return
        if time.monotonic() >= deadline:
            raise ConflictError(
                f"another import into layer '{slug}' is still running; try again when it ends",
                param="layer",
                i18n="err.locks.another_import_into_layer_still",
                slug=slug,
            )
        time.sleep(0.25)


# Imports hold this lock on their batch for as long as their transaction runs; a running
# batch whose lock is free belongs to a process that died (SIGKILL, OOM, power).
BATCH_LOCK_CLASS = 7715
# A batch row is committed just before its import transaction takes the lock: only batches
# older than this are judged.
BATCH_GRACE_S = 60.0
IMPORT_KINDS = ("file", "upload")
INTERRUPTED = (
    "interrupted: the importing process ended before it finished (killed or crashed);"
    " the layer was left exactly as before"
)


def _batch_key(batch_id: int) -> int:
    return batch_id % 2**31


def hold_batch(conn: Connection, batch_id: int) -> None:
    """Mark the batch as worked on until the caller's transaction ends."""
    conn.execute(
        text("SELECT pg_advisory_xact_lock(:cls, :key)"),
        {"cls": BATCH_LOCK_CLASS, "key": _batch_key(batch_id)},
    )


def sweep_interrupted_batches(engine: Engine, batch_id: int | None = None) -> list[int]:
    """Mark failed the running import batches (or just `batch_id`) whose process is gone."""
    with engine.connect() as conn:
        stale = list(
            conn.execute(
                select(import_batch.c.id).where(
                    import_batch.c.status == "running",
                    import_batch.c.kind.in_(IMPORT_KINDS),
                    import_batch.c.started_at
                    < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, BATCH_GRACE_S),
                    *([import_batch.c.id == batch_id] if batch_id is not None else []),
                )
            ).scalars()
        )
    failed: list[int] = []
    for bid in stale:
        with engine.begin() as conn:
            free = conn.execute(
                text("SELECT pg_try_advisory_xact_lock(:cls, :key)"),
                {"cls": BATCH_LOCK_CLASS, "key": _batch_key(bid)},
            ).scalar()
            if not free:
                continue
            done = conn.execute(
                update(import_batch)
                .where(import_batch.c.id == bid, import_batch.c.status == "running")
                .values(status="failed", errors=[INTERRUPTED], finished_at=func.now())
            ).rowcount
            if done:
                failed.append(bid)
    return failed
