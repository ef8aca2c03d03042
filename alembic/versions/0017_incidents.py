"""Incident command (issue 21): SOPs with versions, incidents, links, log, tasks; agency_staff.

Revision ID: 0017_incidents
Revises: 0010_source_key_partial
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import JSONB

from alembic import op

revision = "0017_incidents"
down_revision = "0016_rasters"
branch_labels = None
depends_on = None

TYPES = (
    "('flood','fire','traffic_accident','crowd','infrastructure','health','environment','other')"
)
OLD_ROLES = "('admin','leader','planner','operator','gis_staff','commune_staff','citizen')"
NEW_ROLES = (
    "('admin','leader','planner','operator','gis_staff','commune_staff','citizen','agency_staff')"
)


def _now() -> sa.TextClause:
    return sa.text("now()")


def _ts(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _drop_role_check() -> None:
    # The naming convention prefixed 0005's name; find the role check by what it checks.
    op.execute(
        """
        DO $$ DECLARE c text; BEGIN
          FOR c IN SELECT conname FROM pg_constraint
                   WHERE conrelid = 'app_user'::regclass AND contype = 'c'
                     AND pg_get_constraintdef(oid) LIKE '%role%' LOOP
            EXECUTE format('ALTER TABLE app_user DROP CONSTRAINT %I', c);
          END LOOP;
        END $$;
        """
    )


def upgrade() -> None:
    _drop_role_check()
    op.execute(
        f"ALTER TABLE app_user ADD CONSTRAINT ck_app_user_role_known CHECK (role IN {NEW_ROLES})"
    )
    op.create_table(
        "sop",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("slug", sa.Text, nullable=False),
        sa.Column("incident_type", sa.Text, nullable=False),
        sa.Column("min_severity", sa.SmallInteger, nullable=False, server_default=sa.text("1")),
        sa.Column("max_severity", sa.SmallInteger, nullable=False, server_default=sa.text("4")),
        sa.Column("title_vi", sa.Text, nullable=False),
        sa.Column("title_en", sa.Text, nullable=False),
        sa.Column("current_version", sa.Integer, nullable=False, server_default=sa.text("1")),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.UniqueConstraint("slug", name="uq_sop_slug"),
        sa.CheckConstraint(f"incident_type IN {TYPES}", name="ck_sop_type_known"),
        sa.CheckConstraint(
            "min_severity BETWEEN 1 AND 4 AND max_severity BETWEEN min_severity AND 4",
            name="ck_sop_severity_band",
        ),
    )
    op.create_table(
        "sop_version",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sop_id", sa.Integer, sa.ForeignKey("sop.id", ondelete="CASCADE", name="fk_sop_version_sop_id_sop"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("steps", JSONB, nullable=False),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.UniqueConstraint("sop_id", "version", name="uq_sop_version_sop_id_version"),
    )  # fmt: skip
    op.create_table(
        "incident",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("severity", sa.SmallInteger, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("geom", Geometry("GEOMETRY", srid=4326, spatial_index=False), nullable=False),
        sa.Column("radius_m", sa.Double, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="new"),
        sa.Column("commune_code", sa.Text),
        sa.Column("commune_name", sa.Text, nullable=False, server_default=""),
        sa.Column("commander", sa.Text),
        sa.Column("sop_version_id", sa.Integer, sa.ForeignKey("sop_version.id", ondelete="RESTRICT", name="fk_incident_sop_version_id_sop_version")),
        sa.Column("opened_from", sa.Text, nullable=False, server_default="map"),
        sa.Column("opened_by", sa.Text, nullable=False),
        _ts("opened_at", False),
        _ts("confirmed_at"),
        _ts("responding_at"),
        _ts("contained_at"),
        _ts("closed_at"),
        _ts("updated_at", False),
        sa.CheckConstraint(f"type IN {TYPES}", name="ck_incident_type_known"),
        sa.CheckConstraint(
            "status IN ('new','confirmed','responding','contained','closed','false_alarm')",
            name="ck_incident_status_known",
        ),
        sa.CheckConstraint("severity BETWEEN 1 AND 4", name="ck_incident_severity_range"),
        sa.CheckConstraint("radius_m > 0", name="ck_incident_radius_positive"),
    )  # fmt: skip
    op.create_index("ix_incident_geom", "incident", ["geom"], postgresql_using="gist")
    op.create_index("ix_incident_status_opened_at", "incident", ["status", "opened_at"])
    op.create_index("ix_incident_commune_code", "incident", ["commune_code"])
    op.create_table(
        "incident_link",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("incident_id", sa.BigInteger, sa.ForeignKey("incident.id", ondelete="CASCADE", name="fk_incident_link_incident_id_incident"), nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("ref", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False, server_default=""),
        sa.Column("geom", Geometry("GEOMETRY", srid=4326, spatial_index=False)),
        _ts("at"),
        sa.Column("linked_by", sa.Text, nullable=False),
        _ts("linked_at", False),
        sa.CheckConstraint("kind IN ('alert','report','event','reading')", name="ck_incident_link_kind_known"),
        sa.UniqueConstraint("incident_id", "kind", "ref", name="uq_incident_link_incident_id_kind_ref"),
    )  # fmt: skip
    op.create_index("ix_incident_link_kind_ref", "incident_link", ["kind", "ref"])
    op.create_table(
        "incident_log",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("incident_id", sa.BigInteger, sa.ForeignKey("incident.id", ondelete="CASCADE", name="fk_incident_log_incident_id_incident"), nullable=False),
        _ts("at", False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("from_status", sa.Text),
        sa.Column("to_status", sa.Text),
        sa.Column("detail", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    )  # fmt: skip
    op.create_index("ix_incident_log_incident_id", "incident_log", ["incident_id"])
    op.create_index("ix_incident_log_at", "incident_log", ["at"], postgresql_using="brin")
    # The log is evidence: rows are never changed. Deleting the incident itself (cascade) is
    # the only way rows leave, so only UPDATE is refused outright.
    op.execute(
        """
        CREATE FUNCTION incident_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          RAISE EXCEPTION 'incident_log is append-only';
        END $$;
        CREATE TRIGGER incident_log_no_update BEFORE UPDATE ON incident_log
          FOR EACH ROW EXECUTE FUNCTION incident_log_append_only();
        """
    )
    op.create_table(
        "incident_task",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("incident_id", sa.BigInteger, sa.ForeignKey("incident.id", ondelete="CASCADE", name="fk_incident_task_incident_id_incident"), nullable=False),
        sa.Column("step_no", sa.Integer),
        sa.Column("origin", sa.Text, nullable=False, server_default="sop"),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
        sa.Column("agency_code", sa.Text),
        sa.Column("agency_name", sa.Text, nullable=False, server_default=""),
        sa.Column("agency_kind", sa.Text, nullable=False, server_default=""),
        sa.Column("role", sa.Text),
        sa.Column("evidence", sa.Text, nullable=False, server_default="none"),
        sa.Column("sla_minutes", sa.Integer, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="open"),
        sa.Column("created_by", sa.Text, nullable=False),
        _ts("created_at", False),
        _ts("due_at", False),
        _ts("acknowledged_at"),
        sa.Column("acknowledged_by", sa.Text),
        _ts("completed_at"),
        sa.Column("completed_by", sa.Text),
        _ts("escalated_at"),
        sa.Column("escalation_alert_id", sa.BigInteger),
        sa.CheckConstraint("status IN ('open','acknowledged','done','cancelled')", name="ck_incident_task_status_known"),
        sa.CheckConstraint("origin IN ('sop','directive')", name="ck_incident_task_origin_known"),
        sa.CheckConstraint("evidence IN ('none','note','photo')", name="ck_incident_task_evidence_known"),
    )  # fmt: skip
    op.create_index("ix_incident_task_incident_id", "incident_task", ["incident_id"])
    op.create_index(
        "ix_incident_task_agency_code_status", "incident_task", ["agency_code", "status"]
    )
    op.create_index(
        "ix_incident_task_due_open",
        "incident_task",
        ["due_at"],
        postgresql_where=sa.text("status IN ('open','acknowledged')"),
    )
    op.create_table(
        "incident_task_note",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("task_id", sa.BigInteger, sa.ForeignKey("incident_task.id", ondelete="CASCADE", name="fk_incident_task_note_task_id_incident_task"), nullable=False),
        _ts("at", False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.Column("photo", sa.LargeBinary),
        sa.Column("photo_type", sa.Text),
    )  # fmt: skip
    op.create_index("ix_incident_task_note_task_id", "incident_task_note", ["task_id"])


def downgrade() -> None:
    for table in ("incident_task_note", "incident_task", "incident_log", "incident_link"):
        op.drop_table(table)
    op.execute("DROP FUNCTION IF EXISTS incident_log_append_only() CASCADE")
    for table in ("incident", "sop_version", "sop"):
        op.drop_table(table)
    op.execute("DELETE FROM app_user WHERE role = 'agency_staff'")
    _drop_role_check()
    op.execute(
        f"ALTER TABLE app_user ADD CONSTRAINT ck_app_user_role_known CHECK (role IN {OLD_ROLES})"
    )
