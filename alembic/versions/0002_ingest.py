"""Ingest: rejects (quarantine), connector state, and progress/connector columns on batches.

Revision ID: 0002_ingest
Revises: 0001_foundation
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision = "0002_ingest"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None

JSONB_EMPTY = sa.text("'{}'::jsonb")


def upgrade() -> None:
    op.add_column("import_batch", sa.Column("connector", sa.Text))
    op.add_column(
        "import_batch",
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("1")),
    )
    op.add_column(
        "import_batch",
        sa.Column("progress", postgresql.JSONB, nullable=False, server_default=JSONB_EMPTY),
    )
    op.create_table(
        "import_reject",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column(
            "batch_id",
            sa.BigInteger,
            sa.ForeignKey("import_batch.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("row_number", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
        sa.Column("original", postgresql.JSONB, nullable=False, server_default=JSONB_EMPTY),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_index("ix_import_reject_batch_id", "import_reject", ["batch_id", "row_number"])
    op.create_table(
        "connector_state",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("cursor", postgresql.JSONB, nullable=False, server_default=JSONB_EMPTY),
        sa.Column("last_run_at", sa.DateTime(timezone=True)),
        sa.Column("last_status", sa.Text, nullable=False, server_default=""),
        sa.Column("last_batch_id", sa.BigInteger),
        sa.Column("failures", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_import_batch_layer_id", "import_batch", ["layer_id", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_import_batch_layer_id", table_name="import_batch")
    op.drop_table("connector_state")
    op.drop_index("ix_import_reject_batch_id", table_name="import_reject")
    op.drop_table("import_reject")
    op.drop_column("import_batch", "progress")
    op.drop_column("import_batch", "attempts")
    op.drop_column("import_batch", "connector")
