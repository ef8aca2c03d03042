"""Beyond one machine (issue 23): the signing key shared by every API replica, and event ids
that make broker redeliveries idempotent.

Revision ID: 0024_cluster
Revises: 0017_incidents
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID

from alembic import op

revision = "0024_cluster"
down_revision = "0017_incidents"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cluster_secret",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.add_column("detection_event", sa.Column("event_uid", UUID(as_uuid=True)))
    # On the partitioned parent: PostgreSQL creates it on every partition, present and future.
    op.create_index(
        "uq_detection_event_uid", "detection_event", ["event_uid", "observed_at"], unique=True
    )


def downgrade() -> None:
    op.drop_index("uq_detection_event_uid", table_name="detection_event")
    op.drop_column("detection_event", "event_uid")
    op.drop_table("cluster_secret")
