"""Citizen field reports (phản ánh hiện trường): submission, routing, workflow, SLA, statistics.

The `field_report` table is the system of record for new reports; each one is mirrored as a
feature of the `field_reports` layer (anonymised: no description or contact, location on a
~100 m grid) so tiles, H3 and KPI views see it next to the historical demo reports.
Access scoping (commune staff to their communes, citizens to their own reports) is applied
inside every query here, never only in the UI.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import shapely
from geoalchemy2.shape import from_shape
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    and_,
    false,
    func,
    literal,
    or_,
    select,
    text,
    true,
    update,
)

from layers.auth.users import User
from layers.errors import ConflictError, InvalidInputError, NotFoundError
from layers.features.registry import get_layer
from layers.models.analytics import alert
from layers.models.core import admin_unit, feature
from layers.models.reports import (
    CATEGORY_VI,
    OPEN_STATUSES,
    STATUS_VI,
    field_report,
    field_report_event,
    field_report_link,
    field_report_photo,
)
from layers.reports import media as report_media
from layers.sql import any_of

Category = Literal["traffic", "environment", "urban_order", "infrastructure", "security", "other"]
Status = Literal[
    "received", "accepted", "info_requested", "assigned", "in_progress", "resolved", "rejected"
]
Rating = Literal["hai_long", "chap_nhan", "khong_hai_long"]
Sort = Literal["received", "due"]

DUPLICATE_RADIUS_M = 50.0
DUPLICATE_WINDOW = timedelta(hours=48)
# Roles that read every report; commune_staff read their communes, citizens their own.
ALL_REPORT_READERS = frozenset({"admin", "leader", "operator", "planner"})
CONTACT_READERS = frozenset({"admin", "leader", "operator", "commune_staff"})
LAYER_SLUG = "field_reports"
OVERDUE_RULE = "report_overdue"
ANON_GRID_DEG = 0.001


class Contact(BaseModel):
    """Optional contact details of the citizen (sensitive)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=120)
    phone: str | None = Field(default=None, pattern=r"^[0-9+() .-]{6,20}$")
    email: str | None = Field(default=None, pattern=r"^[^@\s]{1,64}@[^@\s]{1,255}$")


class Submission(BaseModel):
    """A citizen's report as submitted (photos travel separately)."""

    model_config = ConfigDict(extra="forbid")

    category: Category
    description: str = Field(min_length=3, max_length=4000)
    lon: float | None = Field(default=None, ge=-180, le=180)
    lat: float | None = Field(default=None, ge=-90, le=90)
    contact: Contact | None = None


# --- access scope -------------------------------------------------------------------------


def scope(user: User | None) -> ColumnElement[bool]:
    """SQL condition: the reports this user may read (commune staff and citizens are narrowed)."""
    if user is None:
        return false()
    if user.role in ALL_REPORT_READERS:
        return true()
    if user.role == "commune_staff":
        return field_report.c.commune_code.in_(list(user.admin_units))
    if user.role == "citizen":
        linked = select(field_report_link.c.report_id).where(
            field_report_link.c.citizen_user_id == user.id
        )
        return or_(field_report.c.citizen_user_id == user.id, field_report.c.id.in_(linked))
    return false()


def _work_scope(user: User) -> ColumnElement[bool]:
    """SQL condition: the reports this user may move through the workflow."""
    if user.role in ("admin", "operator"):
        return true()
    if user.role == "commune_staff":
        return field_report.c.commune_code.in_(list(user.admin_units))
    if user.role == "leader":
        return true()
    if user.role == "citizen":
        # a citizen answers a request for information on their own report, nothing more
        return field_report.c.citizen_user_id == user.id
    return false()


def _actor(user: User | None) -> str:
    return user.username if user else "anonymous"


# --- routing, duplicates -------------------------------------------------------------------


def locate_commune(conn: Connection, lon: float, lat: float) -> tuple[str, str]:
    """(code, name) of the current commune containing the point; InvalidInputError outside."""
    pt = func.ST_SetSRID(func.ST_MakePoint(lon, lat), 4326)
    row = conn.execute(
        select(admin_unit.c.code, admin_unit.c.name)
        .where(
            admin_unit.c.level == "commune",
            admin_unit.c.valid_to.is_(None),
            func.ST_Covers(admin_unit.c.geom, pt),
        )
        .order_by(admin_unit.c.code)
        .limit(1)
    ).first()
    if row is None:
        raise InvalidInputError(
            f"the point ({lon:.5f}, {lat:.5f}) is not inside any commune of the province",
            param="location",
            i18n="err.reports_store.point_not_inside_any_commune",
            lon=format(lon, ".5f"),
            lat=format(lat, ".5f"),
        )
    return str(row[0]), str(row[1])


_FIND_DUPLICATE = text(
    """
    SELECT id, code, d FROM (
        SELECT id, code,
               ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography) AS d
        FROM field_report
        WHERE category = :category AND status <> 'rejected'
          AND received_at >= :since AND received_at <= :now
          AND geom && ST_Expand(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), :pad)
    ) c
    WHERE d <= :radius
    ORDER BY d, id
    LIMIT 1
    """
)


def find_duplicate(
    conn: Connection, category: str, lon: float, lat: float, now: datetime
) -> tuple[int, str, float] | None:
    """(id, code, distance m) of a report of the same category within 50 m and 48 h, if any."""
    row = conn.execute(
        _FIND_DUPLICATE,
        {
            "category": category,
            "lon": lon,
            "lat": lat,
            "since": now - DUPLICATE_WINDOW,
            "now": now,
            "radius": DUPLICATE_RADIUS_M,
            # Degrees that surely cover 50 m at this latitude (the geography test is exact).
            "pad": 0.002,
        },
    ).first()
    return (int(row[0]), str(row[1]), float(row[2])) if row else None


# --- submission ---------------------------------------------------------------------------


def _event(
    conn: Connection,
    report_id: int,
    at: datetime,
    actor: str,
    action: str,
    from_status: str | None,
    to_status: str | None,
    note: str = "",
) -> None:
    conn.execute(
        field_report_event.insert().values(
            report_id=report_id,
            at=at,
            actor=actor,
            action=action,
            from_status=from_status,
            to_status=to_status,
            note=note,
        )
    )


def _store_photos(
    conn: Connection,
    media_root: Path,
    report_id: int,
    code: str,
    kind: str,
    photos: list[report_media.Photo],
    written: list[str],
) -> None:
    for photo in photos:
        rel = report_media.store_photo(media_root, code, photo)
        written.append(rel)
        conn.execute(
            field_report_photo.insert().values(
                report_id=report_id,
                kind=kind,
                path=rel,
                media_type=photo.media_type,
                width=photo.width,
                height=photo.height,
                bytes=len(photo.data),
                sha256=photo.sha256,
            )
        )


def submit(
    conn: Connection,
    sub: Submission,
    photos: list[report_media.Photo],
    user: User | None,
    now: datetime,
    media_root: Path,
    *,
    department: str,
    due_at: datetime,
) -> dict[str, Any]:
    """Record a report (or link it to an open duplicate); returns the citizen's view of it.

    The department and due time come from the workflow rules (analytics.report_workflow).

    The location is the given point, else the first photo's EXIF GPS. Photos are written only
    after every check passed; if anything later fails they are removed again.
    """
    if (sub.lon is None) != (sub.lat is None):
        raise InvalidInputError(
            "give both lon and lat, or neither",
            param="location",
            i18n="err.reports_store.give_both_lon_and_lat",
        )
    if sub.lon is not None and sub.lat is not None:
        lon, lat, source = sub.lon, sub.lat, "point"
    elif photos and photos[0].gps is not None:
        (lon, lat), source = photos[0].gps, "exif"
    else:
        raise InvalidInputError(
            "no location: send lon/lat, or a first photo with GPS in its EXIF",
            param="location",
            i18n="err.reports_store.no_location_send_lon_lat",
        )
    commune_code, commune_name = locate_commune(conn, lon, lat)
    citizen_id = user.id if user is not None and user.role == "citizen" else None
    contact = sub.contact.model_dump(exclude_none=True) if sub.contact else None
    point = from_shape(shapely.Point(lon, lat), srid=4326)
    # Serialise submissions of one category so two simultaneous duplicates cannot both be new.
    conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"field_report:{sub.category}"}
    )
    written: list[str] = []
    try:
        dup = find_duplicate(conn, sub.category, lon, lat, now)
        if dup is not None:
            report_id, code, distance = dup
            conn.execute(
                field_report_link.insert().values(
                    report_id=report_id,
                    received_at=now,
                    citizen_user_id=citizen_id,
                    description=sub.description,
                    geom=point,
                    contact=contact,
                    distance_m=distance,
                )
            )
            conn.execute(
                update(field_report)
                .where(field_report.c.id == report_id)
                .values(duplicate_count=field_report.c.duplicate_count + 1, updated_at=now)
            )
            _event(
                conn,
                report_id,
                now,
                _actor(user),
                "duplicate_linked",
                None,
                None,
                f"{distance:.1f} m",
            )
            _store_photos(conn, media_root, report_id, code, "duplicate", photos, written)
            out = _citizen_view(conn, report_id)
            out["duplicate_of"] = code
            return out
        report_id = int(
            conn.execute(
                text("SELECT nextval(pg_get_serial_sequence('field_report', 'id'))")
            ).scalar_one()
        )
        code = f"PA-{now:%Y}-{report_id:06d}"
        conn.execute(
            field_report.insert().values(
                id=report_id,
                code=code,
                category=sub.category,
                department=department,
                description=sub.description,
                geom=point,
                location_source=source,
                commune_code=commune_code,
                commune_name=commune_name,
                status="received",
                citizen_user_id=citizen_id,
                contact=contact,
                received_at=now,
                due_at=due_at,
                updated_at=now,
            )
        )
        _event(conn, report_id, now, _actor(user), "submit", None, "received")
        _store_photos(conn, media_root, report_id, code, "submission", photos, written)
        sync_features(conn, [report_id])
        out = _citizen_view(conn, report_id)
        out["duplicate_of"] = None
        return out
    except BaseException:
        report_media.remove_files(media_root, written)
        raise


# --- reads --------------------------------------------------------------------------------


def _cols() -> list[Any]:
    return [
        field_report.c.id,
        field_report.c.code,
        field_report.c.category,
        field_report.c.department,
        field_report.c.description,
        func.ST_X(field_report.c.geom).label("lon"),
        func.ST_Y(field_report.c.geom).label("lat"),
        field_report.c.location_source,
        field_report.c.commune_code,
        field_report.c.commune_name,
        field_report.c.status,
        field_report.c.contact,
        field_report.c.citizen_user_id,
        field_report.c.received_at,
        field_report.c.due_at,
        field_report.c.assigned_to,
        field_report.c.resolved_at,
        field_report.c.resolution_note,
        field_report.c.rating,
        field_report.c.rated_at,
        field_report.c.duplicate_count,
        field_report.c.updated_at,
    ]


def _iso(v: datetime | None) -> str | None:
    return v.isoformat() if v is not None else None


def _shape(row: Any, user: User | None, now: datetime | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "code": row["code"],
        "category": row["category"],
        "category_vi": CATEGORY_VI.get(row["category"], row["category"]),
        "department": row["department"],
        "description": row["description"],
        "lon": row["lon"],
        "lat": row["lat"],
        "location_source": row["location_source"],
        "commune_code": row["commune_code"],
        "commune_name": row["commune_name"],
        "status": row["status"],
        "status_vi": STATUS_VI[row["status"]],
        "received_at": _iso(row["received_at"]),
        "due_at": _iso(row["due_at"]),
        "assigned_to": row["assigned_to"],
        "resolved_at": _iso(row["resolved_at"]),
        "resolution_note": row["resolution_note"],
        "rating": row["rating"],
        "duplicate_count": row["duplicate_count"],
    }
    if now is not None:
        out["overdue"] = row["status"] in OPEN_STATUSES and row["due_at"] < now
    if row["resolved_at"] is not None:
        out["on_time"] = row["resolved_at"] <= row["due_at"]
    if user is not None and user.role in CONTACT_READERS:
        out["contact"] = row["contact"]
    return out


def _citizen_view(conn: Connection, report_id: int) -> dict[str, Any]:
    row = conn.execute(select(*_cols()).where(field_report.c.id == report_id)).mappings().one()
    out = _shape(row, None)
    out.pop("department", None)
    return out


def get_report(
    conn: Connection, code: str, user: User | None, now: datetime | None = None
) -> dict[str, Any]:
    """One report with its history and photos, if the user may read it (else NotFoundError)."""
    row = (
        conn.execute(select(*_cols()).where(field_report.c.code == code, scope(user)))
        .mappings()
        .first()
    )
    if row is None:
        raise NotFoundError(
            f"report '{code}' does not exist",
            report=code,
            i18n="err.reports_store.report_does_not_exist",
        )
    out = _shape(row, user, now)
    out["history"] = [
        {
            "at": _iso(e["at"]),
            "actor": e["actor"] if user is not None and user.role != "citizen" else None,
            "action": e["action"],
            "from_status": e["from_status"],
            "to_status": e["to_status"],
            "note": e["note"],
        }
        for e in conn.execute(
            select(field_report_event)
            .where(field_report_event.c.report_id == row["id"])
            .order_by(field_report_event.c.at, field_report_event.c.id)
        ).mappings()
    ]
    out["photos"] = [
        {
            "id": int(p["id"]),
            "kind": p["kind"],
            "media_type": p["media_type"],
            "width": p["width"],
            "height": p["height"],
            "href": f"/api/reports/{code}/photos/{int(p['id'])}",
        }
        for p in conn.execute(
            select(field_report_photo)
            .where(field_report_photo.c.report_id == row["id"])
            .order_by(field_report_photo.c.id)
        ).mappings()
    ]
    return out


def list_reports(
    conn: Connection,
    user: User | None,
    *,
    now: datetime | None = None,
    status: str | None = None,
    category: str | None = None,
    commune_code: str | None = None,
    overdue: bool | None = None,
    department: str | None = None,
    sort: Sort = "received",
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Reports this user may read, newest first (or soonest due), with optional filters."""
    order = (
        (field_report.c.due_at.asc(), field_report.c.id.asc())
        if sort == "due"
        else (field_report.c.received_at.desc(), field_report.c.id.desc())
    )
    stmt = select(*_cols()).where(scope(user)).order_by(*order).limit(limit).offset(offset)
    if department:
        stmt = stmt.where(field_report.c.department == department)
    if status:
        stmt = stmt.where(field_report.c.status == status)
    if category:
        stmt = stmt.where(field_report.c.category == category)
    if commune_code:
        stmt = stmt.where(field_report.c.commune_code == commune_code)
    if overdue is not None and now is not None:
        late = and_(field_report.c.status.in_(OPEN_STATUSES), field_report.c.due_at < now)
        stmt = stmt.where(late if overdue else ~late)
    return [_shape(r, user, now) for r in conn.execute(stmt).mappings()]


def own_reports(conn: Connection, user: User, now: datetime | None = None) -> list[dict[str, Any]]:
    """Reports this user submitted (or sent a linked duplicate of), newest first."""
    linked = select(field_report_link.c.report_id).where(
        field_report_link.c.citizen_user_id == user.id
    )
    stmt = (
        select(*_cols())
        .where(or_(field_report.c.citizen_user_id == user.id, field_report.c.id.in_(linked)))
        .order_by(field_report.c.received_at.desc(), field_report.c.id.desc())
        .limit(1000)
    )
    return [_shape(r, None, now) for r in conn.execute(stmt).mappings()]


def photo_file(
    conn: Connection, code: str, photo_id: int, user: User | None, media_root: Path
) -> tuple[Path, str]:
    """(absolute path, media type) of a report photo the user may see."""
    row = conn.execute(
        select(field_report_photo.c.path, field_report_photo.c.media_type)
        .select_from(field_report_photo.join(field_report))
        .where(field_report.c.code == code, field_report_photo.c.id == photo_id, scope(user))
    ).first()
    if row is None:
        raise NotFoundError(
            f"photo {photo_id} of report '{code}' does not exist",
            i18n="err.reports_store.photo_report_does_not_exist",
            photo_id=photo_id,
            report=code,
        )
    return report_media.resolve_path(media_root, row[0]), str(row[1])


# --- workflow -----------------------------------------------------------------------------


def lock_for_step(conn: Connection, code: str, user: User) -> dict[str, Any]:
    """The report a step is about, locked for update, if the user may work on it (else 404)."""
    row = (
        conn.execute(
            select(
                field_report.c.id,
                field_report.c.code,
                field_report.c.status,
                field_report.c.category,
                field_report.c.due_at,
            )
            .where(field_report.c.code == code, scope(user), _work_scope(user))
            .with_for_update()
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFoundError(
            f"report '{code}' does not exist",
            report=code,
            i18n="err.reports_store.report_does_not_exist",
        )
    return dict(row)


def apply_step(
    conn: Connection,
    report: dict[str, Any],
    user: User,
    now: datetime,
    *,
    action: str,
    to_status: str,
    note: str,
    values: dict[str, Any],
    photo: report_media.Photo | None = None,
    media_root: Path | None = None,
) -> dict[str, Any]:
    """Write a step the workflow allowed: new status and columns, history event, photo, mirror."""
    report_id = int(report["id"])
    code = str(report["code"])
    conn.execute(
        update(field_report)
        .where(field_report.c.id == report_id)
        .values(status=to_status, updated_at=now, **values)
    )
    _event(conn, report_id, now, user.username, action, report["status"], to_status, note)
    if photo is not None:
        if media_root is None:
            raise InvalidInputError(
                "no media root to store the resolution photo",
                i18n="err.reports_store.no_media_root_to_store",
            )
        written: list[str] = []
        kind = "resolution" if action == "resolve" else "information"
        try:
            _store_photos(conn, media_root, report_id, code, kind, [photo], written)
        except BaseException:
            report_media.remove_files(media_root, written)
            raise
    if to_status in ("resolved", "rejected"):
        _close_overdue_alert(conn, code, user.username)
    sync_features(conn, [report_id])
    return get_report(conn, code, user, now)


def rate(conn: Connection, code: str, user: User, rating: Rating, now: datetime) -> dict[str, Any]:
    """The citizen's satisfaction with a resolved report (once)."""
    owner = field_report.c.citizen_user_id == user.id if user.role == "citizen" else true()
    row = (
        conn.execute(
            select(field_report.c.id, field_report.c.status, field_report.c.rating)
            .where(field_report.c.code == code, scope(user), owner)
            .with_for_update()
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFoundError(
            f"report '{code}' does not exist",
            report=code,
            i18n="err.reports_store.report_does_not_exist",
        )
    if row["status"] != "resolved":
        raise ConflictError(
            f"report '{code}' is {row['status']}; only resolved reports are rated",
            i18n="err.reports_store.report_only_resolved_reports_are",
            report=code,
            status=row["status"],
        )
    if row["rating"] is not None:
        raise ConflictError(
            f"report '{code}' is already rated",
            i18n="err.reports_store.report_already_rated",
            report=code,
        )
    conn.execute(
        update(field_report)
        .where(field_report.c.id == row["id"])
        .values(rating=rating, rated_at=now, updated_at=now)
    )
    _event(conn, int(row["id"]), now, user.username, "rate", None, None, rating)
    sync_features(conn, [int(row["id"])])
    return get_report(conn, code, user, now)


# --- SLA / overdue ------------------------------------------------------------------------


def overdue_rule_id(conn: Connection) -> int:
    """The (disabled) alert rule under which SLA alerts are raised; created on first use."""
    from layers.analytics import alerts

    # Disabled: the analytics engine must not evaluate it; the report workflow raises its alerts.
    return alerts.save_rule(
        conn,
        OVERDUE_RULE,
        "Phản ánh quá hạn xử lý (SLA)",
        "warning",
        False,
        {
            "slug": OVERDUE_RULE,
            "name": "Phản ánh quá hạn xử lý (SLA)",
            "severity": "warning",
            "enabled": False,
            "kind": "duration",
            "layer": LAYER_SLUG,
            "threshold": 0,
            "since_property": "due_at",
        },
    )


def claim_overdue(conn: Connection, now: datetime) -> list[dict[str, Any]]:
    """Open reports past their due time not alerted yet, claimed once (marked and logged)."""
    rows = [
        dict(r)
        for r in conn.execute(
            select(*_cols())
            .where(
                field_report.c.status.in_(OPEN_STATUSES),
                field_report.c.due_at < now,
                field_report.c.overdue_alerted_at.is_(None),
            )
            .order_by(field_report.c.due_at)
            .with_for_update(skip_locked=True)
        ).mappings()
    ]
    for r in rows:
        late_h = (now - r["due_at"]).total_seconds() / 3600
        conn.execute(
            update(field_report).where(field_report.c.id == r["id"]).values(overdue_alerted_at=now)
        )
        _event(
            conn,
            int(r["id"]),
            now,
            "system",
            "overdue",
            r["status"],
            r["status"],
            f"{late_h:.1f} h",
        )
    return rows


def _close_overdue_alert(conn: Connection, code: str, actor: str) -> None:
    from layers.analytics import alerts
    from layers.models.analytics import alert_rule

    ids = conn.execute(
        select(alert.c.id)
        .select_from(alert.join(alert_rule))
        .where(
            alert_rule.c.slug == OVERDUE_RULE,
            alert.c.dedup_key == code,
            alert.c.status != "resolved",
        )
    ).scalars()
    for alert_id in list(ids):
        alerts.transition(conn, int(alert_id), "resolved", actor, f"report {code} closed")


# --- the field_reports layer mirror -------------------------------------------------------


def _layer_id(conn: Connection) -> int:
    try:
        return get_layer(conn, LAYER_SLUG).id
    except NotFoundError:
        from layers.demo.specs import FIELD_REPORTS
        from layers.features.registry import create_or_update_layer

        return create_or_update_layer(conn, FIELD_REPORTS)


def _feature_row(r: Any) -> Any:
    from layers.features.bulk import FeatureRow

    resolved = r["resolved_at"]
    return FeatureRow(
        source_key=r["code"],
        # Snapped to a ~100 m grid: the layer is public, and a point can identify a home.
        geometry=shapely.Point(
            round(r["lon"] / ANON_GRID_DEG) * ANON_GRID_DEG,
            round(r["lat"] / ANON_GRID_DEG) * ANON_GRID_DEG,
        ),
        properties={
            "report_code": r["code"],
            "category": r["category"],
            "category_vi": CATEGORY_VI[r["category"]],
            "status": r["status"],
            "status_vi": STATUS_VI[r["status"]],
            "title": CATEGORY_VI[r["category"]],
            "received_at": r["received_at"].isoformat(),
            "due_at": r["due_at"].isoformat(),
            "resolved_at": _iso(resolved),
            "on_time": (resolved <= r["due_at"]) if resolved is not None else None,
            "rating": r["rating"],
            "commune_code": r["commune_code"],
            "commune_name": r["commune_name"],
            "source": "workflow",
        },
        observed_at=r["received_at"],
    )


def sync_features(conn: Connection, report_ids: list[int] | None = None) -> int:
    """Upsert reports (all when `report_ids` is None) into the field_reports layer; returns count."""
    from layers.features.bulk import upsert_features

    stmt = select(*_cols()).order_by(field_report.c.id)
    if report_ids is not None:
        stmt = stmt.where(any_of(field_report.c.id, report_ids, BigInteger))
    rows = [_feature_row(r) for r in conn.execute(stmt).mappings()]
    if not rows:
        return 0
    upsert_features(conn, _layer_id(conn), rows)
    return len(rows)


# --- statistics and the public map --------------------------------------------------------

GroupBy = Literal["commune", "category", "period"]
Period = Literal["day", "week", "month", "quarter", "year"]


def stats(
    conn: Connection,
    user: User,
    group_by: GroupBy,
    *,
    period: Period = "month",
    since: datetime | None = None,
    until: datetime | None = None,
    commune_code: str | None = None,
    category: str | None = None,
    timezone: str = "Asia/Ho_Chi_Minh",
) -> list[dict[str, Any]]:
    """Received, processed %, on-time % and satisfaction split per commune, category or period.

    Read from the field_reports layer, which holds the history and mirrors every new report.
    """
    try:
        layer_id = get_layer(conn, LAYER_SLUG).id
    except NotFoundError:
        return []
    p = feature.c.properties
    status = p["status"].astext
    rating = p["rating"].astext
    on_time = p["on_time"].astext
    keys: dict[str, Any] = {
        "commune": p["commune_code"].astext,
        "category": p["category"].astext,
        "period": func.date_trunc(period, func.timezone(timezone, feature.c.observed_at)),
    }
    key = keys[group_by].label("key")
    name = (
        func.max(p["commune_name"].astext) if group_by == "commune" else literal(None).label("name")
    )

    def n(cond: ColumnElement[bool]) -> Any:
        return func.count().filter(cond)

    stmt = (
        select(
            key,
            name.label("name"),
            func.count().label("received"),
            n(status.in_(("resolved", "rejected"))).label("processed"),
            n(status == "resolved").label("resolved"),
            n(status == "rejected").label("rejected"),
            n(on_time == "true").label("on_time"),
            n(on_time.in_(("true", "false"))).label("timed"),
            n(rating == "hai_long").label("hai_long"),
            n(rating == "chap_nhan").label("chap_nhan"),
            n(rating == "khong_hai_long").label("khong_hai_long"),
        )
        .where(feature.c.layer_id == layer_id)
        .group_by(key)
        .order_by(key)
    )
    if user.role == "commune_staff":
        stmt = stmt.where(p["commune_code"].astext.in_(list(user.admin_units)))
    elif user.role not in ALL_REPORT_READERS:
        stmt = stmt.where(false())
    if since:
        stmt = stmt.where(feature.c.observed_at >= since)
    if until:
        stmt = stmt.where(feature.c.observed_at < until)
    if commune_code:
        stmt = stmt.where(p["commune_code"].astext == commune_code)
    if category:
        stmt = stmt.where(p["category"].astext == category)
    out = []
    for r in conn.execute(stmt).mappings():
        rated = r["hai_long"] + r["chap_nhan"] + r["khong_hai_long"]

        def pct(a: int, b: int) -> float | None:
            return round(100.0 * a / b, 1) if b else None

        k = r["key"]
        out.append(
            {
                "key": k.date().isoformat() if isinstance(k, datetime) else k,
                "name": r["name"],
                "received": r["received"],
                "processed": r["processed"],
                "resolved": r["resolved"],
                "rejected": r["rejected"],
                "processed_pct": pct(r["processed"], r["received"]),
                "on_time_pct": pct(r["on_time"], r["timed"]),
                "rated": rated,
                "satisfaction": {
                    "hai_long": r["hai_long"],
                    "chap_nhan": r["chap_nhan"],
                    "khong_hai_long": r["khong_hai_long"],
                },
                "satisfaction_pct": {
                    "hai_long": pct(r["hai_long"], rated),
                    "chap_nhan": pct(r["chap_nhan"], rated),
                    "khong_hai_long": pct(r["khong_hai_long"], rated),
                },
            }
        )
    return out


def public_map(
    conn: Connection,
    *,
    bbox: tuple[float, float, float, float] | None = None,
    since: datetime | None = None,
    status: str | None = None,
    category: str | None = None,
    limit: int = 5000,
) -> dict[str, Any]:
    """Anonymised GeoJSON of report locations (~100 m grid) and statuses, for anyone."""
    try:
        layer_id = get_layer(conn, LAYER_SLUG).id
    except NotFoundError:
        return {"type": "FeatureCollection", "features": []}
    p = feature.c.properties
    grid = ANON_GRID_DEG
    stmt = (
        select(
            func.round(func.ST_X(feature.c.geom) / grid) * grid,
            func.round(func.ST_Y(feature.c.geom) / grid) * grid,
            p["category"].astext,
            p["status"].astext,
            p["commune_code"].astext,
            feature.c.observed_at,
        )
        .where(feature.c.layer_id == layer_id)
        .order_by(feature.c.observed_at.desc().nulls_last(), feature.c.id)
        .limit(limit)
    )
    if bbox:
        stmt = stmt.where(feature.c.geom.op("&&")(func.ST_MakeEnvelope(*bbox, 4326)))
    if since:
        stmt = stmt.where(feature.c.observed_at >= since)
    if status:
        stmt = stmt.where(p["status"].astext == status)
    if category:
        stmt = stmt.where(p["category"].astext == category)
    feats = []
    for lon, lat, cat, st, commune, at in conn.execute(stmt):
        feats.append(
            {
                "type": "Feature",
                "geometry": {
                    "type": "Point",
                    "coordinates": [round(float(lon), 3), round(float(lat), 3)],
                },
                "properties": {
                    "category": cat,
                    "status": st,
                    "commune_code": commune,
                    "received_on": at.date().isoformat() if at else None,
                },
            }
        )
    return {"type": "FeatureCollection", "features": feats}
