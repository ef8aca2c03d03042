"""Analytics: H3 aggregates with refresh state, alert rules and alerts.

Revision ID: 0003_analytics
Revises: 0002_ingest
Create Date: 2026-11-22
"""

from __future__ import annotations

import geoalchemy2
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision = "0003_analytics"
down_revision = "0002_ingest"
branch_labels = None
depends_on = None

JSONB_EMPTY = sa.text("'{}'::jsonb")


def _layer_fk() -> sa.Column[int]:
    return sa.Column(
        "layer_id", sa.Integer, sa.ForeignKey("layer.id", ondelete="CASCADE"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "h3_agg",
        _layer_fk(),
        sa.Column("res", sa.SmallInteger, nullable=False),
        sa.Column("bucket_s", sa.Integer, nullable=False),
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cell", sa.BigInteger, nullable=False),
        sa.Column("count", sa.Double, nullable=False),
        sa.Column("sums", postgresql.ARRAY(sa.Double), nullable=False),
        sa.Column("nvals", postgresql.ARRAY(sa.Double), nullable=False),
        sa.PrimaryKeyConstraint("layer_id", "res", "bucket_s", "bucket", "cell", name="pk_h3_agg"),
    )
    op.create_table(
        "h3_state",
        sa.Column(
            "layer_id",
            sa.Integer,
            sa.ForeignKey("layer.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("measures", postgresql.ARRAY(sa.Text), nullable=False),
        sa.Column("source_versions", postgresql.JSONB, nullable=False, server_default=JSONB_EMPTY),
        sa.Column("spec_hash", sa.Text, nullable=False, server_default=""),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("full_refreshed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "h3_feature_state",
        _layer_fk(),
        sa.Column("feature_id", sa.BigInteger, nullable=False),
        sa.Column("source_layer_id", sa.Integer, nullable=False),
        sa.Column("min_x", sa.Double, nullable=False),
        sa.Column("min_y", sa.Double, nullable=False),
        sa.Column("max_x", sa.Double, nullable=False),
        sa.Column("max_y", sa.Double, nullable=False),
        sa.Column("t", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("layer_id", "feature_id", name="pk_h3_feature_state"),
    )
    op.create_index(
        "ix_h3_feature_state_source", "h3_feature_state", ["source_layer_id", "feature_id"]
    )
    op.create_table(
        "alert_rule",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("slug", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.text("true")),
        sa.Column("severity", sa.Text, nullable=False),
        sa.Column("spec", postgresql.JSONB, nullable=False),
        sa.Column("last_evaluated_at", sa.DateTime(timezone=True)),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.UniqueConstraint("slug", name="uq_alert_rule_slug"),
        sa.CheckConstraint(
            "severity IN ('info','warning','critical')", name="ck_alert_rule_severity_known"
        ),
    )
    op.create_table(
        "alert",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column(
            "rule_id",
            sa.Integer,
            sa.ForeignKey("alert_rule.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("dedup_key", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="open"),
        sa.Column("severity", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("area_kind", sa.Text, nullable=False),
        sa.Column("area_ref", sa.Text, nullable=False),
        sa.Column(
            "geom",
            geoalchemy2.Geometry("GEOMETRY", srid=4326, spatial_index=False),
        ),
        sa.Column("value", sa.Double),
        sa.Column("threshold", sa.Double),
        sa.Column("evidence", postgresql.JSONB, nullable=False, server_default=JSONB_EMPTY),
        sa.Column("window_start", sa.DateTime(timezone=True)),
        sa.Column("window_end", sa.DateTime(timezone=True)),
        sa.Column(
            "first_seen_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.Column(
            "last_seen_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True)),
        sa.Column("acknowledged_by", sa.Text),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
        sa.Column("resolved_by", sa.Text),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.CheckConstraint(
            "status IN ('open','acknowledged','resolved')", name="ck_alert_status_known"
        ),
    )
    op.create_index(
        "uq_alert_open_key",
        "alert",
        ["rule_id", "dedup_key"],
        unique=True,
        postgresql_where=sa.text("status <> 'resolved'"),
    )
    op.create_index("ix_alert_status_seen", "alert", ["status", "last_seen_at"])
    op.create_index("ix_alert_geom", "alert", ["geom"], postgresql_using="gist")


def downgrade() -> None:
    op.drop_table("alert")
    op.drop_table("alert_rule")
    op.drop_table("h3_feature_state")
    op.drop_table("h3_state")
    op.drop_table("h3_agg")
