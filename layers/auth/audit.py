"""The audit trail: who did what, when and from where (writes, imports, exports, logins, views)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from layers.models.reports import audit_log


def record(
    conn: Connection,
    actor: str,
    role: str,
    action: str,
    *,
    method: str = "",
    path: str = "",
    status: int | None = None,
    ip: str = "",
    user_agent: str = "",
    details: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> int:
    """Append one audit entry; returns its id."""
    values: dict[str, Any] = {
        "actor": actor,
        "role": role,
        "action": action,
        "method": method,
        "path": path[:2000],
        "status": status,
        "ip": ip,
        "user_agent": user_agent[:500],
        "details": details or {},
    }
    if at is not None:
        values["at"] = at
    return int(
        conn.execute(audit_log.insert().values(**values).returning(audit_log.c.id)).scalar_one()
    )


def list_entries(
    conn: Connection,
    *,
    actor: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    before_id: int | None = None,
) -> list[dict[str, Any]]:
    """Audit entries, newest first, filtered; page with `before_id`."""
    stmt = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if actor:
        stmt = stmt.where(audit_log.c.actor == actor)
    if action:
        stmt = stmt.where(audit_log.c.action == action)
    if since:
        stmt = stmt.where(audit_log.c.at >= since)
    if until:
        stmt = stmt.where(audit_log.c.at < until)
    if before_id:
        stmt = stmt.where(audit_log.c.id < before_id)
    out = []
    for r in conn.execute(stmt).mappings():
        row = dict(r)
        row["at"] = row["at"].isoformat()
        out.append(row)
    return out
