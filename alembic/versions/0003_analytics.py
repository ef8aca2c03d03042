"""analytics tables (filled in by its issue).

Revision ID: 0003_analytics
Revises: 0002_ingest
Create Date: 2026-11-22
"""

from __future__ import annotations

revision = "0003_analytics"
down_revision = "0002_ingest"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
