"""Alerts: list with filters, acknowledge, resolve, rules as data, and a Server-Sent Events stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from analytics import alerting, rules
from geo_api.deps import ConnDep, EngineDep, SettingsDep
from geo_api.security import RequiredUser, current_user
from layers.analytics import alerts as adb
from layers.auth.users import User
from layers.db import conninfo as database_conninfo
from layers.errors import NotFoundError
from layers.features.items import check_limit, parse_bbox

router = APIRouter(prefix="/api/alerts", tags=["alerts"])


class AlertAction(BaseModel):
    """An optional note on acknowledging or resolving (the actor is the signed-in user)."""

    model_config = ConfigDict(extra="forbid")

    note: str = ""


def _units(user: User | None) -> tuple[str, ...] | None:
    """The communes a commune_staff caller is limited to; None for province-wide roles."""
    if user is not None and user.role == "commune_staff":
        return user.admin_units
    return None


@router.get("", summary="Alerts, newest first, with filters")
def list_alerts(
    conn: ConnDep,
    user: RequiredUser,
    status: Annotated[list[str] | None, Query(description="open, acknowledged, resolved")] = None,
    severity: Annotated[list[str] | None, Query(description="info, warning, critical")] = None,
    rule: Annotated[str | None, Query(description="Rule slug")] = None,
    since: Annotated[datetime | None, Query(description="Seen at or after")] = None,
    bbox: Annotated[str | None, Query(description="minx,miny,maxx,maxy (WGS84)")] = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Alerts matching every given filter."""
    return adb.list_alerts(
        conn,
        status=status or (),
        severity=severity or (),
        rule=rule,
        since=since,
        bbox=parse_bbox(bbox),
        limit=check_limit(limit, 1000),
        units=_units(user),
    )


@router.get("/stream", summary="New and changed alerts as Server-Sent Events")
async def stream(request: Request, engine: EngineDep, settings: SettingsDep) -> EventSourceResponse:
    """One event per alert change (event: new/acknowledged/resolved; data: the alert as JSON)."""
    conninfo = database_conninfo(settings)
    units = _units(current_user(request))

    async def events() -> AsyncIterator[dict[str, str]]:
        async for kind, alert_id in adb.listen_alerts(conninfo):
            if kind == "listening":
                yield {"event": "ready", "data": "{}"}
                continue
            if await request.is_disconnected():
                break

            def load(i: int = alert_id) -> dict[str, Any] | None:
                with engine.connect() as conn:
                    try:
                        return adb.get_alert(conn, i, units)
                    except NotFoundError:
                        return None  # outside the caller's communes, or already gone

            doc = await run_in_threadpool(load)
            if doc is None:
                continue
            yield {"event": kind, "id": str(alert_id), "data": orjson.dumps(doc).decode()}

    return EventSourceResponse(events(), ping=15)


@router.get("/rules", summary="Alert rules")
def list_rules(conn: ConnDep) -> list[dict[str, Any]]:
    """Every stored rule."""
    return adb.list_rules(conn)


@router.put("/rules", summary="Create or replace a rule (by slug)")
def put_rule(spec: rules.RuleSpec, conn: ConnDep) -> dict[str, Any]:
    """Store a rule given as data."""
    (rule_id,) = alerting.install_rules(conn, [spec])
    return {"id": rule_id, "slug": spec.slug}


@router.post("/evaluate", summary="Evaluate the rules now")
def evaluate(engine: EngineDep, request: Request) -> dict[str, Any]:
    """Run every enabled rule once; returns the alerts opened, refreshed and resolved."""
    rep = alerting.evaluate_all(engine, settings=request.app.state.settings)
    return {
        "evaluated": rep.evaluated,
        "opened": rep.opened,
        "refreshed": rep.refreshed,
        "resolved": rep.resolved,
        "errors": rep.errors,
    }


@router.get("/{alert_id}", summary="One alert")
def get_alert(alert_id: int, conn: ConnDep, user: RequiredUser) -> dict[str, Any]:
    """One alert with its evidence."""
    return adb.get_alert(conn, alert_id, _units(user))


@router.post("/{alert_id}/ack", summary="Acknowledge an open alert")
def acknowledge(
    alert_id: int, conn: ConnDep, user: RequiredUser, body: AlertAction | None = None
) -> dict[str, Any]:
    """Move an open alert to acknowledged, in the caller's name."""
    b = body or AlertAction()
    return adb.transition(conn, alert_id, "acknowledged", user.username, b.note)


@router.post("/{alert_id}/resolve", summary="Resolve an alert")
def resolve(
    alert_id: int, conn: ConnDep, user: RequiredUser, body: AlertAction | None = None
) -> dict[str, Any]:
    """Move an open or acknowledged alert to resolved, in the caller's name."""
    b = body or AlertAction()
    return adb.transition(conn, alert_id, "resolved", user.username, b.note)
