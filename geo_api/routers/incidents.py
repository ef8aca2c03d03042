"""Incidents (issue 21): open, run by the SOP, link sources, direct, stream, report."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from analytics import incident_ops as ops
from analytics import incident_report
from geo_api.deps import ConnDep, EngineDep, SettingsDep
from geo_api.security import NowDep, RequiredUser, current_user
from layers.db import conninfo as database_conninfo
from layers.errors import InvalidInputError, NotFoundError
from layers.features.items import check_limit, parse_bbox
from layers.incidents import store

router = APIRouter(prefix="/api/incidents", tags=["incidents"])

# Who may see camera sites and pictures (the cameras layer is sensitive).
CAMERA_ROLES = frozenset({"admin", "operator", "leader", "gis_staff"})


class TransitionIn(BaseModel):
    """The state to move to, with an optional note."""

    model_config = ConfigDict(extra="forbid")

    to: str = Field(description="confirmed, responding, contained, closed or false_alarm")
    note: str = Field(default="", max_length=2000)


@router.post("", summary="Open an incident (from an alert, report, event, reading or a map point)")
def open_incident(
    body: ops.IncidentIn, conn: ConnDep, user: RequiredUser, settings: SettingsDep, now: NowDep
) -> dict[str, Any]:
    """Create an incident in state new; the source it came from is linked."""
    return ops.open_incident(conn, body, user, now, settings)


@router.get("", summary="Incidents, newest first, with filters")
def list_incidents(
    conn: ConnDep,
    user: RequiredUser,
    status: Annotated[list[str] | None, Query(description="new, confirmed, …")] = None,
    type: Annotated[list[str] | None, Query(description="flood, fire, …")] = None,
    bbox: Annotated[str | None, Query(description="minx,miny,maxx,maxy (WGS84)")] = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """Incidents in the caller's communes matching every filter."""
    return store.list_incidents(
        conn,
        status=status or (),
        types=type or (),
        bbox=parse_bbox(bbox),
        scope=ops.scope_of(user),
        limit=check_limit(limit, 1000),
    )


@router.get("/stream", summary="Incident changes as Server-Sent Events")
async def stream(request: Request, engine: EngineDep, settings: SettingsDep) -> EventSourceResponse:
    """One event per change (event: the log action; data: the incident as JSON)."""
    conninfo = database_conninfo(settings)
    user = current_user(request)
    scope = ops.scope_of(user) if user is not None else store.EVERYTHING

    async def events() -> AsyncIterator[dict[str, str]]:
        async for kind, incident_id in store.listen(conninfo):
            if kind == "listening":
                yield {"event": "ready", "data": "{}"}
                continue
            if await request.is_disconnected():
                break

            def load(i: int = incident_id) -> dict[str, Any] | None:
                with engine.connect() as conn:
                    try:
                        return store.get_incident(conn, i, scope)
                    except NotFoundError:
                        return None  # outside the caller's communes

            doc = await run_in_threadpool(load)
            if doc is None:
                continue
            yield {"event": kind, "id": str(incident_id), "data": orjson.dumps(doc).decode()}

    return EventSourceResponse(events(), ping=15)


@router.get("/board", summary="Leaders' board: open incidents by severity and age")
def board(conn: ConnDep, user: RequiredUser, now: NowDep) -> dict[str, Any]:
    """Open incidents, most severe and oldest first, with counts per severity."""
    rows = store.board(conn, ops.scope_of(user))
    for r in rows:
        r["age_minutes"] = round((now - r["opened_at"]).total_seconds() / 60, 1)
    by_sev = {str(s): sum(1 for r in rows if r["severity"] == s) for s in (4, 3, 2, 1)}
    return {"incidents": rows, "by_severity": by_sev, "at": now}


@router.get("/{incident_id}", summary="One incident with its log, tasks and links")
def get_incident(incident_id: int, conn: ConnDep, user: RequiredUser) -> dict[str, Any]:
    """The incident, its append-only log, its tasks with notes, and its linked sources."""
    return ops.detail(conn, incident_id, ops.scope_of(user))


@router.patch("/{incident_id}", summary="Edit an incident")
def patch_incident(
    incident_id: int,
    body: ops.IncidentPatch,
    conn: ConnDep,
    user: RequiredUser,
    settings: SettingsDep,
    now: NowDep,
) -> dict[str, Any]:
    """Change title, severity, type, radius, commander or location (each change logged)."""
    return ops.patch_incident(conn, incident_id, body, user, now, settings, ops.scope_of(user))


@router.get("/{incident_id}/suggested-links", summary="Nearby sources to link")
def suggested_links(
    incident_id: int, conn: ConnDep, user: RequiredUser, settings: SettingsDep
) -> list[dict[str, Any]]:
    """Unlinked alerts, reports and events near the incident in space and time, of its type."""
    return ops.suggested_links(conn, incident_id, settings, ops.scope_of(user))


@router.post("/{incident_id}/links", summary="Link a source")
def link(
    incident_id: int, body: ops.SourceRef, conn: ConnDep, user: RequiredUser, now: NowDep
) -> dict[str, Any]:
    """Link an alert, report, event or reading to the incident."""
    return ops.link_source(conn, incident_id, body, user, now)


@router.post("/{incident_id}/transition", summary="Move the incident to another state")
def transition(
    incident_id: int, body: TransitionIn, conn: ConnDep, user: RequiredUser, now: NowDep
) -> dict[str, Any]:
    """new → confirmed → responding → contained → closed, or false_alarm; confirm creates tasks."""
    store.get_incident(conn, incident_id, ops.scope_of(user))
    return ops.transition(conn, incident_id, body.to, user, now, body.note)


@router.post("/{incident_id}/directives", summary="A leader's directive (becomes a task)")
def directive(
    incident_id: int, body: ops.DirectiveIn, conn: ConnDep, user: RequiredUser, now: NowDep
) -> dict[str, Any]:
    """Log the directive and create its task."""
    return ops.add_directive(conn, incident_id, body, user, now)


@router.get("/{incident_id}/tasks", summary="The incident's tasks")
def tasks(incident_id: int, conn: ConnDep, user: RequiredUser) -> list[dict[str, Any]]:
    """Tasks of the incident in creation order (agency users: their own only)."""
    scope = ops.scope_of(user)
    store.get_incident(conn, incident_id, scope)
    return store.list_tasks(conn, incident_id=incident_id, scope=scope)


@router.get("/{incident_id}/around", summary="What is around the incident")
def around(incident_id: int, conn: ConnDep, user: RequiredUser) -> dict[str, Any]:
    """Nearest hospitals with beds, police, fire and 115 posts; cameras, schools, population."""
    store.get_incident(conn, incident_id, ops.scope_of(user))
    return incident_report.around(conn, incident_id, with_cameras=user.role in CAMERA_ROLES)


@router.get("/{incident_id}/report.html", summary="After-action report (HTML)")
def report_html(
    incident_id: int, conn: ConnDep, user: RequiredUser, lang: str = "vi"
) -> HTMLResponse:
    """The after-action report rendered on the server: map, timeline, tasks, who did what."""
    doc = _report_doc(conn, incident_id, user, lang)
    return HTMLResponse(incident_report.render_html(doc))


@router.get("/{incident_id}/report.pdf", summary="After-action report (PDF)")
def report_pdf(incident_id: int, conn: ConnDep, user: RequiredUser, lang: str = "vi") -> Response:
    """The same report as a PDF (reportlab, no browser)."""
    doc = _report_doc(conn, incident_id, user, lang)
    pdf = incident_report.render_pdf(doc)
    name = f"su-co-{incident_id}.pdf"
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{name}"'},
    )


def _report_doc(conn: Any, incident_id: int, user: Any, lang: str) -> dict[str, Any]:
    if lang not in ("vi", "en"):
        raise InvalidInputError("lang: vi or en", param="lang", i18n="err.incidents.lang_vi_or_en")
    from web_map.briefing import Strings

    inc = ops.detail(conn, incident_id, ops.scope_of(user))
    return incident_report.build(conn, inc, Strings(lang).t)
