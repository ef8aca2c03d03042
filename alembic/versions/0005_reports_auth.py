"""reports_auth tables (filled in by its issue).

Revision ID: 0005_reports_auth
Revises: 0004_vision
Create Date: 2026-11-22
"""

from __future__ import annotations

revision = "0005_reports_auth"
down_revision = "0004_vision"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
