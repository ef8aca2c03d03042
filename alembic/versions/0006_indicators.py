"""Indicators: definitions, subjects, observations (current value) and their revisions.

Revision ID: 0006_indicators
Revises: 0005_reports_auth
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0006_indicators"
down_revision = "0005_reports_auth"
branch_labels = None
depends_on = None


def _now() -> sa.TextClause:
    return sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "indicator",
        sa.Column("code", sa.Text, nullable=False),
        sa.Column("name_vi", sa.Text, nullable=False),
        sa.Column("name_en", sa.Text, nullable=False),
        sa.Column("unit", sa.Text, nullable=False, server_default=""),
        sa.Column("sector", sa.Text, nullable=False),
        sa.Column("source_system", sa.Text, nullable=False, server_default=""),
        sa.Column("frequency", sa.Text, nullable=False),
        sa.Column("rollup", sa.Text, nullable=False),
        sa.Column("numerator", sa.Text),
        sa.Column("denominator", sa.Text),
        sa.Column("scale", sa.Double, nullable=False, server_default=sa.text("1")),
        sa.Column("higher_is_better", sa.Boolean),
        sa.Column("subject_layer", sa.Text),
        sa.Column("stock", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.PrimaryKeyConstraint("code", name="pk_indicator"),
        sa.CheckConstraint(
            "frequency IN ('day','month','quarter','year','school_year')",
            name="ck_indicator_frequency_known",
        ),
        sa.CheckConstraint("rollup IN ('sum','mean','rate')", name="ck_indicator_rollup_known"),
        sa.CheckConstraint(
            "(rollup = 'rate') = (numerator IS NOT NULL AND denominator IS NOT NULL)",
            name="ck_indicator_rate_has_parts",
        ),
    )
    op.create_table(
        "indicator_subject",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("layer", sa.Text, nullable=False, server_default=""),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("commune_code", sa.Text),
        sa.Column("is_province", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.PrimaryKeyConstraint("id", name="pk_indicator_subject"),
        sa.UniqueConstraint("layer", "key", name="uq_indicator_subject_layer_key"),
    )
    op.create_index("ix_indicator_subject_commune_code", "indicator_subject", ["commune_code"])
    op.create_table(
        "indicator_observation",
        sa.Column("indicator_code", sa.Text, nullable=False),
        sa.Column("subject_id", sa.Integer, nullable=False),
        sa.Column("period_start", sa.Date, nullable=False),
        sa.Column("period_end", sa.Date, nullable=False),
        sa.Column("value", sa.Double, nullable=False),
        sa.Column("import_batch_id", sa.BigInteger),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.PrimaryKeyConstraint(
            "indicator_code", "subject_id", "period_start", name="pk_indicator_observation"
        ),
        sa.ForeignKeyConstraint(
            ["subject_id"],
            ["indicator_subject.id"],
            name="fk_indicator_observation_subject_id_indicator_subject",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["import_batch_id"],
            ["import_batch.id"],
            name="fk_indicator_observation_import_batch_id_import_batch",
            ondelete="SET NULL",
        ),
        sa.CheckConstraint(
            "period_end >= period_start", name="ck_indicator_observation_period_order"
        ),
    )
    op.create_index(
        "ix_indicator_observation_code_period",
        "indicator_observation",
        ["indicator_code", "period_start"],
    )
    op.create_table(
        "indicator_observation_revision",
        sa.Column("id", sa.BigInteger, nullable=False),
        sa.Column("indicator_code", sa.Text, nullable=False),
        sa.Column("subject_id", sa.Integer, nullable=False),
        sa.Column("period_start", sa.Date, nullable=False),
        sa.Column("period_end", sa.Date, nullable=False),
        sa.Column("value", sa.Double, nullable=False),
        sa.Column("import_batch_id", sa.BigInteger),
        sa.Column("written_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("replaced_by_batch_id", sa.BigInteger),
        sa.Column("replaced_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.PrimaryKeyConstraint("id", name="pk_indicator_observation_revision"),
    )
    op.create_index(
        "ix_indicator_observation_revision_key",
        "indicator_observation_revision",
        ["indicator_code", "subject_id", "period_start"],
    )
    op.create_table(
        "indicator_job_state",
        sa.Column("job", sa.Text, nullable=False),
        sa.Column("source_version", sa.BigInteger, nullable=False),
        sa.Column(
            "refreshed_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()
        ),
        sa.PrimaryKeyConstraint("job", name="pk_indicator_job_state"),
    )


def downgrade() -> None:
    op.drop_table("indicator_job_state")
    op.drop_table("indicator_observation_revision")
    op.drop_table("indicator_observation")
    op.drop_table("indicator_subject")
    op.drop_table("indicator")
