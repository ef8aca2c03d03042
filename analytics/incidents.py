"""Incident rules (issue 21): states, SOP steps as data, task planning, links, escalation, KPIs.

Pure functions over plain values; storage is `layers.incidents`, the HTTP edge is
`geo_api.routers.incidents`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from layers.errors import ConflictError, InvalidInputError
from layers.indicators.catalog import incident_kpi_code

IncidentType = Literal[
    "flood",
    "fire",
    "traffic_accident",
    "crowd",
    "infrastructure",
    "health",
    "environment",
    "other",
]
Status = Literal["new", "confirmed", "responding", "contained", "closed", "false_alarm"]
TYPES: tuple[str, ...] = IncidentType.__args__  # type: ignore[attr-defined]
STATUSES: tuple[str, ...] = Status.__args__  # type: ignore[attr-defined]
OPEN_STATUSES: tuple[str, ...] = ("new", "confirmed", "responding", "contained")

# The state machine: an incident only moves forward, and a false alarm ends it early.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "new": ("confirmed", "false_alarm"),
    "confirmed": ("responding", "contained", "closed", "false_alarm"),
    "responding": ("contained", "closed"),
    "contained": ("closed", "responding"),
    "closed": (),
    "false_alarm": (),
}
# The time column each state stamps when first reached.
STAMPS = {
    "confirmed": "confirmed_at",
    "responding": "responding_at",
    "contained": "contained_at",
    "closed": "closed_at",
    "false_alarm": "closed_at",
}
# Agency kinds of the agencies layer a step can name (see layers/demo/synthetic.py).
AgencyKind = Literal["cong_an_tinh", "cong_an_xa", "pccc", "cap_cuu_115", "ubnd_xa", "so_nganh"]
# Roles a step can name instead of an agency (done in the operations centre itself).
StepRole = Literal["commander", "operator", "leader"]


class SopStep(BaseModel):
    """One ordered step of a procedure."""

    model_config = ConfigDict(extra="forbid")

    title_vi: str = Field(min_length=1, max_length=300)
    title_en: str = Field(min_length=1, max_length=300)
    agency_kind: AgencyKind | None = None
    agency_name: str | None = Field(
        default=None, description="For so_nganh: the department's name, e.g. 'Sở Xây dựng'."
    )
    role: StepRole | None = None
    sla_minutes: int = Field(gt=0, le=60 * 24 * 30)
    evidence: Literal["none", "note", "photo"] = "none"
    min_severity: int = Field(default=1, ge=1, le=4, description="Only at this severity or above.")

    @model_validator(mode="after")
    def _one_owner(self) -> SopStep:
        if (self.agency_kind is None) == (self.role is None):
            raise ValueError("a step names exactly one of agency_kind or role")
        if self.agency_kind == "so_nganh" and not self.agency_name:
            raise ValueError("a so_nganh step names the department in agency_name")
        return self


class SopSpec(BaseModel):
    """A procedure as admins edit it: what it applies to and its ordered steps."""

    model_config = ConfigDict(extra="forbid")

    slug: str = Field(pattern=r"^[a-z][a-z0-9_]{1,62}$")
    incident_type: IncidentType
    min_severity: int = Field(default=1, ge=1, le=4)
    max_severity: int = Field(default=4, ge=1, le=4)
    title_vi: str = Field(min_length=1, max_length=300)
    title_en: str = Field(min_length=1, max_length=300)
    steps: list[SopStep] = Field(min_length=1, max_length=50)
    note: str = Field(default="", max_length=2000)

    @model_validator(mode="after")
    def _band(self) -> SopSpec:
        if self.max_severity < self.min_severity:
            raise ValueError("max_severity is below min_severity")
        return self


def check_transition(current: str, to: str) -> None:
    """ConflictError unless `current -> to` is a move of the state machine."""
    if to not in STATUSES:
        raise InvalidInputError(
            f"unknown status '{to}'; statuses: {', '.join(STATUSES)}",
            to=to,
            i18n="err.incidents.unknown_status_statuses",
            items=", ".join(STATUSES),
        )
    if to not in TRANSITIONS[current]:
        allowed = ", ".join(TRANSITIONS[current]) or "none (the incident is finished)"
        raise ConflictError(
            f"an incident that is {current} cannot become {to}; allowed: {allowed}",
            i18n="err.incidents.incident_that_cannot_become_allowed",
            current=current,
            to=to,
            allowed=allowed,
        )


def pick_sop(sops: Sequence[Mapping[str, Any]], incident_type: str, severity: int) -> Any | None:
    """The procedure for a type and severity: the narrowest band that covers it."""
    fits = [
        s
        for s in sops
        if s["incident_type"] == incident_type
        and s["min_severity"] <= severity <= s["max_severity"]
    ]
    if not fits:
        return None
    return min(fits, key=lambda s: (s["max_severity"] - s["min_severity"], s["slug"]))


@dataclass(frozen=True)
class PlannedTask:
    """A task to create on confirmation: a step that applies, with its owner and due time."""

    step_no: int
    title: str
    agency_kind: str | None
    agency_name: str | None
    role: str | None
    sla_minutes: int
    evidence: str
    due_at: datetime


def plan_tasks(
    steps: Sequence[Mapping[str, Any]], severity: int, confirmed_at: datetime, lang: str = "vi"
) -> list[PlannedTask]:
    """The SOP steps that apply at this severity, in order, each due SLA minutes after confirm."""
    out = []
    for i, raw in enumerate(steps, start=1):
        step = SopStep.model_validate(raw)
        if severity < step.min_severity:
            continue
        out.append(
            PlannedTask(
                step_no=i,
                title=step.title_vi if lang == "vi" else step.title_en,
                agency_kind=step.agency_kind,
                agency_name=step.agency_name,
                role=step.role,
                sla_minutes=step.sla_minutes,
                evidence=step.evidence,
                due_at=confirmed_at + timedelta(minutes=step.sla_minutes),
            )
        )
    return out


def check_completion(evidence: str, notes: int, photos: int) -> None:
    """ConflictError when a task's required evidence is missing."""
    if evidence == "note" and notes == 0:
        raise ConflictError(
            "this task needs a note before it can be completed",
            i18n="err.incidents.this_task_needs_note_before",
        )
    if evidence == "photo" and photos == 0:
        raise ConflictError(
            "this task needs a photo before it can be completed",
            i18n="err.incidents.this_task_needs_photo_before",
        )


# What each source suggests about the incident type (None: no opinion, so it may match any).
_ALERT_WORDS: tuple[tuple[str, str], ...] = (
    ("flood", "flood"),
    ("ngap", "flood"),
    ("water", "flood"),
    ("rain", "flood"),
    ("mua", "flood"),
    ("fire", "fire"),
    ("chay", "fire"),
    ("smoke", "fire"),
    ("accident", "traffic_accident"),
    ("traffic", "traffic_accident"),
    ("congestion", "traffic_accident"),
    ("crowd", "crowd"),
    ("intrusion", "crowd"),
    ("air", "environment"),
    ("aqi", "environment"),
)
_REPORT_TYPES = {
    "traffic": "traffic_accident",
    "environment": "environment",
    "infrastructure": "infrastructure",
    "security": "crowd",
}
_EVENT_TYPES = {
    "crowd": "crowd",
    "intrusion": "crowd",
    "congestion": "traffic_accident",
    "wrong_way": "traffic_accident",
    "stopped_vehicle": "traffic_accident",
    "speeding": "traffic_accident",
    "fire": "fire",
    "smoke": "fire",
}


def source_type(kind: str, label: str) -> str | None:
    """The incident type a source points to (alert rule slug, report category, event type)."""
    label = label.lower()
    if kind == "report":
        return _REPORT_TYPES.get(label)
    if kind == "event":
        return _EVENT_TYPES.get(label)
    for word, t in _ALERT_WORDS:
        if word in label:
            return t
    return None


def types_match(incident_type: str, src_type: str | None) -> bool:
    """A source matches an incident of its own type, and one of unknown type matches any."""
    return src_type is None or src_type == incident_type or incident_type == "other"


def due_for_escalation(
    tasks: Iterable[Mapping[str, Any]], now: datetime
) -> list[Mapping[str, Any]]:
    """Open or acknowledged tasks past their due time that were not escalated yet."""
    return [
        t
        for t in tasks
        if t["status"] in ("open", "acknowledged")
        and t["due_at"] < now
        and t["escalated_at"] is None
    ]


def minutes_between(a: datetime | None, b: datetime | None) -> float | None:
    """Minutes from a to b, or None when either is missing."""
    if a is None or b is None:
        return None
    return max((b - a).total_seconds() / 60.0, 0.0)


def kpi_values(
    incs: Sequence[Mapping[str, Any]],
    tasks: Sequence[Mapping[str, Any]],
    day_of: Callable[[datetime], date],
) -> dict[tuple[str, str, date], float]:
    """Daily KPI parts per (indicator code, commune, local day), overall and per type.

    An incident counts on the day it was opened; each duration on the day its milestone was
    reached; tasks on the day they were completed. The first response is the first task
    acknowledged or completed.
    """
    out: dict[tuple[str, str, date], float] = {}
    first: dict[int, datetime] = {}
    for t in tasks:
        at = t["acknowledged_at"] or t["completed_at"]
        if at is not None:
            iid = int(t["incident_id"])
            first[iid] = min(first.get(iid, at), at)
    info = {int(i["id"]): i for i in incs}

    def add(measure: str, inc: Mapping[str, Any], at: datetime, v: float) -> None:
        for t in (None, inc["type"]):
            key = (incident_kpi_code(measure, t), inc["commune_code"], day_of(at))
            out[key] = out.get(key, 0.0) + v

    for i in incs:
        add("opened", i, i["opened_at"], 1)
        m = minutes_between(i["opened_at"], i["confirmed_at"])
        if m is not None:
            add("confirmed", i, i["confirmed_at"], 1)
            add("confirm_min", i, i["confirmed_at"], m)
        fr = first.get(int(i["id"]))
        m = minutes_between(i["opened_at"], fr)
        if m is not None and fr is not None:
            add("responded", i, fr, 1)
            add("response_min", i, fr, m)
        m = minutes_between(i["opened_at"], i["closed_at"])
        if i["status"] == "closed" and m is not None:
            add("closed", i, i["closed_at"], 1)
            add("close_min", i, i["closed_at"], m)
    for t in tasks:
        if t["status"] == "done" and t["completed_at"] is not None:
            inc = info[int(t["incident_id"])]
            add("tasks_done", inc, t["completed_at"], 1)
            if t["completed_at"] <= t["due_at"]:
                add("tasks_on_time", inc, t["completed_at"], 1)
    return {k: v for k, v in out.items() if math.isfinite(v)}


def severity_rank(severity: int, opened_at: datetime, now: datetime) -> tuple[int, float]:
    """Sort key of the leaders' board: most severe first, then oldest first."""
    return (-severity, -(now - opened_at).total_seconds())
