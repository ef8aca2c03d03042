"""Import batches: the lifecycle of every write that lands data (file imports, connector runs,
derived-indicator jobs, the demo seed), its quarantined rows, and connector state.

A batch is created `running` (committed before the load, so a failure stays visible), then
finished `succeeded` or `failed` with its counts and report.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import orjson
from sqlalchemy import Connection, desc, func, select, text
from sqlalchemy.dialects.postgresql import insert

from layers.ingest.copy import copy_text_rows
from layers.models import import_batch, layer
from layers.models.ingest import connector_state, import_reject


def create_batch(
    conn: Connection,
    *,
    layer_id: int | None,
    source: str,
    actor: str,
    mode: str,
    kind: str = "file",
    connector: str | None = None,
    attempts: int = 1,
) -> int:
    """Record a running batch (commit it before the load, so failures stay visible)."""
    return int(
        conn.execute(
            import_batch.insert()
            .values(
                layer_id=layer_id,
                source=source,
                actor=actor,
                mode=mode,
                kind=kind,
                connector=connector,
                attempts=attempts,
                status="running",
            )
            .returning(import_batch.c.id)
        ).scalar_one()
    )


def finish_batch(
    conn: Connection,
    batch_id: int,
    *,
    status: str,
    counts: dict[str, Any],
    report: dict[str, Any] | None = None,
    errors: list[Any] | None = None,
    layer_id: int | None = None,
) -> None:
    """Mark a batch succeeded or failed, with its counts and report (kept when None)."""
    values: dict[str, Any] = {
        "status": status,
        "counts": counts,
        "errors": errors or [],
        "finished_at": func.now(),
    }
    if report is not None:
        values["report"] = report
    if layer_id is not None:
        values["layer_id"] = layer_id
    conn.execute(import_batch.update().where(import_batch.c.id == batch_id).values(**values))


def delete_batch(conn: Connection, batch_id: int) -> None:
    """Remove a batch that left nothing behind (a seed that changed nothing)."""
    conn.execute(import_batch.delete().where(import_batch.c.id == batch_id))


def set_progress(
    conn: Connection,
    batch_id: int,
    progress: dict[str, Any],
    *,
    lock_timeout_ms: int | None = None,
) -> None:
    """Store a running batch's progress (on a connection of its own).

    With `lock_timeout_ms` the write gives up rather than wait for the import's own locks.
    """
    if lock_timeout_ms is not None:
        conn.execute(
            text("SELECT set_config('lock_timeout', :v, true)"), {"v": f"{int(lock_timeout_ms)}ms"}
        )
    conn.execute(
        import_batch.update().where(import_batch.c.id == batch_id).values(progress=progress)
    )


def write_rejects(
    conn: Connection,
    batch_id: int,
    rows: list[tuple[int, str, str, dict[str, Any]]],
) -> None:
    """Store quarantined rows (row number, reason, detail, original values) via COPY."""
    if not rows:
        return
    copy_text_rows(
        conn,
        "import_reject",
        "batch_id, row_number, reason, detail, original",
        (
            (
                batch_id,
                row_number,
                reason,
                detail,
                orjson.dumps(original, option=orjson.OPT_NON_STR_KEYS, default=str).decode(),
            )
            for row_number, reason, detail, original in rows
        ),
    )


def list_rejects(conn: Connection, batch_id: int, limit: int = 1000) -> list[dict[str, Any]]:
    """Quarantined rows of a batch, in row order, with the column and bad value they name."""
    rows = conn.execute(
        import_reject.select()
        .where(import_reject.c.batch_id == batch_id)
        .order_by(import_reject.c.row_number)
        .limit(limit)
    ).mappings()
    out = []
    for r in rows:
        field, value = _field_value(r["detail"])
        out.append(
            {
                "row": int(r["row_number"]),
                "reason": r["reason"],
                "field": field,
                "value": value,
                "detail": r["detail"],
                "original": r["original"],
            }
        )
    return out


_BAD_VALUE = re.compile(r"^'(?P<field>[^']+)': (?P<value>.*) is not ")


def _field_value(detail: str | None) -> tuple[str | None, str | None]:
    """The column and the offending value named in a reject's detail ("'f': 'v' is not …")."""
    m = _BAD_VALUE.match(detail or "")
    if m is None:
        return None, None
    raw = m.group("value")
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        raw = raw[1:-1]
    return m.group("field"), raw


def fail_if_running(conn: Connection, batch_id: int, detail: str) -> None:
    """Mark a batch failed unless it already finished (its worker died or was killed)."""
    status = conn.execute(
        select(import_batch.c.status).where(import_batch.c.id == batch_id)
    ).scalar()
    if status == "running":
        finish_batch(conn, batch_id, status="failed", counts={}, report={}, errors=[detail])


def get_batch(conn: Connection, batch_id: int) -> dict[str, Any] | None:
    """One batch row with its layer's slug (key `layer_slug`), or None."""
    row = conn.execute(select(import_batch).where(import_batch.c.id == batch_id)).mappings().first()
    if row is None:
        return None
    out = dict(row)
    out["layer_slug"] = None
    if row["layer_id"] is not None:
        out["layer_slug"] = conn.execute(
            select(layer.c.slug).where(layer.c.id == row["layer_id"])
        ).scalar()
    return out


def recent_batch_ids(conn: Connection, limit: int) -> list[int]:
    """Ids of the most recent batches, newest first."""
    ids = conn.execute(
        select(import_batch.c.id).order_by(desc(import_batch.c.id)).limit(limit)
    ).scalars()
    return [int(i) for i in ids]


def succeeded_from(conn: Connection, kind: str, sources: Iterable[str]) -> bool:
    """True when a batch of this kind from one of these sources succeeded."""
    return bool(
        conn.execute(
            select(import_batch.c.id).where(
                import_batch.c.kind == kind,
                import_batch.c.status == "succeeded",
                import_batch.c.source.in_(list(sources)),
            )
        ).first()
    )


# --- connector state --------------------------------------------------------------------------


def connector_state_row(conn: Connection, name: str) -> dict[str, Any] | None:
    """A connector's stored state (cursor, failures, next attempt), or None."""
    row = (
        conn.execute(select(connector_state).where(connector_state.c.name == name))
        .mappings()
        .first()
    )
    return dict(row) if row else None


def save_connector_state(conn: Connection, name: str, **values: Any) -> None:
    """Insert or update a connector's state."""
    stmt = insert(connector_state).values(name=name, **values)
    conn.execute(stmt.on_conflict_do_update(index_elements=["name"], set_=values))


def connector_next_attempts(conn: Connection) -> dict[str, Any]:
    """Connector name -> its next attempt time (None: run now)."""
    return dict(
        conn.execute(select(connector_state.c.name, connector_state.c.next_attempt_at)).all()
    )
