"""Tiles/import: each feature's drawn size stored in `feature.lod_size`; LOD indexes test it.

The partial indexes of 0007_tile_lod recomputed a geometry's bbox size (about ten bbox reads)
for every row whenever they were built or maintained, which made attaching an imported
partition slow. The size is now computed once per row: by the importer (numpy, from the
coordinates it already holds, written in its COPY) or, for every other writer, by a BEFORE
INSERT OR UPDATE OF geom trigger that fills it when the writer did not. The two indexes keep
their names and thresholds; their predicates are `lod_size >= one pixel at z12 / z10`.

Revision ID: 0008_lod_size
Revises: 0007_tile_lod
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0008_lod_size"
down_revision = "0007_tile_lod"
branch_labels = None
depends_on = None

# Verbatim the same as layers.features.tiles.TILE_SIZE_SQL, LOD_SIZE_COLUMN and LOD_INDEX_MIN_DEG
# (a test checks).
TILE_SIZE_SQL = (
    "greatest(sqrt((ST_XMax(geom) - ST_XMin(geom)) * (ST_YMax(geom) - ST_YMin(geom))),"
    " (ST_XMax(geom) - ST_XMin(geom)) / 4, (ST_YMax(geom) - ST_YMin(geom)) / 4)"
)
LOD_SIZE_COLUMN = "lod_size"
# One pixel of a 256-px tile at zoom z, in degrees: 360 / 2**z / 256 (exact in binary).
LOD_INDEX_MIN_DEG = {12: "0.00034332275390625", 10: "0.001373291015625"}


def _create_indexes(predicate: str) -> None:
    for z, min_deg in LOD_INDEX_MIN_DEG.items():
        op.execute(
            f"CREATE INDEX ix_feature_geom_lod{z} ON feature USING gist (geom) "
            f"WHERE {predicate} >= CAST({min_deg} AS double precision)"
        )


def _drop_indexes() -> None:
    for z in LOD_INDEX_MIN_DEG:
        op.execute(f"DROP INDEX IF EXISTS ix_feature_geom_lod{z}")


def upgrade() -> None:
    op.execute(f"ALTER TABLE feature ADD COLUMN {LOD_SIZE_COLUMN} double precision")
    # The measure by itself, so the trigger, the backfill and the importer's fix-ups agree.
    op.execute(
        "CREATE FUNCTION feature_lod_size(geom geometry) RETURNS double precision "
        f"LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN {TILE_SIZE_SQL}"
    )
    # Fills the size only when the writer gave none (INSERT) or left it as it was while
    # changing geom (UPDATE), so the importer's precomputed values cost nothing here.
    op.execute(
        """
        CREATE FUNCTION feature_fill_lod_size() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                IF NEW.lod_size IS NULL THEN
                    NEW.lod_size := feature_lod_size(NEW.geom);
                END IF;
            ELSIF NEW.lod_size IS NOT DISTINCT FROM OLD.lod_size THEN
                NEW.lod_size := feature_lod_size(NEW.geom);
            END IF;
            RETURN NEW;
        END
        $$
        """
    )
    _drop_indexes()
    op.execute(f"UPDATE feature SET {LOD_SIZE_COLUMN} = feature_lod_size(geom)")  # noqa: S608
    # Cloned onto every partition, including ones created or attached later.
    op.execute(
        "CREATE TRIGGER feature_lod_size BEFORE INSERT OR UPDATE OF geom ON feature "
        "FOR EACH ROW EXECUTE FUNCTION feature_fill_lod_size()"
    )
    _create_indexes(LOD_SIZE_COLUMN)


def downgrade() -> None:
    _drop_indexes()
    op.execute("DROP TRIGGER IF EXISTS feature_lod_size ON feature")
    op.execute("DROP FUNCTION IF EXISTS feature_fill_lod_size()")
    op.execute("DROP FUNCTION IF EXISTS feature_lod_size(geometry)")
    op.execute(f"ALTER TABLE feature DROP COLUMN IF EXISTS {LOD_SIZE_COLUMN}")
    _create_indexes(TILE_SIZE_SQL)
