"""Saved map views per user (issue 18): the views list and the video-wall rotation.

Revision ID: 0015_map_views
Revises: 0010_source_key_partial
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0015_map_views"
down_revision = "0014_reports_workflow"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "map_view",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column(
            "user_id",
            sa.Integer,
            sa.ForeignKey("app_user.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("rotate_s", sa.Integer, nullable=False, server_default=sa.text("30")),
        sa.Column("position", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_index("uq_map_view_user_name", "map_view", ["user_id", "name"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_map_view_user_name", table_name="map_view")
    op.drop_table("map_view")
