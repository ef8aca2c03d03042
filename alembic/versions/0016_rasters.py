"""Raster layers (issue 20): layer.kind and the raster_layer catalogue of COGs.

Revision ID: 0016_rasters
Revises: 0010_source_key_partial
Create Date: 2026-12-07
"""

from __future__ import annotations

import geoalchemy2
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from alembic import op

revision = "0016_rasters"
down_revision = "0015_map_views"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("layer", sa.Column("kind", sa.Text(), nullable=False, server_default="vector"))
    op.execute(
        "ALTER TABLE layer ADD CONSTRAINT ck_layer_kind_known CHECK (kind IN ('vector','raster'))"
    )
    op.create_table(
        "raster_layer",
        sa.Column(
            "layer_id",
            sa.Integer(),
            sa.ForeignKey("layer.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("bands", sa.Integer(), nullable=False),
        sa.Column("dtype", sa.Text(), nullable=False),
        sa.Column("nodata", sa.Double()),
        sa.Column("crs", sa.Text(), nullable=False),
        sa.Column("source_crs", sa.Text(), nullable=False, server_default=""),
        sa.Column("crs_source", sa.Text(), nullable=False, server_default="file"),
        sa.Column("transform", JSONB(), nullable=False),
        sa.Column("resolution_m", sa.Double(), nullable=False),
        sa.Column(
            "extent",
            geoalchemy2.Geometry("POLYGON", srid=4326, spatial_index=False),
            nullable=False,
        ),
        sa.Column("statistics", JSONB(), nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("band_names", JSONB(), nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("role", sa.Text(), nullable=False, server_default="generic"),
        sa.Column("colormap", sa.Text(), nullable=False, server_default="viridis"),
        sa.Column("rescale", JSONB()),
        sa.Column("units", sa.Text(), nullable=False, server_default=""),
        sa.Column("observed_at", sa.DateTime(timezone=True)),
        sa.Column(
            "import_batch_id",
            sa.BigInteger(),
            sa.ForeignKey("import_batch.id", ondelete="SET NULL"),
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )


def downgrade() -> None:
    op.drop_table("raster_layer")
    op.execute("ALTER TABLE layer DROP CONSTRAINT ck_layer_kind_known")
    op.drop_column("layer", "kind")
