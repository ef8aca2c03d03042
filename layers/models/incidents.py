"""Incident command (issue 21): incidents, linked sources, the append-only log, SOPs and tasks."""

from __future__ import annotations

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from layers.models.base import metadata

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
    Column("id", Integer, primary_key=True),
    Column("slug", Text, nullable=False, unique=True),
    Column("incident_type", Text, nullable=False),
    Column("min_severity", SmallInteger, nullable=False, server_default=text("1")),
    Column("max_severity", SmallInteger, nullable=False, server_default=text("4")),
    Column("title_vi", Text, nullable=False),
    Column("title_en", Text, nullable=False),
    Column("current_version", Integer, nullable=False, server_default=text("1")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("incident_type IN " + str(INCIDENT_TYPES), name="type_known"),
    CheckConstraint("min_severity BETWEEN 1 AND 4 AND max_severity BETWEEN min_severity AND 4",
                    name="severity_band"),
)  # fmt: skip

# Never updated: an edit adds a version, and incidents keep the one they started with.
sop_version = Table(
    "sop_version",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("sop_id", Integer, ForeignKey("sop.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("steps", JSONB, nullable=False),
    Column("note", Text, nullable=False, server_default=""),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("sop_id", "version"),
)

incident = Table(
    "incident",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("type", Text, nullable=False),
    Column("severity", SmallInteger, nullable=False),
    Column("title", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("geom", Geometry("GEOMETRY", srid=4326, spatial_index=False), nullable=False),
    Column("radius_m", Double, nullable=False),
    Column("status", Text, nullable=False, server_default="new"),
    Column("commune_code", Text),
    Column("commune_name", Text, nullable=False, server_default=""),
    Column("commander", Text),
    Column("sop_version_id", Integer, ForeignKey("sop_version.id", ondelete="RESTRICT")),
    Column("opened_from", Text, nullable=False, server_default="map"),
    Column("opened_by", Text, nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("confirmed_at", DateTime(timezone=True)),
    Column("responding_at", DateTime(timezone=True)),
    Column("contained_at", DateTime(timezone=True)),
    Column("closed_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("type IN " + str(INCIDENT_TYPES), name="type_known"),
    CheckConstraint("status IN " + str(INCIDENT_STATUSES), name="status_known"),
    CheckConstraint("severity BETWEEN 1 AND 4", name="severity_range"),
    CheckConstraint("radius_m > 0", name="radius_positive"),
    Index("ix_incident_geom", "geom", postgresql_using="gist"),
    Index("ix_incident_status_opened_at", "status", "opened_at"),
    Index("ix_incident_commune_code", "commune_code"),
)

incident_link = Table(
    "incident_link",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column(
        "incident_id", BigInteger, ForeignKey("incident.id", ondelete="CASCADE"), nullable=False
    ),
    Column("kind", Text, nullable=False),
    Column("ref", Text, nullable=False),
    Column("title", Text, nullable=False, server_default=""),
    Column("geom", Geometry("GEOMETRY", srid=4326, spatial_index=False)),
    Column("at", DateTime(timezone=True)),
    Column("linked_by", Text, nullable=False),
    Column("linked_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("kind IN " + str(LINK_KINDS), name="kind_known"),
    UniqueConstraint("incident_id", "kind", "ref"),
    Index("ix_incident_link_kind_ref", "kind", "ref"),
)

# Append-only (a trigger of migration 0017 refuses UPDATE and DELETE of single rows).
incident_log = Table(
    "incident_log",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column(
        "incident_id", BigInteger, ForeignKey("incident.id", ondelete="CASCADE"), nullable=False
    ),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("from_status", Text),
    Column("to_status", Text),
    Column("detail", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Index("ix_incident_log_incident_id", "incident_id"),
    Index("ix_incident_log_at", "at", postgresql_using="brin"),
)

incident_task = Table(
    "incident_task",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column(
        "incident_id", BigInteger, ForeignKey("incident.id", ondelete="CASCADE"), nullable=False
    ),
    Column("step_no", Integer),
    Column("origin", Text, nullable=False, server_default="sop"),
    Column("title", Text, nullable=False),
    Column("detail", Text, nullable=False, server_default=""),
    Column("agency_code", Text),
    Column("agency_name", Text, nullable=False, server_default=""),
    Column("agency_kind", Text, nullable=False, server_default=""),
    Column("role", Text),
    Column("evidence", Text, nullable=False, server_default="none"),
    Column("sla_minutes", Integer, nullable=False),
    Column("status", Text, nullable=False, server_default="open"),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("acknowledged_at", DateTime(timezone=True)),
    Column("acknowledged_by", Text),
    Column("completed_at", DateTime(timezone=True)),
    Column("completed_by", Text),
    Column("escalated_at", DateTime(timezone=True)),
    Column("escalation_alert_id", BigInteger),
    CheckConstraint("status IN " + str(TASK_STATUSES), name="status_known"),
    CheckConstraint("origin IN ('sop','directive')", name="origin_known"),
    CheckConstraint("evidence IN ('none','note','photo')", name="evidence_known"),
    Index("ix_incident_task_incident_id", "incident_id"),
    Index("ix_incident_task_agency_code_status", "agency_code", "status"),
    Index("ix_incident_task_due_open", "due_at", postgresql_where=text("status IN ('open','acknowledged')")),
)  # fmt: skip

incident_task_note = Table(
    "incident_task_note",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column(
        "task_id", BigInteger, ForeignKey("incident_task.id", ondelete="CASCADE"), nullable=False
    ),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", Text, nullable=False),
    Column("note", Text, nullable=False, server_default=""),
    Column("photo", LargeBinary),
    Column("photo_type", Text),
    Index("ix_incident_task_note_task_id", "task_id"),
)
