"""indicators tables (filled in by its issue).

Revision ID: 0006_indicators
Revises: 0005_reports_auth
Create Date: 2026-11-22
"""

from __future__ import annotations

revision = "0006_indicators"
down_revision = "0005_reports_auth"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
