"""Incident command (issue 21): incidents, linked sources, the append-only log, SOPs and tasks."""

from __future__ import annotations

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from layers.models.base import metadata
from layers.models.columns import done_by, id_key, moment, one_of, parent, words

INCIDENT_TYPES = (
    "flood",
    "fire",
    "traffic_accident",
    "crowd",
    "infrastructure",
    "health",
    "environment",
    "other",
)
INCIDENT_STATUSES = ("new", "confirmed", "responding", "contained", "closed", "false_alarm")
LINK_KINDS = ("alert", "report", "event", "reading")
TASK_STATUSES = ("open", "acknowledged", "done", "cancelled")

# A procedure (one per type and severity band); its steps live in immutable versions.
sop = Table(
    "sop",
    metadata,
    id_key(Integer),
    Column("slug", Text, nullable=False, unique=True),
    words("incident_type"),
    Column("min_severity", SmallInteger, nullable=False, server_default=text("1")),
    Column("max_severity", SmallInteger, nullable=False, server_default=text("4")),
    words("title_vi"),
    words("title_en"),
    Column("current_version", Integer, nullable=False, server_default=text("1")),
    moment("updated_at", required=True, now=True),
    one_of("incident_type", INCIDENT_TYPES, "type_known"),
    CheckConstraint("min_severity BETWEEN 1 AND 4 AND max_severity BETWEEN min_severity AND 4",
                    name="severity_band"),
)  # fmt: skip

# Never updated: an edit adds a version, and incidents keep the one they started with.
sop_version = Table(
    "sop_version",
    metadata,
    id_key(Integer),
    parent("sop_id", "sop", Integer),
    Column("version", Integer, nullable=False),
    Column("steps", JSONB, nullable=False),
    words("note", default=""),
    words("created_by"),
    moment("created_at", required=True, now=True),
    UniqueConstraint("sop_id", "version"),
)

incident = Table(
    "incident",
    metadata,
    id_key(),
    words("type"),
    Column("severity", SmallInteger, nullable=False),
    words("title"),
    words("description", default=""),
    Column("geom", Geometry("GEOMETRY", srid=4326, spatial_index=False), nullable=False),
    Column("radius_m", Double, nullable=False),
    words("status", default="new"),
    words("commune_code", required=False),
    words("commune_name", default=""),
    words("commander", required=False),
    Column("sop_version_id", Integer, ForeignKey("sop_version.id", ondelete="RESTRICT")),
    words("opened_from", default="map"),
    words("opened_by"),
    moment("opened_at", required=True),
    # the time each state was first reached (the KPIs' clock)
    *(moment(f"{state}_at") for state in ("confirmed", "responding", "contained", "closed")),
    moment("updated_at", required=True),
    one_of("type", INCIDENT_TYPES, "type_known"),
    one_of("status", INCIDENT_STATUSES, "status_known"),
    CheckConstraint("severity BETWEEN 1 AND 4", name="severity_range"),
    CheckConstraint("radius_m > 0", name="radius_positive"),
    Index("ix_incident_geom", "geom", postgresql_using="gist"),
    Index("ix_incident_status_opened_at", "status", "opened_at"),
    Index("ix_incident_commune_code", "commune_code"),
)

incident_link = Table(
    "incident_link",
    metadata,
    id_key(),
    parent("incident_id", "incident"),
    words("kind"),
    words("ref"),
    words("title", default=""),
    Column("geom", Geometry("GEOMETRY", srid=4326, spatial_index=False)),
    moment("at"),
    words("linked_by"),
    moment("linked_at", required=True),
    one_of("kind", LINK_KINDS, "kind_known"),
    UniqueConstraint("incident_id", "kind", "ref"),
    Index("ix_incident_link_kind_ref", "kind", "ref"),
)

# Append-only (a trigger of migration 0017 refuses UPDATE and DELETE of single rows).
incident_log = Table(
    "incident_log",
    metadata,
    id_key(),
    parent("incident_id", "incident"),
    moment("at", required=True),
    words("actor"),
    words("action"),
    words("from_status", required=False),
    words("to_status", required=False),
    Column("detail", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Index("ix_incident_log_incident_id", "incident_id"),
    Index("ix_incident_log_at", "at", postgresql_using="brin"),
)

incident_task = Table(
    "incident_task",
    metadata,
    id_key(),
    parent("incident_id", "incident"),
    Column("step_no", Integer),
    words("origin", default="sop"),
    words("title"),
    words("detail", default=""),
    words("agency_code", required=False),
    words("agency_name", default=""),
    words("agency_kind", default=""),
    words("role", required=False),
    words("evidence", default="none"),
    Column("sla_minutes", Integer, nullable=False),
    words("status", default="open"),
    words("created_by"),
    moment("created_at", required=True),
    moment("due_at", required=True),
    *done_by("acknowledged"),
    *done_by("completed"),
    moment("escalated_at"),
    Column("escalation_alert_id", BigInteger),
    one_of("status", TASK_STATUSES, "status_known"),
    CheckConstraint("origin IN ('sop','directive')", name="origin_known"),
    CheckConstraint("evidence IN ('none','note','photo')", name="evidence_known"),
    Index("ix_incident_task_incident_id", "incident_id"),
    Index("ix_incident_task_agency_code_status", "agency_code", "status"),
    Index("ix_incident_task_due_open", "due_at", postgresql_where=text("status IN ('open','acknowledged')")),
)  # fmt: skip

incident_task_note = Table(
    "incident_task_note",
    metadata,
    id_key(),
    parent("task_id", "incident_task"),
    moment("at", required=True),
    words("actor"),
    words("note", default=""),
    Column("photo", LargeBinary),
    words("photo_type", required=False),
    Index("ix_incident_task_note_task_id", "task_id"),
)
