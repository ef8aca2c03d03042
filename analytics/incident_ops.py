"""Incident command operations (issue 21): the rules of analytics.incidents applied to storage.

Each function runs in the caller's transaction; the HTTP router and the scheduler call these.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import shapely
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError
from sqlalchemy import Connection, Engine

from analytics import incidents as rules
from layers.analytics import alerts as adb
from layers.auth.users import User
from layers.errors import ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError
from layers.incidents import store
from layers.incidents.store import Scope
from layers.indicators import catalog as indicator_catalog
from layers.indicators import store as ind
from layers.reports import media as report_media
from layers.settings import Settings

log = logging.getLogger(__name__)
KPI_JOB = "derived:incidents"
TZ = "Asia/Ho_Chi_Minh"

# --- request bodies -----------------------------------------------------------------------


class SourceRef(BaseModel):
    """An alert, citizen report, detection event or sensor reading (layer:feature id)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["alert", "report", "event", "reading"]
    ref: str = Field(min_length=1, max_length=200)


class IncidentIn(BaseModel):
    """A new incident: from a source, or from a point or area drawn on the map."""

    model_config = ConfigDict(extra="forbid")

    type: rules.IncidentType | None = None
    severity: int = Field(default=2, ge=1, le=4)
    title: str | None = Field(default=None, max_length=300)
    description: str = Field(default="", max_length=5000)
    geometry: dict[str, Any] | None = Field(default=None, description="GeoJSON Point or Polygon")
    radius_m: float | None = Field(default=None, gt=0)
    commander: str | None = Field(default=None, max_length=64)
    source: SourceRef | None = None

    @model_validator(mode="after")
    def _where(self) -> IncidentIn:
        if self.geometry is None and self.source is None:
            raise PydanticCustomError(
                "incident_where", "give a geometry (a point on the map) or a source to open from"
            )
        return self


class IncidentPatch(BaseModel):
    """Editable fields of an incident."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, min_length=1, max_length=300)
    description: str | None = Field(default=None, max_length=5000)
    severity: int | None = Field(default=None, ge=1, le=4)
    type: rules.IncidentType | None = None
    radius_m: float | None = Field(default=None, gt=0)
    commander: str | None = Field(default=None, max_length=64)
    geometry: dict[str, Any] | None = None


class DirectiveIn(BaseModel):
    """A leader's directive (chỉ đạo): becomes a task for an agency or the commander."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=2000)
    agency_code: str | None = Field(default=None, max_length=64)
    sla_minutes: int = Field(default=60, gt=0, le=60 * 24 * 30)


# --- helpers ------------------------------------------------------------------------------


def _geometry_wkb(geojson: dict[str, Any]) -> bytes:
    try:
        geom = shapely.geometry.shape(geojson)
    except Exception as exc:  # shapely raises several types for bad GeoJSON
        raise InvalidInputError(
            f"geometry: not valid GeoJSON ({exc})",
            field="geometry",
            i18n="err.incident_ops.geometry_not_valid_geojson",
            exc=str(exc),
        ) from exc
    if geom.geom_type not in ("Point", "Polygon", "MultiPolygon"):
        raise InvalidInputError(
            "geometry: a Point, Polygon or MultiPolygon",
            field="geometry",
            i18n="err.incident_ops.geometry_point_polygon_or_multipolygon",
        )
    if geom.is_empty or not geom.is_valid:
        raise InvalidInputError(
            "geometry: empty or invalid",
            field="geometry",
            i18n="err.incident_ops.geometry_empty_or_invalid",
        )
    minx, miny, maxx, maxy = geom.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise InvalidInputError(
            "geometry: coordinates must be WGS84 lng/lat",
            field="geometry",
            i18n="err.incident_ops.geometry_coordinates_must_be_wgs84",
        )
    return bytes(shapely.to_wkb(geom))


def scope_of(user: User) -> Scope:
    """What a caller may see: commune staff their communes, agency staff their agency's tasks."""
    if user.role == "commune_staff":
        return Scope(communes=user.admin_units)
    if user.role == "agency_staff":
        return Scope(agencies=user.admin_units)
    return store.EVERYTHING


def _check_radius(radius: float, settings: Settings) -> float:
    if radius > settings.incident_max_radius_m:
        raise InvalidInputError(
            f"radius_m: at most {settings.incident_max_radius_m:.0f} m",
            field="radius_m",
            i18n="err.incident_ops.radius_m_at_most_m",
            incident_max_radius_m=format(settings.incident_max_radius_m, ".0f"),
        )
    return radius


def _sop_for(conn: Connection, itype: str, severity: int) -> int | None:
    sop = rules.pick_sop(store.list_sops(conn), itype, severity)
    return int(sop["version_id"]) if sop is not None else None


# --- SOPs ---------------------------------------------------------------------------------


def put_sop(conn: Connection, spec: rules.SopSpec, user: User) -> dict[str, Any]:
    """Store a new version of a procedure (running incidents keep the version they started on)."""
    return store.save_sop(conn, spec.model_dump(mode="json"), user.username)


# --- incidents ----------------------------------------------------------------------------


def open_incident(
    conn: Connection, body: IncidentIn, user: User, now: datetime, settings: Settings
) -> dict[str, Any]:
    """Open an incident from a source or a map point; the source is linked at once."""
    src: dict[str, Any] | None = None
    if body.source is not None:
        src = store.get_source(conn, body.source.kind, body.source.ref)
    if body.geometry is not None:
        wkb = _geometry_wkb(body.geometry)
    elif src is not None and src.get("wkb") is not None:
        wkb = src["wkb"]
    else:
        raise InvalidInputError(
            "the source has no location; give a geometry",
            field="geometry",
            i18n="err.incident_ops.source_has_no_location_give",
        )
    itype = body.type
    if itype is None and src is not None and body.source is not None:
        itype = rules.source_type(body.source.kind, src["label"] or "")  # type: ignore[assignment]
    itype = itype or "other"
    title = body.title or (src["title"] if src else None)
    if not title:
        raise InvalidInputError(
            "title: required when not opening from a source",
            field="title",
            i18n="err.incident_ops.title_required_when_not_opening",
        )
    commune = store.commune_at(conn, wkb)
    radius = _check_radius(body.radius_m or settings.incident_default_radius_m, settings)
    iid = store.create_incident(
        conn,
        {
            "type": itype,
            "severity": body.severity,
            "title": title[:300],
            "description": body.description,
            "radius_m": radius,
            "status": "new",
            "commune_code": commune[0] if commune else None,
            "commune_name": commune[1] if commune else "",
            "commander": body.commander or user.username,
            "sop_version_id": _sop_for(conn, itype, body.severity),
            "opened_from": body.source.kind if body.source else "map",
            "opened_by": user.username,
            "opened_at": now,
            "updated_at": now,
        },
        wkb,
    )
    store.log(
        conn,
        iid,
        now,
        user.username,
        "opened",
        {"from": body.source.model_dump() if body.source else "map"},
        None,
        "new",
    )
    if src is not None and body.source is not None:
        store.add_link(conn, iid, body.source.kind, src, user.username, now)
        store.log(
            conn, iid, now, user.username, "linked", {"kind": body.source.kind, "ref": src["ref"]}
        )
    return store.get_incident(conn, iid)  # fmt: skip


def patch_incident(
    conn: Connection,
    incident_id: int,
    body: IncidentPatch,
    user: User,
    now: datetime,
    settings: Settings,
    scope: Scope,
) -> dict[str, Any]:
    """Change editable fields; each change is logged with its old and new value."""
    cur = store.get_incident(conn, incident_id, scope, lock=True)
    if cur["status"] in ("closed", "false_alarm"):
        raise ConflictError(
            f"incident {incident_id} is {cur['status']}; it can no longer change",
            i18n="err.incident_ops.incident_it_can_no_longer",
            incident_id=incident_id,
            status=cur["status"],
        )
    changes = body.model_dump(exclude_unset=True, exclude={"geometry"})
    if "radius_m" in changes and changes["radius_m"] is not None:
        _check_radius(changes["radius_m"], settings)
    changes = {k: v for k, v in changes.items() if v is not None and v != cur[k]}
    wkb = _geometry_wkb(body.geometry) if body.geometry is not None else None
    values: dict[str, Any] = dict(changes)
    if wkb is not None:
        commune = store.commune_at(conn, wkb)
        values["commune_code"] = commune[0] if commune else None
        values["commune_name"] = commune[1] if commune else ""
    # The SOP follows type and severity only until tasks exist (then the version is kept).
    if cur["status"] == "new" and ({"type", "severity"} & changes.keys()):
        values["sop_version_id"] = _sop_for(
            conn, changes.get("type", cur["type"]), changes.get("severity", cur["severity"])
        )
    if not values and wkb is None:
        return cur
    values["updated_at"] = now
    store.update_incident(conn, incident_id, values, wkb)
    detail = {k: {"from": cur[k], "to": v} for k, v in changes.items()}
    if wkb is not None:
        detail["geometry"] = {"from": cur["geometry"], "to": body.geometry}
    store.log(conn, incident_id, now, user.username, "updated", detail)
    return store.get_incident(conn, incident_id)


def transition(
    conn: Connection, incident_id: int, to: str, user: User, now: datetime, note: str = ""
) -> dict[str, Any]:
    """Move an incident along its states; confirming creates the SOP's tasks."""
    cur = store.get_incident(conn, incident_id, lock=True)
    rules.check_transition(cur["status"], to)
    values: dict[str, Any] = {"status": to, "updated_at": now}
    stamp = rules.STAMPS.get(to)
    if stamp and cur[stamp] is None:
        values[stamp] = now
    store.update_incident(conn, incident_id, values)
    detail: dict[str, Any] = {"note": note} if note else {}
    if to in ("closed", "false_alarm"):
        # Nothing is left for the agencies to do once the incident is over.
        for t in store.list_tasks(conn, incident_id=incident_id, open_only=True):
            store.update_task(conn, int(t["id"]), {"status": "cancelled"})
    store.log(conn, incident_id, now, user.username, "status", detail, cur["status"], to)
    if to == "confirmed":
        _create_sop_tasks(conn, cur, user, now)
    return store.get_incident(conn, incident_id)


def _create_sop_tasks(conn: Connection, inc: dict[str, Any], user: User, now: datetime) -> None:
    if inc["sop_version_id"] is None:
        store.log(conn, int(inc["id"]), now, "system", "no_sop", {"type": inc["type"]})
        return
    ver = store.get_sop_version(conn, int(inc["sop_version_id"]))
    wkb = bytes(shapely.to_wkb(shapely.geometry.shape(inc["geometry"])))
    made = []
    for p in rules.plan_tasks(ver["steps"], int(inc["severity"]), now):
        agency = None
        if p.agency_kind is not None:
            agency = store.find_agency(conn, p.agency_kind, p.agency_name, inc["commune_code"], wkb)
        tid = store.create_task(
            conn,
            {
                "incident_id": inc["id"],
                "step_no": p.step_no,
                "origin": "sop",
                "title": p.title,
                "agency_code": agency["code"] if agency else None,
                "agency_name": agency["name"] if agency else (p.agency_name or ""),
                "agency_kind": p.agency_kind or "",
                "role": p.role,
                "evidence": p.evidence,
                "sla_minutes": p.sla_minutes,
                "created_by": user.username,
                "created_at": now,
                "due_at": p.due_at,
            },
        )
        made.append(
            {"task_id": tid, "step": p.step_no, "agency": agency["code"] if agency else p.role}
        )
    store.log(
        conn,
        int(inc["id"]),
        now,
        "system",
        "tasks_created",
        {"sop": ver["slug"], "version": ver["version"], "tasks": made},
    )


def add_directive(
    conn: Connection, incident_id: int, body: DirectiveIn, user: User, now: datetime
) -> dict[str, Any]:
    """A leader's directive: logged, and a task for the named agency (else the commander)."""
    inc = store.get_incident(conn, incident_id, lock=True)
    if inc["status"] not in rules.OPEN_STATUSES:
        raise ConflictError(
            f"incident {incident_id} is {inc['status']}; no more directives",
            i18n="err.incident_ops.incident_no_more_directives",
            incident_id=incident_id,
            status=inc["status"],
        )
    agency = None
    if body.agency_code:
        agency = store.get_agency(conn, body.agency_code)
        if agency is None:
            raise InvalidInputError(
                f"agency_code: unknown agency '{body.agency_code}'",
                field="agency_code",
                i18n="err.incident_ops.agency_code_unknown_agency",
                agency_code=body.agency_code,
            )
    tid = store.create_task(
        conn,
        {
            "incident_id": incident_id,
            "origin": "directive",
            "title": body.text[:300],
            "detail": body.text,
            "agency_code": agency["code"] if agency else None,
            "agency_name": agency["name"] if agency else "",
            "agency_kind": agency["kind"] if agency else "",
            "role": None if agency else "commander",
            "evidence": "note",
            "sla_minutes": body.sla_minutes,
            "created_by": user.username,
            "created_at": now,
            "due_at": now + timedelta(minutes=body.sla_minutes),
        },
    )
    store.log(
        conn, incident_id, now, user.username, "directive", {"text": body.text, "task_id": tid}
    )
    return store.get_task(conn, tid)


def suggested_links(
    conn: Connection, incident_id: int, settings: Settings, scope: Scope
) -> list[dict[str, Any]]:
    """Unlinked nearby sources of a matching type, nearest first (none once it is over)."""
    inc = store.get_incident(conn, incident_id, scope)
    if inc["status"] not in rules.OPEN_STATUSES:
        return []
    window = timedelta(hours=settings.incident_link_window_h)
    out = []
    for c in store.link_candidates(conn, incident_id, settings.incident_link_distance_m, window):
        st = rules.source_type(c["kind"], c["label"] or "")
        if rules.types_match(inc["type"], st):
            out.append({**c, "source_type": st, "distance_m": round(float(c["distance_m"]), 1)})
    return out


def link_source(
    conn: Connection, incident_id: int, src_ref: SourceRef, user: User, now: datetime
) -> dict[str, Any]:
    """Link a source to an incident (idempotent)."""
    store.get_incident(conn, incident_id, lock=True)
    src = store.get_source(conn, src_ref.kind, src_ref.ref)
    if store.add_link(conn, incident_id, src_ref.kind, src, user.username, now):
        store.log(
            conn,
            incident_id,
            now,
            user.username,
            "linked",
            {"kind": src_ref.kind, "ref": src["ref"]},
        )
    return {"links": store.list_links(conn, incident_id)}  # fmt: skip


def detail(conn: Connection, incident_id: int, scope: Scope) -> dict[str, Any]:
    """An incident with its log, tasks (with notes), links and SOP version."""
    inc = store.get_incident(conn, incident_id, scope)
    tasks = store.list_tasks(conn, incident_id=incident_id)
    notes = store.list_notes(conn, [int(t["id"]) for t in tasks])
    by_task: dict[int, list[dict[str, Any]]] = {}
    for n in notes:
        by_task.setdefault(int(n["task_id"]), []).append(n)
    for t in tasks:
        t["notes"] = by_task.get(int(t["id"]), [])
    inc["log"] = store.get_log(conn, incident_id)
    inc["tasks"] = tasks
    inc["links"] = store.list_links(conn, incident_id)
    inc["sop"] = (
        store.get_sop_version(conn, int(inc["sop_version_id"]))
        if inc["sop_version_id"] is not None
        else None
    )
    return inc


# --- tasks --------------------------------------------------------------------------------


def _task_for(conn: Connection, task_id: int, user: User) -> dict[str, Any]:
    t = store.get_task(conn, task_id, scope_of(user), lock=True)
    if t["status"] in ("done", "cancelled"):
        raise ConflictError(
            f"task {task_id} is {t['status']}",
            i18n="err.incident_ops.task",
            task_id=task_id,
            status=t["status"],
        )
    return t


def ack_task(conn: Connection, task_id: int, user: User, now: datetime) -> dict[str, Any]:
    """Acknowledge an open task (the first response of its agency)."""
    t = _task_for(conn, task_id, user)
    if t["status"] != "open":
        raise ConflictError(
            f"task {task_id} is already {t['status']}",
            i18n="err.incident_ops.task_already",
            task_id=task_id,
            status=t["status"],
        )
    store.update_task(
        conn,
        task_id,
        {"status": "acknowledged", "acknowledged_at": now, "acknowledged_by": user.username},
    )
    store.log(
        conn,
        int(t["incident_id"]),
        now,
        user.username,
        "task_ack",
        {"task_id": task_id, "title": t["title"]},
    )
    return store.get_task(conn, task_id)  # fmt: skip


def note_task(
    conn: Connection,
    task_id: int,
    user: User,
    now: datetime,
    note: str,
    photo: bytes | None,
    settings: Settings,
) -> dict[str, Any]:
    """Add a note and/or a photo (JPEG/PNG, re-encoded without EXIF) to a task."""
    if not note.strip() and not photo:
        raise InvalidInputError(
            "give a note or a photo", field="note", i18n="err.incident_ops.give_note_or_photo"
        )
    t = _task_for(conn, task_id, user)
    data, mtype = None, None
    if photo:
        p = report_media.process_photo(photo, settings.incident_photo_max_bytes, "photo")
        data, mtype = p.data, p.media_type
    nid = store.add_note(conn, task_id, now, user.username, note.strip(), data, mtype)
    store.log(
        conn,
        int(t["incident_id"]),
        now,
        user.username,
        "task_note",
        {"task_id": task_id, "note": note.strip(), "photo": data is not None, "note_id": nid},
    )
    return store.get_task(conn, task_id)  # fmt: skip


def complete_task(
    conn: Connection, task_id: int, user: User, now: datetime, note: str = ""
) -> dict[str, Any]:
    """Complete a task once its required evidence (note or photo) is there."""
    t = _task_for(conn, task_id, user)
    notes, photos = int(t["notes"]), int(t["photos"])
    if note.strip():
        store.add_note(conn, task_id, now, user.username, note.strip(), None, None)
        notes += 1
    rules.check_completion(t["evidence"], notes, photos)
    values: dict[str, Any] = {"status": "done", "completed_at": now, "completed_by": user.username}
    if t["acknowledged_at"] is None:
        values.update(acknowledged_at=now, acknowledged_by=user.username)
    store.update_task(conn, task_id, values)
    on_time = now <= t["due_at"]
    store.log(
        conn,
        int(t["incident_id"]),
        now,
        user.username,
        "task_done",
        {"task_id": task_id, "title": t["title"], "on_time": on_time},
    )
    if t["escalation_alert_id"] is not None:
        with contextlib.suppress(ConflictError, NotFoundError):  # resolved by an operator
            adb.transition(
                conn,
                int(t["escalation_alert_id"]),
                "resolved",
                user.username,
                f"task {task_id} done",
            )
    return store.get_task(conn, task_id)  # fmt: skip


def check_task_reader(user: User, task: dict[str, Any]) -> None:
    """PermissionDeniedError if an agency user reads another agency's task (belt and braces)."""
    if user.role == "agency_staff" and task["agency_code"] not in user.admin_units:
        raise PermissionDeniedError(
            "this task belongs to another agency",
            i18n="err.incident_ops.this_task_belongs_to_another",
        )


# --- escalation and KPIs (the scheduler's jobs) --------------------------------------------


def escalate_overdue(conn: Connection, now: datetime) -> list[int]:
    """Overdue tasks: one critical alert each, the commander told in the log; returns task ids."""
    tasks = rules.due_for_escalation(store.overdue_tasks(conn, now), now)
    if not tasks:
        return []
    rule_id = store.overdue_rule_id(conn)
    done = []
    for t in tasks:
        inc = store.get_incident(conn, int(t["incident_id"]))
        late_min = (now - t["due_at"]).total_seconds() / 60
        who = t["agency_name"] or t["role"] or ""
        new, seen = adb.write_alerts(
            conn,
            [
                adb.AlertWrite(
                    rule_id=rule_id,
                    dedup_key=f"task:{t['id']}",
                    severity="critical",
                    title=f"Quá hạn: {t['title']} ({who}) — sự cố #{inc['id']} {inc['title']}",
                    area_kind="commune" if inc["commune_code"] else "province",
                    area_ref=inc["commune_code"] or "",
                    geom_wkb=bytes(shapely.to_wkb(shapely.Point(inc["lng"], inc["lat"]))),
                    value=round(late_min, 1),
                    threshold=float(t["sla_minutes"]),
                    evidence={
                        "incident_id": inc["id"],
                        "task_id": t["id"],
                        "agency_code": t["agency_code"],
                        "commander": inc["commander"],
                        "links": [f"/api/incidents/{inc['id']}"],
                    },
                    window_start=t["created_at"],
                    window_end=now,
                )
            ],
        )
        alert_id = (new or seen)[0]
        store.update_task(
            conn, int(t["id"]), {"escalated_at": now, "escalation_alert_id": alert_id}
        )
        store.log(
            conn,
            int(inc["id"]),
            now,
            "system",
            "escalated",
            {
                "task_id": t["id"],
                "title": t["title"],
                "agency": who,
                "alert_id": alert_id,
                "commander": inc["commander"],
                "late_minutes": round(late_min, 1),
            },
        )
        done.append(int(t["id"]))
    return done


def _local_day(ts: datetime) -> date:
    return ts.astimezone(ZoneInfo(TZ)).date()


def refresh_kpis(conn: Connection, force: bool = False) -> int:
    """Recompute the incident KPIs (daily, per commune) when the log moved; returns rows written."""
    version = store.kpi_version(conn)
    if not force and ind.job_version(conn, KPI_JOB) == version:
        return 0
    incs, tasks = store.kpi_rows(conn)
    vals = rules.kpi_values(incs, tasks, _local_day)
    rows = [
        ind.ObservationIn(
            indicator=code,
            subject_layer=None,
            subject_key=commune,
            period_start=day,
            period_end=day,
            value=v,
        )
        for (code, commune, day), v in sorted(vals.items())
    ]
    # Subject-days that had a value but no longer do come back as 0 (a reopened SOP change).
    for code in indicator_catalog.INCIDENT_KPI_CODES:
        for key, day in ind.nonzero_subject_days(conn, code):
            if (code, key, day) not in vals:
                rows.append(
                    ind.ObservationIn(
                        indicator=code,
                        subject_layer=None,
                        subject_key=key,
                        period_start=day,
                        period_end=day,
                        value=0.0,
                    )
                )
    counts = ind.upsert_observations(conn, None, rows)
    ind.set_job_version(conn, KPI_JOB, version)
    return counts.inserted + counts.updated


def run_jobs(engine: Engine, now: datetime | None = None) -> None:
    """The scheduler's incident jobs: escalate overdue tasks, then refresh the KPIs."""
    now = now or datetime.now(UTC)
    with engine.begin() as conn:
        escalated = escalate_overdue(conn, now)
        if escalated:
            log.info("incident tasks escalated: %s", escalated)
    with engine.begin() as conn:
        refresh_kpis(conn)
