"""Storage of incident command (issue 21): every statement on the incident tables lives here.

Scoping is applied inside the queries: commune staff see incidents of their communes (and the
tasks of those incidents), agency staff see only the tasks assigned to their agency.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from typing import Any

import orjson
from sqlalchemy import Connection, and_, func, insert, select, text, update

from layers.errors import InvalidInputError, NotFoundError
from layers.models.core import admin_unit, feature, layer
from layers.models.incidents import (
    incident,
    incident_link,
    incident_log,
    incident_task,
    incident_task_note,
    sop,
    sop_version,
)

CHANNEL = "iocmap_incidents"
OVERDUE_RULE = "incident_task_overdue"


@dataclass(frozen=True)
class Scope:
    """What a caller may see: None is province-wide; a tuple limits to those codes."""

    communes: tuple[str, ...] | None = None
    agencies: tuple[str, ...] | None = None


EVERYTHING = Scope()

# --- agencies -----------------------------------------------------------------------------


def _agency_select() -> Any:
    props = feature.c.properties
    return (
        select(
            props["ma_don_vi"].astext.label("code"),
            props["name"].astext.label("name"),
            props["kind"].astext.label("kind"),
            props["commune_code"].astext.label("commune_code"),
            func.ST_X(feature.c.geom).label("lng"),
            func.ST_Y(feature.c.geom).label("lat"),
        )
        .select_from(feature.join(layer, layer.c.id == feature.c.layer_id))
        .where(layer.c.slug == "agencies")
    )


def check_agency_codes(conn: Connection, codes: Sequence[str]) -> list[str]:
    """The codes if each is the ma_don_vi of an agency; InvalidInputError naming unknown ones."""
    codes = sorted(set(codes))
    if len(codes) != 1:
        raise InvalidInputError(
            "an agency_staff user is bound to exactly one agency (ma_don_vi)",
            i18n="err.incidents_store.agency_staff_user_bound_to",
        )
    stmt = _agency_select().where(feature.c.properties["ma_don_vi"].astext.in_(codes))
    known = {r.code for r in conn.execute(stmt)}
    missing = [c for c in codes if c not in known]
    if missing:
        raise InvalidInputError(
            f"unknown agency code(s) (ma_don_vi): {', '.join(missing)}",
            i18n="err.incidents_store.unknown_agency_code_ma_don",
            items=", ".join(missing),
        )
    return codes


def demo_agency_code(conn: Connection) -> str | None:
    """The UBND of the most populous commune (the demo agency_staff works there)."""
    top = (
        select(admin_unit.c.code)
        .where(admin_unit.c.level == "commune", admin_unit.c.valid_to.is_(None))
        .order_by(admin_unit.c.population.desc().nulls_last(), admin_unit.c.code)
        .limit(1)
        .scalar_subquery()
    )
    props = feature.c.properties
    row = conn.execute(
        _agency_select().where(
            props["kind"].astext == "ubnd_xa", props["commune_code"].astext == top
        )
    ).first()
    return str(row.code) if row else None


def get_agency(conn: Connection, code: str) -> dict[str, Any] | None:
    """One agency by ma_don_vi."""
    stmt = _agency_select().where(feature.c.properties["ma_don_vi"].astext == code)
    row = conn.execute(stmt).mappings().first()
    return dict(row) if row else None


def find_agency(
    conn: Connection, kind: str, name: str | None, commune_code: str | None, wkb: bytes
) -> dict[str, Any] | None:
    """The agency that takes a step: the commune's own (UBND, police), a named department,
    else the nearest post of that kind to the incident."""
    props = feature.c.properties
    stmt = _agency_select().where(props["kind"].astext == kind)
    if kind in ("ubnd_xa", "cong_an_xa") and commune_code:
        stmt = stmt.where(props["commune_code"].astext == commune_code)
    if name:
        stmt = stmt.where(props["name"].astext == name)
    here = func.ST_PointOnSurface(func.ST_SetSRID(func.ST_GeomFromWKB(wkb), 4326))
    stmt = stmt.order_by(feature.c.geom.op("<->")(here)).limit(1)
    row = conn.execute(stmt).mappings().first()
    return dict(row) if row else None


def commune_at(conn: Connection, wkb: bytes) -> tuple[str, str] | None:
    """The current commune covering a point of the geometry."""
    row = conn.execute(
        text(
            "SELECT code, name FROM admin_unit WHERE level = 'commune' AND valid_to IS NULL "
            "AND ST_Covers(geom, ST_PointOnSurface(ST_SetSRID(ST_GeomFromWKB(:wkb), 4326))) LIMIT 1"
        ),
        {"wkb": wkb},
    ).first()
    return (str(row[0]), str(row[1])) if row else None


# --- SOPs ---------------------------------------------------------------------------------


def list_sops(conn: Connection) -> list[dict[str, Any]]:
    """Every procedure with its current version's steps and its version history."""
    rows = conn.execute(
        select(sop, sop_version.c.steps, sop_version.c.id.label("version_id"))
        .select_from(
            sop.join(
                sop_version,
                and_(
                    sop_version.c.sop_id == sop.c.id, sop_version.c.version == sop.c.current_version
                ),
            )
        )
        .order_by(sop.c.incident_type, sop.c.min_severity, sop.c.slug)
    ).mappings()
    out = [dict(r) for r in rows]
    hist: dict[int, list[dict[str, Any]]] = {}
    for v in conn.execute(
        select(
            sop_version.c.sop_id,
            sop_version.c.version,
            sop_version.c.created_by,
            sop_version.c.created_at,
            sop_version.c.note,
        ).order_by(sop_version.c.sop_id, sop_version.c.version)
    ).mappings():
        hist.setdefault(int(v["sop_id"]), []).append(
            {k: v[k] for k in ("version", "created_by", "created_at", "note")}
        )
    for s in out:
        s["versions"] = hist.get(int(s["id"]), [])
    return out


def save_sop(conn: Connection, spec: dict[str, Any], actor: str) -> dict[str, Any]:
    """Create a procedure or add a new version of it (older versions are kept unchanged)."""
    row = conn.execute(
        select(sop.c.id, sop.c.current_version).where(sop.c.slug == spec["slug"]).with_for_update()
    ).first()
    head = {
        k: spec[k]
        for k in ("incident_type", "min_severity", "max_severity", "title_vi", "title_en")
    }
    if row is None:
        sop_id = int(
            conn.execute(
                insert(sop).values(slug=spec["slug"], current_version=1, **head).returning(sop.c.id)
            ).scalar_one()
        )
        version = 1
    else:
        sop_id, version = int(row[0]), int(row[1]) + 1
        conn.execute(
            update(sop)
            .where(sop.c.id == sop_id)
            .values(current_version=version, updated_at=func.now(), **head)
        )
    vid = conn.execute(
        insert(sop_version)
        .values(
            sop_id=sop_id,
            version=version,
            steps=spec["steps"],
            note=spec.get("note", ""),
            created_by=actor,
        )
        .returning(sop_version.c.id)
    ).scalar_one()
    return {"id": sop_id, "slug": spec["slug"], "version": version, "version_id": int(vid)}


def seed_sops(conn: Connection, actor: str = "iocmap") -> list[str]:
    """Install the shipped Vietnamese SOPs that are missing (never overwrites an edited one).

    tests/incidents checks the file against analytics.incidents.SopSpec.
    """
    raw = resources.files("layers.incidents").joinpath("sops.json").read_text("utf-8")
    have = set(conn.execute(select(sop.c.slug)).scalars())
    added = []
    for doc in json.loads(raw):
        if doc["slug"] in have:
            continue
        save_sop(conn, doc, actor)
        added.append(str(doc["slug"]))
    return added


def get_sop_version(conn: Connection, version_id: int) -> dict[str, Any]:
    """One stored SOP version with its procedure's slug and titles."""
    row = (
        conn.execute(
            select(
                sop_version.c.id,
                sop_version.c.version,
                sop_version.c.steps,
                sop.c.slug,
                sop.c.title_vi,
                sop.c.title_en,
            )
            .select_from(sop_version.join(sop))
            .where(sop_version.c.id == version_id)
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFoundError(
            f"SOP version {version_id} does not exist",
            i18n="err.incidents_store.sop_version_does_not_exist",
            version_id=version_id,
        )
    return dict(row)


# --- incidents ----------------------------------------------------------------------------


def _incident_cols() -> list[Any]:
    return [
        *[c for c in incident.c if c.name != "geom"],
        func.ST_AsGeoJSON(incident.c.geom, 6).label("geometry"),
        func.ST_X(func.ST_PointOnSurface(incident.c.geom)).label("lng"),
        func.ST_Y(func.ST_PointOnSurface(incident.c.geom)).label("lat"),
    ]


def _row(r: Any) -> dict[str, Any]:
    d = {str(k): v for k, v in r.items()}
    if "geometry" in d:
        d["geometry"] = json.loads(d["geometry"]) if d["geometry"] else None
    return d


def _scoped(stmt: Any, scope: Scope) -> Any:
    if scope.communes is not None:
        stmt = stmt.where(incident.c.commune_code.in_(list(scope.communes)))
    if scope.agencies is not None:
        mine = (
            select(incident_task.c.id)
            .where(
                incident_task.c.incident_id == incident.c.id,
                incident_task.c.agency_code.in_(list(scope.agencies)),
            )
            .exists()
        )
        stmt = stmt.where(mine)
    return stmt


def create_incident(conn: Connection, values: dict[str, Any], wkb: bytes) -> int:
    """Insert an incident (values are column values; geometry as WKB); returns its id."""
    return int(
        conn.execute(
            insert(incident)
            .values(**values, geom=func.ST_SetSRID(func.ST_GeomFromWKB(wkb), 4326))
            .returning(incident.c.id)
        ).scalar_one()
    )


def get_incident(
    conn: Connection, incident_id: int, scope: Scope = EVERYTHING, lock: bool = False
) -> dict[str, Any]:
    """One incident visible in the scope, or NotFoundError."""
    stmt = _scoped(select(*_incident_cols()).where(incident.c.id == incident_id), scope)
    if lock:
        stmt = stmt.with_for_update(of=incident)
    row = conn.execute(stmt).mappings().first()
    if row is None:
        raise NotFoundError(
            f"incident {incident_id} does not exist",
            incident_id=incident_id,
            i18n="err.incidents_store.incident_does_not_exist",
        )
    return _row(row)


def list_incidents(
    conn: Connection,
    *,
    status: Sequence[str] = (),
    types: Sequence[str] = (),
    bbox: tuple[float, float, float, float] | None = None,
    scope: Scope = EVERYTHING,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """Incidents, newest first, filtered by status, type, bbox and the caller's scope."""
    stmt = _scoped(select(*_incident_cols()), scope)
    if status:
        stmt = stmt.where(incident.c.status.in_(list(status)))
    if types:
        stmt = stmt.where(incident.c.type.in_(list(types)))
    if bbox is not None:
        stmt = stmt.where(func.ST_Intersects(incident.c.geom, func.ST_MakeEnvelope(*bbox, 4326)))
    stmt = stmt.order_by(incident.c.opened_at.desc(), incident.c.id.desc()).limit(limit)
    return [_row(r) for r in conn.execute(stmt).mappings()]


def update_incident(
    conn: Connection, incident_id: int, values: dict[str, Any], wkb: bytes | None = None
) -> None:
    """Set columns of an incident (and its geometry when given)."""
    if wkb is not None:
        values = {**values, "geom": func.ST_SetSRID(func.ST_GeomFromWKB(wkb), 4326)}
    conn.execute(update(incident).where(incident.c.id == incident_id).values(**values))


def log(
    conn: Connection,
    incident_id: int,
    at: datetime,
    actor: str,
    action: str,
    detail: dict[str, Any] | None = None,
    from_status: str | None = None,
    to_status: str | None = None,
) -> None:
    """Append one entry to the incident's log and NOTIFY listeners."""
    conn.execute(
        insert(incident_log).values(
            incident_id=incident_id,
            at=at,
            actor=actor,
            action=action,
            from_status=from_status,
            to_status=to_status,
            detail=detail or {},
        )
    )
    notify(conn, action, incident_id)


def get_log(conn: Connection, incident_id: int) -> list[dict[str, Any]]:
    """The incident's log, oldest first."""
    stmt = (
        select(incident_log)
        .where(incident_log.c.incident_id == incident_id)
        .order_by(incident_log.c.at, incident_log.c.id)
    )
    return [dict(r) for r in conn.execute(stmt).mappings()]


def notify(conn: Connection, kind: str, incident_id: int) -> None:
    """Small NOTIFY on iocmap_incidents: '<kind>:<id>' (the data stays in the tables)."""
    conn.execute(
        text("SELECT pg_notify(:ch, :payload)"),
        {"ch": CHANNEL, "payload": f"{kind}:{incident_id}"},
    )


async def listen(conninfo: str) -> AsyncIterator[tuple[str, int]]:
    """Yield ("listening", 0) once LISTEN is in place, then (kind, incident id) per NOTIFY."""
    from psycopg import sql

    from layers.db import connect_async
    from layers.sql import ident

    async with await connect_async(conninfo) as aconn:
        await aconn.execute(sql.SQL("LISTEN {}").format(ident(CHANNEL)))
        yield "listening", 0
        async for note in aconn.notifies():
            kind, _, raw = note.payload.partition(":")
            if raw.isdigit():
                yield kind, int(raw)


# --- linked sources -----------------------------------------------------------------------

_SOURCE_SQL = {
    "alert": """
        SELECT a.id::text AS ref, a.title AS title, r.slug AS label, a.first_seen_at AS at,
               ST_AsBinary(a.geom) AS wkb, a.severity AS severity
        FROM alert a JOIN alert_rule r ON r.id = a.rule_id WHERE a.id::text = :ref""",
    # The workflow's own report first; else the report as the map shows it in the
    # field_reports layer (the demo's history of reports lives only there).
    "report": """
        SELECT ref, title, label, at, wkb, severity FROM (
            SELECT 0 AS pri, code AS ref, description AS title, category AS label,
                   received_at AS at, ST_AsBinary(geom) AS wkb, NULL AS severity
            FROM field_report WHERE code = :ref
            UNION ALL
            SELECT 1, f.source_key, coalesce(f.properties->>'title', f.source_key),
                   f.properties->>'category', f.observed_at, ST_AsBinary(f.geom), NULL
            FROM feature f JOIN layer l ON l.id = f.layer_id
            WHERE l.slug = 'field_reports' AND f.source_key = :ref
        ) s ORDER BY pri LIMIT 1""",
    "event": """
        SELECT id::text AS ref, event_type || ' — ' || camera_id AS title, event_type AS label,
               observed_at AS at, ST_AsBinary(geom) AS wkb, NULL AS severity
        FROM detection_event WHERE id::text = :ref""",
    "reading": """
        SELECT l.slug || ':' || f.id AS ref, l.title_vi AS title, l.slug AS label,
               f.observed_at AS at, ST_AsBinary(f.geom) AS wkb, NULL AS severity
        FROM feature f JOIN layer l ON l.id = f.layer_id
        WHERE l.slug = split_part(:ref, ':', 1) AND f.id::text = split_part(:ref, ':', 2)""",
}


def get_source(conn: Connection, kind: str, ref: str) -> dict[str, Any]:
    """An alert, report, detection event or sensor reading (layer:feature id) by reference."""
    if kind not in _SOURCE_SQL:
        raise InvalidInputError(
            f"unknown source kind '{kind}'; kinds: {', '.join(_SOURCE_SQL)}",
            i18n="err.incidents_store.unknown_source_kind_kinds",
            kind=kind,
            items=", ".join(_SOURCE_SQL),
        )
    row = conn.execute(text(_SOURCE_SQL[kind]), {"ref": ref}).mappings().first()
    if row is None:
        raise NotFoundError(
            f"{kind} '{ref}' does not exist",
            kind=kind,
            ref=ref,
            i18n="err.incidents_store.does_not_exist",
        )
    d = dict(row)
    if d["wkb"] is not None:
        d["wkb"] = bytes(d["wkb"])
    return d


def add_link(
    conn: Connection, incident_id: int, kind: str, src: dict[str, Any], actor: str, at: datetime
) -> bool:
    """Link a source to an incident; False when it was already linked."""
    res = conn.execute(
        text(
            "INSERT INTO incident_link (incident_id, kind, ref, title, geom, at, linked_by, linked_at)"
            " VALUES (:iid, :kind, :ref, :title, ST_SetSRID(ST_GeomFromWKB(:wkb), 4326), :sat,"
            " :actor, :at) ON CONFLICT (incident_id, kind, ref) DO NOTHING RETURNING id"
        ),
        {
            "iid": incident_id,
            "kind": kind,
            "ref": src["ref"],
            "title": (src.get("title") or "")[:300],
            "wkb": src.get("wkb"),
            "sat": src.get("at"),
            "actor": actor,
            "at": at,
        },
    ).first()
    return res is not None


def list_links(conn: Connection, incident_id: int) -> list[dict[str, Any]]:
    """The sources linked to an incident, in the order they were linked."""
    stmt = (
        select(
            *[c for c in incident_link.c if c.name != "geom"],
            func.ST_AsGeoJSON(incident_link.c.geom, 6).label("geometry"),
        )
        .where(incident_link.c.incident_id == incident_id)
        .order_by(incident_link.c.linked_at, incident_link.c.id)
    )
    return [_row(r) for r in conn.execute(stmt).mappings()]


_CANDIDATES_SQL = """
WITH i AS (SELECT geom, opened_at FROM incident WHERE id = :iid),
linked AS (SELECT kind, ref FROM incident_link WHERE incident_id = :iid)
SELECT 'alert' AS kind, a.id::text AS ref, a.title, r.slug AS label, a.first_seen_at AS at,
       ST_Distance(a.geom::geography, i.geom::geography) AS distance_m
FROM alert a JOIN alert_rule r ON r.id = a.rule_id, i
WHERE a.status <> 'resolved' AND a.geom IS NOT NULL
  AND ST_DWithin(a.geom::geography, i.geom::geography, :dist)
  AND a.last_seen_at >= i.opened_at - :window
  AND (r.slug <> :overdue_rule)
  AND NOT EXISTS (SELECT 1 FROM linked WHERE kind = 'alert' AND ref = a.id::text)
UNION ALL
SELECT 'report', fr.code, fr.description, fr.category, fr.received_at,
       ST_Distance(fr.geom::geography, i.geom::geography)
FROM field_report fr, i
WHERE fr.status IN ('received', 'assigned', 'in_progress')
  AND ST_DWithin(fr.geom::geography, i.geom::geography, :dist)
  AND fr.received_at >= i.opened_at - :window
  AND NOT EXISTS (SELECT 1 FROM linked WHERE kind = 'report' AND ref = fr.code)
UNION ALL
SELECT 'event', e.id::text, e.event_type || ' — ' || e.camera_id, e.event_type, e.observed_at,
       ST_Distance(e.geom::geography, i.geom::geography)
FROM detection_event e, i
WHERE e.geom IS NOT NULL AND e.observed_at >= i.opened_at - :window
  AND ST_DWithin(e.geom::geography, i.geom::geography, :dist)
  AND NOT EXISTS (SELECT 1 FROM linked WHERE kind = 'event' AND ref = e.id::text)
ORDER BY distance_m, at DESC
LIMIT :limit
"""


def link_candidates(
    conn: Connection, incident_id: int, distance_m: float, window: timedelta, limit: int = 100
) -> list[dict[str, Any]]:
    """Unlinked alerts, open reports and events within the distance and time window."""
    rows = conn.execute(
        text(_CANDIDATES_SQL),
        {
            "iid": incident_id,
            "dist": distance_m,
            "window": window,
            "overdue_rule": OVERDUE_RULE,
            "limit": limit,
        },
    ).mappings()
    return [dict(r) for r in rows]


# --- tasks --------------------------------------------------------------------------------


def create_task(conn: Connection, values: dict[str, Any]) -> int:
    """Insert one task; returns its id."""
    return int(
        conn.execute(
            insert(incident_task).values(**values).returning(incident_task.c.id)
        ).scalar_one()
    )


def _task_cols() -> list[Any]:
    notes = (
        select(func.count())
        .where(incident_task_note.c.task_id == incident_task.c.id, incident_task_note.c.note != "")
        .scalar_subquery()
        .label("notes")
    )
    photos = (
        select(func.count())
        .where(
            incident_task_note.c.task_id == incident_task.c.id,
            incident_task_note.c.photo.is_not(None),
        )
        .scalar_subquery()
        .label("photos")
    )
    return [
        *incident_task.c,
        incident.c.title.label("incident_title"),
        incident.c.type.label("incident_type"),
        incident.c.severity.label("incident_severity"),
        incident.c.status.label("incident_status"),
        incident.c.commune_code,
        incident.c.commander,
        notes,
        photos,
    ]


def _task_scope(stmt: Any, scope: Scope) -> Any:
    if scope.agencies is not None:
        stmt = stmt.where(incident_task.c.agency_code.in_(list(scope.agencies)))
    if scope.communes is not None:
        stmt = stmt.where(incident.c.commune_code.in_(list(scope.communes)))
    return stmt


def list_tasks(
    conn: Connection,
    *,
    incident_id: int | None = None,
    scope: Scope = EVERYTHING,
    open_only: bool = False,
    limit: int = 500,
) -> list[dict[str, Any]]:
    """Tasks in the caller's scope: of one incident, or all (most urgent first)."""
    stmt = _task_scope(select(*_task_cols()).select_from(incident_task.join(incident)), scope)
    if incident_id is not None:
        stmt = stmt.where(incident_task.c.incident_id == incident_id).order_by(
            incident_task.c.created_at, incident_task.c.step_no.nulls_last(), incident_task.c.id
        )
    else:
        stmt = stmt.order_by(incident_task.c.due_at, incident_task.c.id)
    if open_only:
        stmt = stmt.where(incident_task.c.status.in_(("open", "acknowledged")))
    return [dict(r) for r in conn.execute(stmt.limit(limit)).mappings()]


def get_task(
    conn: Connection, task_id: int, scope: Scope = EVERYTHING, lock: bool = False
) -> dict[str, Any]:
    """One task in the caller's scope, or NotFoundError."""
    stmt = _task_scope(
        select(*_task_cols())
        .select_from(incident_task.join(incident))
        .where(incident_task.c.id == task_id),
        scope,
    )
    if lock:
        stmt = stmt.with_for_update(of=incident_task)
    row = conn.execute(stmt).mappings().first()
    if row is None:
        raise NotFoundError(
            f"task {task_id} does not exist",
            task_id=task_id,
            i18n="err.incidents_store.task_does_not_exist",
        )
    return dict(row)


def update_task(conn: Connection, task_id: int, values: dict[str, Any]) -> None:
    """Set columns of a task."""
    conn.execute(update(incident_task).where(incident_task.c.id == task_id).values(**values))


def add_note(
    conn: Connection,
    task_id: int,
    at: datetime,
    actor: str,
    note: str,
    photo: bytes | None,
    photo_type: str | None,
) -> int:
    """Add a note and/or photo to a task; returns the note id."""
    return int(
        conn.execute(
            insert(incident_task_note)
            .values(
                task_id=task_id, at=at, actor=actor, note=note, photo=photo, photo_type=photo_type
            )
            .returning(incident_task_note.c.id)
        ).scalar_one()
    )


def list_notes(conn: Connection, task_ids: Sequence[int]) -> list[dict[str, Any]]:
    """Notes of the tasks (without photo bytes; has_photo says whether one is attached)."""
    stmt = (
        select(
            incident_task_note.c.id,
            incident_task_note.c.task_id,
            incident_task_note.c.at,
            incident_task_note.c.actor,
            incident_task_note.c.note,
            incident_task_note.c.photo.is_not(None).label("has_photo"),
        )
        .where(incident_task_note.c.task_id.in_(list(task_ids)))
        .order_by(incident_task_note.c.at, incident_task_note.c.id)
    )
    return [dict(r) for r in conn.execute(stmt).mappings()]


def get_photo(conn: Connection, task_id: int, note_id: int) -> tuple[bytes, str]:
    """The photo bytes and media type of a task note."""
    row = conn.execute(
        select(incident_task_note.c.photo, incident_task_note.c.photo_type).where(
            incident_task_note.c.id == note_id,
            incident_task_note.c.task_id == task_id,
            incident_task_note.c.photo.is_not(None),
        )
    ).first()
    if row is None:
        raise NotFoundError(
            f"task {task_id} has no photo {note_id}",
            i18n="err.incidents_store.task_has_no_photo",
            task_id=task_id,
            note_id=note_id,
        )
    return bytes(row[0]), str(row[1])


def overdue_tasks(conn: Connection, now: datetime) -> list[dict[str, Any]]:
    """Open tasks past due and not escalated yet, locked (skipping ones another run holds)."""
    stmt = (
        select(*_task_cols())
        .select_from(incident_task.join(incident))
        .where(
            incident_task.c.status.in_(("open", "acknowledged")),
            incident_task.c.due_at < now,
            incident_task.c.escalated_at.is_(None),
            incident.c.status.in_(("confirmed", "responding", "contained")),
        )
        .order_by(incident_task.c.due_at)
        .with_for_update(of=incident_task, skip_locked=True)
    )
    return [dict(r) for r in conn.execute(stmt).mappings()]


def overdue_rule_id(conn: Connection) -> int:
    """The (disabled) alert rule that escalated tasks' alerts belong to."""
    from layers.analytics import alerts

    name = "Nhiệm vụ xử lý sự cố quá hạn"
    spec: dict[str, Any] = {
        "slug": OVERDUE_RULE,
        "name": name,
        "severity": "critical",
        "enabled": False,
        "kind": "duration",
        "layer": "agencies",
        "threshold": 0,
        "since_property": "due_at",
    }
    return alerts.save_rule(conn, OVERDUE_RULE, name, "critical", False, spec)


# --- the board, the surroundings and KPI inputs -------------------------------------------


def board(conn: Connection, scope: Scope = EVERYTHING) -> list[dict[str, Any]]:
    """Open incidents with task counts (open, overdue), for the leaders' board."""
    now = func.now()
    open_tasks = (
        select(func.count())
        .where(
            incident_task.c.incident_id == incident.c.id,
            incident_task.c.status.in_(("open", "acknowledged")),
        )
        .scalar_subquery()
    )
    late = (
        select(func.count())
        .where(
            incident_task.c.incident_id == incident.c.id,
            incident_task.c.status.in_(("open", "acknowledged")),
            incident_task.c.due_at < now,
        )
        .scalar_subquery()
    )
    stmt = _scoped(
        select(
            *_incident_cols(),
            open_tasks.label("open_tasks"),
            late.label("overdue_tasks"),
        ).where(incident.c.status.in_(("new", "confirmed", "responding", "contained"))),
        scope,
    ).order_by(incident.c.severity.desc(), incident.c.opened_at)
    return [_row(r) for r in conn.execute(stmt).mappings()]


_NEAREST_SQL = """
SELECT f.id, f.properties->>'name' AS name, f.properties AS properties,
       ST_X(f.geom) AS lng, ST_Y(f.geom) AS lat,
       ST_Distance(f.geom::geography, c.g::geography) AS distance_m
FROM feature f JOIN layer l ON l.id = f.layer_id AND l.slug = :slug,
     (SELECT ST_PointOnSurface(geom) AS g FROM incident WHERE id = :iid) c
WHERE (CAST(:kinds AS text[]) IS NULL OR f.properties->>'kind' = ANY(CAST(:kinds AS text[])))
ORDER BY f.geom <-> c.g
LIMIT :n
"""

_WITHIN_SQL = """
SELECT f.id, f.properties->>'name' AS name, f.properties AS properties,
       ST_X(ST_PointOnSurface(f.geom)) AS lng, ST_Y(ST_PointOnSurface(f.geom)) AS lat,
       ST_Distance(f.geom::geography, i.geom::geography) AS distance_m
FROM feature f JOIN layer l ON l.id = f.layer_id AND l.slug = :slug,
     (SELECT geom, radius_m FROM incident WHERE id = :iid) i
WHERE ST_DWithin(f.geom::geography, i.geom::geography, i.radius_m)
ORDER BY distance_m
LIMIT :n
"""

# Population inside the radius: each commune's population spread evenly over its area.
_POPULATION_SQL = """
WITH i AS (SELECT ST_Buffer(geom::geography, radius_m)::geometry AS g FROM incident WHERE id = :iid)
SELECT COALESCE(SUM(a.population * ST_Area(ST_Intersection(a.geom, i.g)::geography)
                    / NULLIF(ST_Area(a.geom::geography), 0)), 0) AS population,
       COALESCE(array_agg(a.name ORDER BY a.name), '{}') AS communes
FROM admin_unit a, i
WHERE a.level = 'commune' AND a.valid_to IS NULL AND ST_Intersects(a.geom, i.g)
"""


def nearest(
    conn: Connection, incident_id: int, slug: str, n: int, kinds: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """The n features of a layer nearest the incident (optionally of these agency kinds)."""
    rows = conn.execute(
        text(_NEAREST_SQL),
        {"slug": slug, "iid": incident_id, "n": n, "kinds": list(kinds) if kinds else None},
    ).mappings()
    return [dict(r) for r in rows]


def within(conn: Connection, incident_id: int, slug: str, n: int) -> list[dict[str, Any]]:
    """Features of a layer within the incident's affected radius, nearest first."""
    rows = conn.execute(text(_WITHIN_SQL), {"slug": slug, "iid": incident_id, "n": n}).mappings()
    return [dict(r) for r in rows]


def population_within(conn: Connection, incident_id: int) -> tuple[float, list[str]]:
    """Estimated residents inside the affected radius, and the communes it touches."""
    row = conn.execute(text(_POPULATION_SQL), {"iid": incident_id}).one()
    return float(row[0] or 0.0), list(row[1] or [])


# The flood extent near the incident (e) and its part inside the radius (w). People under water:
# each commune's population times the flooded share of its area (as the flood exposure counts).
_FLOOD_POPULATION_SQL = """
WITH i AS (SELECT geom, radius_m, ST_Buffer(geom::geography, radius_m)::geometry AS g
           FROM incident WHERE id = :iid),
e AS (SELECT ST_Union(ST_MakeValid(f.geom)) AS g
      FROM feature f JOIN layer l ON l.id = f.layer_id AND l.slug = :slug, i
      WHERE ST_DWithin(f.geom::geography, i.geom::geography, i.radius_m)),
w AS (SELECT ST_Intersection(i.g, e.g) AS g FROM i, e WHERE e.g IS NOT NULL)
SELECT (SELECT ST_Area(w.g::geography) FROM w) AS flooded_m2,
       COALESCE(SUM(a.population * ST_Area(ST_Intersection(a.geom, w.g)::geography)
                    / NULLIF(ST_Area(a.geom::geography), 0)), 0) AS population,
       COALESCE(array_agg(a.name ORDER BY a.name)
                FILTER (WHERE a.code IS NOT NULL), '{}') AS communes
FROM w LEFT JOIN admin_unit a
  ON a.level = 'commune' AND a.valid_to IS NULL AND ST_Intersects(a.geom, w.g)
"""

_FLOOD_WITHIN_SQL = """
WITH i AS (SELECT geom, radius_m, ST_Buffer(geom::geography, radius_m)::geometry AS g
           FROM incident WHERE id = :iid),
e AS (SELECT ST_Union(ST_MakeValid(f.geom)) AS g
      FROM feature f JOIN layer l ON l.id = f.layer_id AND l.slug = :slug, i
      WHERE ST_DWithin(f.geom::geography, i.geom::geography, i.radius_m))
-- inside the radius exactly as `within` counts it (distance), and touching the water
SELECT f.id, f.properties->>'name' AS name, f.properties AS properties,
       ST_X(ST_PointOnSurface(f.geom)) AS lng, ST_Y(ST_PointOnSurface(f.geom)) AS lat,
       ST_Distance(f.geom::geography, i.geom::geography) AS distance_m
FROM feature f JOIN layer l ON l.id = f.layer_id AND l.slug = :within, e, i
WHERE ST_DWithin(f.geom::geography, i.geom::geography, i.radius_m) AND ST_Intersects(f.geom, e.g)
ORDER BY distance_m
LIMIT :n
"""


def flood_extent_info(conn: Connection, slug: str) -> dict[str, Any] | None:
    """The extent layer's newest write (when, what it came from), or None if there is none."""
    row = conn.execute(
        select(layer.c.synthetic, feature.c.properties, feature.c.observed_at)
        .select_from(layer.outerjoin(feature, feature.c.layer_id == layer.c.id))
        .where(layer.c.slug == slug)
        .order_by(feature.c.observed_at.desc().nulls_last())
        .limit(1)
    ).first()
    if row is None:
        return None
    # an extent layer with no feature: the last analysis found no water
    return {
        "layer": slug,
        "synthetic": bool(row.synthetic),
        "written_at": row.observed_at,
        "properties": dict(row.properties or {}),
    }


def population_in_flood(
    conn: Connection, incident_id: int, slug: str
) -> tuple[float, float, list[str]]:
    """Flooded m² inside the radius, the people there, and the communes they live in."""
    row = conn.execute(text(_FLOOD_POPULATION_SQL), {"iid": incident_id, "slug": slug}).one()
    return float(row.flooded_m2 or 0.0), float(row.population or 0.0), list(row.communes or [])


def within_flood(
    conn: Connection, incident_id: int, slug: str, within: str, n: int
) -> list[dict[str, Any]]:
    """Features of a layer inside both the incident's radius and the flood extent, nearest first."""
    rows = conn.execute(
        text(_FLOOD_WITHIN_SQL), {"iid": incident_id, "slug": slug, "within": within, "n": n}
    ).mappings()
    return [dict(r) for r in rows]


def kpi_rows(conn: Connection) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every incident with a commune and every task, as the KPI job reads them."""
    incs = [
        dict(r)
        for r in conn.execute(
            select(
                incident.c.id,
                incident.c.type,
                incident.c.commune_code,
                incident.c.status,
                incident.c.opened_at,
                incident.c.confirmed_at,
                incident.c.closed_at,
            ).where(incident.c.commune_code.is_not(None))
        ).mappings()
    ]
    tasks = [
        dict(r)
        for r in conn.execute(
            select(
                incident_task.c.incident_id,
                incident_task.c.status,
                incident_task.c.acknowledged_at,
                incident_task.c.completed_at,
                incident_task.c.due_at,
            ).where(incident_task.c.incident_id.in_([i["id"] for i in incs]))
        ).mappings()
    ]
    return incs, tasks


def kpi_version(conn: Connection) -> int:
    """A number that moves whenever anything the KPIs read changes (the newest log entry)."""
    return int(conn.execute(select(func.coalesce(func.max(incident_log.c.id), 0))).scalar_one())


def dumps(obj: Any) -> str:
    """JSON text for JSONB parameters."""
    return orjson.dumps(obj).decode()


def commune_shapes_in(
    conn: Connection, extent: tuple[float, float, float, float]
) -> list[tuple[str, bytes]]:
    """(name, WKB) of each current commune clipped to a WGS84 extent (the report's map)."""
    rows = conn.execute(
        text(
            "SELECT name, ST_AsBinary(ST_Intersection(geom, ST_MakeEnvelope(:a, :b, :c, :d, 4326)))"
            " FROM admin_unit WHERE level = 'commune' AND valid_to IS NULL"
            " AND geom && ST_MakeEnvelope(:a, :b, :c, :d, 4326)"
        ),
        {"a": extent[0], "b": extent[1], "c": extent[2], "d": extent[3]},
    ).all()  # fmt: skip
    return [(str(name), bytes(wkb)) for name, wkb in rows]


def flood_extent_in(
    conn: Connection, slug: str, extent: tuple[float, float, float, float]
) -> list[bytes]:
    """WKB of the flood extent layer's water clipped to a WGS84 extent (the report's map)."""
    rows = conn.execute(
        text(
            "SELECT ST_AsBinary(ST_Intersection(ST_MakeValid(f.geom),"
            " ST_MakeEnvelope(:a, :b, :c, :d, 4326)))"
            " FROM feature f JOIN layer l ON l.id = f.layer_id AND l.slug = :slug"
            " WHERE f.geom && ST_MakeEnvelope(:a, :b, :c, :d, 4326)"
        ),
        {"slug": slug, "a": extent[0], "b": extent[1], "c": extent[2], "d": extent[3]},
    ).all()  # fmt: skip
    return [bytes(r[0]) for r in rows if r[0] is not None]
