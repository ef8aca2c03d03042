"""Features: the time index holds only rows that have a time.

Most layers (parcels, schools, communes…) have no time field, so every row of theirs had a
NULL `observed_at` in `ix_feature_observed_at`: an index nobody can use, built again on each
import (0.7 s of a 1,000,000-parcel import). Every query on time bounds it (`>=`, `<=`,
BETWEEN) or takes min/max, which imply `observed_at IS NOT NULL`, so the partial index serves
them all.

Revision ID: 0009_observed_at_partial
Revises: 0008_lod_size
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0009_observed_at_partial"
down_revision = "0008_lod_size"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_feature_observed_at")
    op.execute(
        "CREATE INDEX ix_feature_observed_at ON feature (layer_id, observed_at) "
        "WHERE observed_at IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_feature_observed_at")
    op.execute("CREATE INDEX ix_feature_observed_at ON feature (layer_id, observed_at)")
