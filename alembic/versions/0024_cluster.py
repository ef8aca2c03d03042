"""Beyond one machine (issue 23): the signing key shared by every API replica.

Revision ID: 0024_cluster
Revises: 0017_incidents
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa

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


def downgrade() -> None:
    op.drop_table("cluster_secret")
