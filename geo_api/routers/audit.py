"""Router for /api/audit: the audit trail, readable by admins."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from geo_api.deps import ConnDep
from layers.auth import audit

router = APIRouter(prefix="/api/audit", tags=["audit"])


@router.get("", summary="Audit entries, newest first")
def list_entries(
    conn: ConnDep,
    actor: str | None = None,
    action: Annotated[
        str | None,
        Query(description="Exact action, e.g. 'login' or 'POST /api/reports/{code}/assign'"),
    ] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before_id: int | None = None,
) -> list[dict[str, Any]]:
    """Who did what, when and from where; page backwards with before_id."""
    return audit.list_entries(
        conn, actor=actor, action=action, since=since, until=until, limit=limit, before_id=before_id
    )
