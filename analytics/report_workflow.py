"""The field-report workflow: statuses, steps, who may take them, and the SLA (pure rules).

Storage (the `field_report` tables, scoping, photos) stays in `layers.reports.store`, which calls
`plan_step` before it writes anything. Nothing here touches a database or the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, get_args

import shapely
from sqlalchemy import Connection

from layers.auth.users import User
from layers.errors import ConflictError, InvalidInputError, PermissionDeniedError
from layers.models.reports import CATEGORY_VI, OPEN_STATUSES, STATUS_VI
from layers.reports import media as report_media
from layers.reports import store as storage
from layers.reports.store import Status

Action = Literal[
    "accept", "request_info", "provide_info", "assign", "start", "resolve", "reject", "reopen"
]
Rating = Literal["hai_long", "chap_nhan", "khong_hai_long"]

STATUSES: tuple[str, ...] = get_args(Status)
ACTIONS: tuple[str, ...] = get_args(Action)


@dataclass(frozen=True)
class CategoryInfo:
    """Vietnamese name, responsible department and SLA of a report category."""

    department: str
    sla: timedelta

    @property
    def vi(self) -> str:
        """The category's Vietnamese name."""
        return CATEGORY_VI[self.kind]

    kind: str = "other"


# SLAs match the demo history in layers/demo/synthetic.py, so statistics stay comparable.
CATEGORIES: dict[str, CategoryInfo] = {
    "traffic": CategoryInfo("Sở Xây dựng — Giao thông", timedelta(days=3), "traffic"),
    "environment": CategoryInfo("Sở Nông nghiệp và Môi trường", timedelta(days=5), "environment"),
    "urban_order": CategoryInfo(
        "UBND xã/phường — Trật tự đô thị", timedelta(days=5), "urban_order"
    ),
    "infrastructure": CategoryInfo("Sở Xây dựng — Hạ tầng", timedelta(days=10), "infrastructure"),
    "security": CategoryInfo("Công an tỉnh", timedelta(days=2), "security"),
    "other": CategoryInfo("Văn phòng UBND tỉnh", timedelta(days=7), "other"),
}
# STATUS_VI and OPEN_STATUSES are the schema's vocabulary (layers.models.reports), re-exported.
__all__ = ["CATEGORIES", "OPEN_STATUSES", "STATUS_VI", "TRANSITIONS", "plan_step"]
CLOSED_STATUSES: tuple[str, ...] = ("resolved", "rejected")

TRANSITIONS: dict[tuple[str, str], Status] = {
    ("received", "accept"): "accepted",
    ("info_requested", "accept"): "accepted",
    ("received", "request_info"): "info_requested",
    ("accepted", "request_info"): "info_requested",
    ("info_requested", "provide_info"): "received",
    ("received", "assign"): "assigned",
    ("accepted", "assign"): "assigned",
    ("assigned", "assign"): "assigned",
    ("assigned", "start"): "in_progress",
    ("in_progress", "resolve"): "resolved",
    ("received", "reject"): "rejected",
    ("accepted", "reject"): "rejected",
    ("info_requested", "reject"): "rejected",
    ("assigned", "reject"): "rejected",
    ("in_progress", "reject"): "rejected",
    ("resolved", "reopen"): "in_progress",
    ("rejected", "reopen"): "accepted",
}
# Who may take each step (admin may take all). Commune staff work their communes' reports;
# the provincial operator (the IOC desk) may also reopen a closed one; the citizen answers a
# request for information on their own report.
STEP_ROLES: dict[str, frozenset[str]] = {
    "accept": frozenset({"commune_staff", "operator"}),
    "request_info": frozenset({"commune_staff", "operator"}),
    "provide_info": frozenset({"citizen"}),
    "assign": frozenset({"commune_staff", "operator"}),
    "start": frozenset({"commune_staff", "operator"}),
    "resolve": frozenset({"commune_staff", "operator"}),
    "reject": frozenset({"commune_staff", "operator"}),
    "reopen": frozenset({"operator"}),
}
NOTE_REQUIRED: frozenset[str] = frozenset(
    {"request_info", "provide_info", "resolve", "reject", "reopen"}
)


class StepRefused(Exception):
    """A step the workflow or the role forbids; `key` names the message in web_map/i18n.json."""

    def __init__(
        self, key: str, kind: Literal["conflict", "forbidden", "invalid"], **values: str
    ) -> None:
        super().__init__(key)
        self.key = key
        self.kind = kind
        self.values = values


@dataclass(frozen=True)
class StepPlan:
    """What a permitted step does to a report."""

    action: str
    from_status: str
    to_status: str
    note: str
    clears_resolution: bool = False
    new_due_at: datetime | None = None


def allowed_steps(status: str, role: str) -> list[str]:
    """The steps a role may take on a report in this status (what the panel offers)."""
    return [
        a
        for a in ACTIONS
        if (status, a) in TRANSITIONS and (role == "admin" or role in STEP_ROLES[a])
    ]


def plan_step(
    status: str, action: str, role: str, note: str, category: str, now: datetime
) -> StepPlan:
    """Check a step against the state machine, the role and the note rule; StepRefused if not."""
    if action not in STEP_ROLES:
        raise StepRefused("rep.err.unknown_step", "invalid", action=action)
    if role != "admin" and role not in STEP_ROLES[action]:
        raise StepRefused("rep.err.role", "forbidden", action=action, role=role)
    target = TRANSITIONS.get((status, action))
    if target is None:
        raise StepRefused("rep.err.transition", "conflict", action=action, status=status)
    text = note.strip()
    if action in NOTE_REQUIRED and not text:
        raise StepRefused("rep.err.note_required", "invalid", action=action)
    reopened = action == "reopen"
    return StepPlan(
        action=action,
        from_status=status,
        to_status=target,
        note=text,
        clears_resolution=reopened,
        # A reopened report gets a fresh SLA from now: the old deadline has passed already.
        new_due_at=due_at(category, now) if reopened else None,
    )


def due_at(category: str, received_at: datetime) -> datetime:
    """When a report of this category must be closed."""
    return received_at + CATEGORIES[category].sla


def is_overdue(status: str, due: datetime, now: datetime) -> bool:
    """An open report past its due time."""
    return status in OPEN_STATUSES and due < now


def is_on_time(resolved_at: datetime | None, due: datetime) -> bool | None:
    """Whether a closed report met its SLA (None while open)."""
    return None if resolved_at is None else resolved_at <= due


def hours_late(due: datetime, now: datetime) -> float:
    """Hours past the due time (negative while still in time)."""
    return (now - due).total_seconds() / 3600


# --- the thin jobs: rules above, storage in layers.reports.store ---------------------------------


def submit(
    conn: Connection,
    sub: storage.Submission,
    photos: list[report_media.Photo],
    user: User | None,
    now: datetime,
    media_root: Path,
) -> dict[str, Any]:
    """Record a citizen's report routed to its category's department, due after its SLA."""
    info = CATEGORIES[sub.category]
    return storage.submit(
        conn,
        sub,
        photos,
        user,
        now,
        media_root,
        department=info.department,
        due_at=due_at(sub.category, now),
    )


def take_step(
    conn: Connection,
    code: str,
    action: str,
    user: User,
    now: datetime,
    *,
    note: str = "",
    assignee: str | None = None,
    department: str | None = None,
    photo: report_media.Photo | None = None,
    media_root: Path | None = None,
) -> dict[str, Any]:
    """Take one workflow step on a report, or raise a domain error saying why not."""
    report = storage.lock_for_step(conn, code, user)
    try:
        plan = plan_step(report["status"], action, user.role, note, report["category"], now)
    except StepRefused as refused:
        raise _domain_error(refused, code) from refused
    values: dict[str, Any] = {}
    if action == "assign":
        values["assigned_to"] = assignee or user.username
        if department:
            values["department"] = department
    if action == "resolve":
        values.update(resolved_at=now, resolution_note=plan.note)
    if action == "reject":
        values["resolution_note"] = plan.note
    if plan.clears_resolution:
        values.update(
            resolved_at=None,
            resolution_note=None,
            rating=None,
            rated_at=None,
            overdue_alerted_at=None,
            due_at=plan.new_due_at,
        )
    out = storage.apply_step(
        conn,
        report,
        user,
        now,
        action=action,
        to_status=plan.to_status,
        note=plan.note,
        values=values,
        photo=photo,
        media_root=media_root,
    )
    out["allowed_steps"] = allowed_steps(out["status"], user.role)
    return out


def _domain_error(refused: StepRefused, code: str) -> Exception:
    v = refused.values
    action, status = v.get("action", ""), v.get("status", "")
    ctx: dict[str, Any] = {"report": code, "i18n": refused.key, **v}
    if refused.kind == "forbidden":
        return PermissionDeniedError(f"role '{v.get('role')}' may not '{action}' a report", **ctx)
    if refused.kind == "conflict":
        return ConflictError(
            f"report '{code}' is {status}; '{action}' is not allowed from there",
            current=status,
            **ctx,
        )
    return InvalidInputError(f"'{action}' needs a note", param="note", **ctx)


def check_overdue(conn: Connection, now: datetime) -> list[str]:
    """Open one SLA alert per newly overdue report (each once); returns their codes."""
    from layers.analytics import alerts

    rows = storage.claim_overdue(conn, now)
    if not rows:
        return []
    rule_id = storage.overdue_rule_id(conn)
    writes = []
    for r in rows:
        info = CATEGORIES[r["category"]]
        writes.append(
            alerts.AlertWrite(
                rule_id=rule_id,
                dedup_key=r["code"],
                severity="warning",
                title=f"Phản ánh {r['code']} quá hạn ({info.vi}, {r['commune_name']})",
                area_kind="commune",
                area_ref=r["commune_code"],
                geom_wkb=shapely.to_wkb(shapely.Point(r["lon"], r["lat"])),
                commune_code=r["commune_code"],
                value=round(hours_late(r["due_at"], now), 2),
                threshold=info.sla.total_seconds() / 3600,
                evidence={
                    "report_code": r["code"],
                    "due_at": r["due_at"].isoformat(),
                    "status": r["status"],
                    "links": [f"/api/reports/{r['code']}"],
                },
                window_start=r["received_at"],
                window_end=now,
            )
        )
    alerts.write_alerts(conn, writes)
    return [str(r["code"]) for r in rows]
