"""Reports and auth: users, field reports with photos/history/links, audit log, rate buckets.

Revision ID: 0005_reports_auth
Revises: 0004_vision
Create Date: 2026-11-22
"""

from __future__ import annotations

import geoalchemy2
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision = "0005_reports_auth"
down_revision = "0004_vision"
branch_labels = None
depends_on = None

ROLES = "('admin','leader','planner','operator','gis_staff','commune_staff','citizen')"
STATUSES = "('received','assigned','in_progress','resolved','rejected')"
RATINGS = "('hai_long','chap_nhan','khong_hai_long')"


def _now() -> sa.TextClause:
    return sa.text("now()")


def _point() -> geoalchemy2.Geometry:
    return geoalchemy2.Geometry("POINT", srid=4326, spatial_index=False)


def upgrade() -> None:
    op.create_table(
        "app_user",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.Text, nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column(
            "admin_units",
            postgresql.ARRAY(sa.Text),
            nullable=False,
            server_default=sa.text("'{}'::text[]"),
        ),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.text("true")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("last_login_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("username", name="uq_app_user_username"),
        sa.CheckConstraint("role IN " + ROLES, name="ck_app_user_role_known"),
        sa.CheckConstraint(
            "username ~ '^[A-Za-z0-9_.@-]{2,64}$'", name="ck_app_user_username_format"
        ),
    )
    op.create_table(
        "field_report",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("code", sa.Text, nullable=False),
        sa.Column("category", sa.Text, nullable=False),
        sa.Column("department", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("geom", _point(), nullable=False),
        sa.Column("location_source", sa.Text, nullable=False, server_default="point"),
        sa.Column("commune_code", sa.Text, nullable=False),
        sa.Column("commune_name", sa.Text, nullable=False, server_default=""),
        sa.Column("status", sa.Text, nullable=False, server_default="received"),
        sa.Column("citizen_user_id", sa.Integer, sa.ForeignKey("app_user.id", ondelete="SET NULL")),
        sa.Column("contact", postgresql.JSONB),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("assigned_to", sa.Text),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
        sa.Column("resolution_note", sa.Text),
        sa.Column("rating", sa.Text),
        sa.Column("rated_at", sa.DateTime(timezone=True)),
        sa.Column("duplicate_count", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("overdue_alerted_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.UniqueConstraint("code", name="uq_field_report_code"),
        sa.CheckConstraint("status IN " + STATUSES, name="ck_field_report_status_known"),
        sa.CheckConstraint(
            "rating IS NULL OR rating IN " + RATINGS, name="ck_field_report_rating_known"
        ),
    )
    op.create_index("ix_field_report_geom", "field_report", ["geom"], postgresql_using="gist")
    op.create_index(
        "ix_field_report_commune_code_received_at", "field_report", ["commune_code", "received_at"]
    )
    op.create_index(
        "ix_field_report_category_received_at", "field_report", ["category", "received_at"]
    )
    op.create_index("ix_field_report_citizen_user_id", "field_report", ["citizen_user_id"])
    op.create_table(
        "field_report_photo",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column(
            "report_id",
            sa.BigInteger,
            sa.ForeignKey("field_report.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("media_type", sa.Text, nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.CheckConstraint(
            "kind IN ('submission','resolution','duplicate')",
            name="ck_field_report_photo_kind_known",
        ),
    )
    op.create_index("ix_field_report_photo_report_id", "field_report_photo", ["report_id"])
    op.create_table(
        "field_report_event",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column(
            "report_id",
            sa.BigInteger,
            sa.ForeignKey("field_report.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("from_status", sa.Text),
        sa.Column("to_status", sa.Text),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
    )
    op.create_index("ix_field_report_event_report_id", "field_report_event", ["report_id"])
    op.create_index(
        "ix_field_report_event_at", "field_report_event", ["at"], postgresql_using="brin"
    )
    op.create_table(
        "field_report_link",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column(
            "report_id",
            sa.BigInteger,
            sa.ForeignKey("field_report.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("citizen_user_id", sa.Integer, sa.ForeignKey("app_user.id", ondelete="SET NULL")),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("geom", _point(), nullable=False),
        sa.Column("contact", postgresql.JSONB),
        sa.Column("distance_m", sa.Double, nullable=False),
    )
    op.create_index("ix_field_report_link_report_id", "field_report_link", ["report_id"])
    op.create_index(
        "ix_field_report_link_citizen_user_id", "field_report_link", ["citizen_user_id"]
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("method", sa.Text, nullable=False, server_default=""),
        sa.Column("path", sa.Text, nullable=False, server_default=""),
        sa.Column("status", sa.Integer),
        sa.Column("ip", sa.Text, nullable=False, server_default=""),
        sa.Column("user_agent", sa.Text, nullable=False, server_default=""),
        sa.Column(
            "details", postgresql.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")
        ),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"], postgresql_using="brin")
    op.create_index("ix_audit_log_actor_at", "audit_log", ["actor", "at"])
    op.create_table(
        "rate_bucket",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("tokens", sa.Double, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rate_bucket")
    op.drop_table("audit_log")
    op.drop_table("field_report_link")
    op.drop_table("field_report_event")
    op.drop_table("field_report_photo")
    op.drop_table("field_report")
    op.drop_table("app_user")
