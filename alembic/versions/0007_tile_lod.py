"""Tiles: partial GiST indexes of the features big enough to be drawn at zooms 12 and 10.

A low-zoom tile keeps only the lines/polygons that cover a pixel (`layers.features.tiles`); on a dense
cadastre almost none do, and without these indexes the tile query reads every parcel under the
tile to find them. Each predicate is `layers.features.tiles.TILE_SIZE_SQL >=` one pixel at its zoom, so
the planner proves it from any tile query at that zoom or lower. Partitions created later (new
layers, import swaps) get them from the partitioned parent.

Revision ID: 0007_tile_lod
Revises: 0006_indicators
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0007_tile_lod"
down_revision = "0006_indicators"
branch_labels = None
depends_on = None

# Verbatim the same as layers.features.tiles.TILE_SIZE_SQL and LOD_INDEX_MIN_DEG (a test checks).
TILE_SIZE_SQL = (
    "greatest(sqrt((ST_XMax(geom) - ST_XMin(geom)) * (ST_YMax(geom) - ST_YMin(geom))),"
    " (ST_XMax(geom) - ST_XMin(geom)) / 4, (ST_YMax(geom) - ST_YMin(geom)) / 4)"
)
# One pixel of a 256-px tile at zoom z, in degrees: 360 / 2**z / 256 (exact in binary).
LOD_INDEX_MIN_DEG = {12: "0.00034332275390625", 10: "0.001373291015625"}


def upgrade() -> None:
    for z, min_deg in LOD_INDEX_MIN_DEG.items():
        op.execute(
            f"CREATE INDEX ix_feature_geom_lod{z} ON feature USING gist (geom) "
            f"WHERE {TILE_SIZE_SQL} >= CAST({min_deg} AS double precision)"
        )


def downgrade() -> None:
    for z in LOD_INDEX_MIN_DEG:
        op.execute(f"DROP INDEX IF EXISTS ix_feature_geom_lod{z}")
