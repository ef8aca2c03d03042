"""Features: a source key is unique within its layer, and rows without one are not indexed.

Layers imported without `--key` hold a NULL `source_key` in every row, and the unique
constraint indexed all of them: a sort of NULLs rebuilt on each import (0.4 s of a
1,000,000-parcel import). NULLs never conflict, so a partial unique index enforces exactly
the same rule; upserts name it with `ON CONFLICT (layer_id, source_key) WHERE source_key IS
NOT NULL`.

Revision ID: 0010_source_key_partial
Revises: 0009_observed_at_partial
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0010_source_key_partial"
down_revision = "0009_observed_at_partial"
branch_labels = None
depends_on = None

NAME = "uq_feature_layer_id_source_key"


def upgrade() -> None:
    op.execute(f"ALTER TABLE feature DROP CONSTRAINT {NAME}")
    op.execute(
        f"CREATE UNIQUE INDEX {NAME} ON feature (layer_id, source_key) WHERE source_key IS NOT NULL"
    )


def downgrade() -> None:
    op.execute(f"DROP INDEX IF EXISTS {NAME}")
    op.execute(f"ALTER TABLE feature ADD CONSTRAINT {NAME} UNIQUE (layer_id, source_key)")
