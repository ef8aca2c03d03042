"""ingest tables (filled in by its issue).

Revision ID: 0002_ingest
Revises: 0001_foundation
Create Date: 2026-11-22
"""

from __future__ import annotations

revision = "0002_ingest"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
