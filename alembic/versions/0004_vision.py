"""vision tables (filled in by its issue).

Revision ID: 0004_vision
Revises: 0003_analytics
Create Date: 2026-11-22
"""

from __future__ import annotations

revision = "0004_vision"
down_revision = "0003_analytics"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
