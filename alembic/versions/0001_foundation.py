"""Foundation: PostGIS, VN-2000 SRIDs, layer catalog, partitioned features, admin units, batches.

Revision ID: 0001_foundation
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import geoalchemy2
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op
from layers.features.crs import VN2000_TM3_LEGACY_SRIDS, VN2000_TM3_SRIDS, vn2000_spatial_ref_row

revision = "0001_foundation"
down_revision = None
branch_labels = None
depends_on = None

JSONB_EMPTY = sa.text("'{}'::jsonb")


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    _register_vn2000()

    op.create_table(
        "layer",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("slug", sa.Text, nullable=False),
        sa.Column("title_vi", sa.Text, nullable=False),
        sa.Column("title_en", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("sector", sa.Text, nullable=False),
        sa.Column("geometry_type", sa.Text, nullable=False),
        sa.Column("property_schema", postgresql.JSONB, nullable=False, server_default=JSONB_EMPTY),
        sa.Column("default_style", postgresql.JSONB, nullable=False, server_default=JSONB_EMPTY),
        sa.Column("source_system", sa.Text, nullable=False, server_default=""),
        sa.Column("synthetic", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("license", sa.Text, nullable=False, server_default=""),
        sa.Column("attribution", sa.Text, nullable=False, server_default=""),
        sa.Column("time_field", sa.Text),
        sa.Column("sensitive", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("data_version", sa.BigInteger, nullable=False, server_default=sa.text("1")),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.UniqueConstraint("slug", name="uq_layer_slug"),
        sa.CheckConstraint("slug ~ '^[a-z][a-z0-9_]{1,62}$'", name="ck_layer_slug_format"),
        sa.CheckConstraint(
            "geometry_type IN ('Point','MultiPoint','LineString','MultiLineString',"
            "'Polygon','MultiPolygon','Geometry')",
            name="ck_layer_geometry_type_known",
        ),
    )

    op.create_table(
        "import_batch",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("layer_id", sa.Integer, sa.ForeignKey("layer.id", ondelete="SET NULL")),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False, server_default="file"),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("mode", sa.Text, nullable=False, server_default="append"),
        sa.Column("status", sa.Text, nullable=False, server_default="running"),
        sa.Column(
            "started_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("counts", postgresql.JSONB, nullable=False, server_default=JSONB_EMPTY),
        sa.Column(
            "errors", postgresql.JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")
        ),
        sa.Column("report", postgresql.JSONB, nullable=False, server_default=JSONB_EMPTY),
        sa.CheckConstraint(
            "status IN ('running','succeeded','failed','dry_run')",
            name="ck_import_batch_status_known",
        ),
    )

    op.execute("CREATE SEQUENCE feature_id_seq AS bigint")
    op.create_table(
        "feature",
        sa.Column(
            "id", sa.BigInteger, nullable=False, server_default=sa.text("nextval('feature_id_seq')")
        ),
        sa.Column(
            "layer_id", sa.Integer, sa.ForeignKey("layer.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "geom",
            geoalchemy2.Geometry("GEOMETRY", srid=4326, spatial_index=False),
            nullable=False,
        ),
        sa.Column("properties", postgresql.JSONB, nullable=False, server_default=JSONB_EMPTY),
        sa.Column("source_key", sa.Text),
        sa.Column("observed_at", sa.DateTime(timezone=True)),
        sa.Column(
            "import_batch_id", sa.BigInteger, sa.ForeignKey("import_batch.id", ondelete="SET NULL")
        ),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("layer_id", "id", name="pk_feature"),
        sa.UniqueConstraint("layer_id", "source_key", name="uq_feature_layer_id_source_key"),
        postgresql_partition_by="LIST (layer_id)",
    )
    op.execute("ALTER SEQUENCE feature_id_seq OWNED BY feature.id")
    op.create_index("ix_feature_geom", "feature", ["geom"], postgresql_using="gist")
    op.create_index("ix_feature_observed_at", "feature", ["layer_id", "observed_at"])
    # Rows of a layer whose partition is missing still have a home.
    op.execute("CREATE TABLE feature_default PARTITION OF feature DEFAULT")

    op.create_table(
        "admin_unit",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False, server_default=""),
        sa.Column("level", sa.Text, nullable=False),
        sa.Column("parent_code", sa.Text),
        sa.Column(
            "geom",
            geoalchemy2.Geometry("MULTIPOLYGON", srid=4326, spatial_index=False),
            nullable=False,
        ),
        sa.Column("population", sa.BigInteger),
        sa.Column("area_km2", sa.Double),
        sa.Column("valid_from", sa.Date, nullable=False),
        sa.Column("valid_to", sa.Date),
        sa.Column("properties", postgresql.JSONB, nullable=False, server_default=JSONB_EMPTY),
        sa.UniqueConstraint("code", "valid_from", name="uq_admin_unit_code_valid_from"),
        sa.CheckConstraint("level IN ('province','commune')", name="ck_admin_unit_level_known"),
        sa.CheckConstraint(
            "valid_to IS NULL OR valid_to > valid_from", name="ck_admin_unit_validity_order"
        ),
    )
    op.create_index("ix_admin_unit_geom", "admin_unit", ["geom"], postgresql_using="gist")


def downgrade() -> None:
    op.drop_index("ix_admin_unit_geom", table_name="admin_unit")
    op.drop_table("admin_unit")
    op.drop_table("feature")  # drops every partition with it
    op.execute("DROP SEQUENCE IF EXISTS feature_id_seq")
    op.drop_table("import_batch")
    op.drop_table("layer")
    op.execute(
        sa.text(
            "DELETE FROM spatial_ref_sys WHERE srid = ANY(:srids) AND srtext LIKE '%TOWGS84%'"
        ).bindparams(srids=list(VN2000_TM3_SRIDS))
    )
    # The postgis extension stays: other databases objects may use it, and dropping it is not ours.


def _register_vn2000() -> None:
    """Add the VN-2000 TM-3 zones PostGIS 3.3 lacks, with the official 7-parameter shift."""
    bind = op.get_bind()
    existing = {
        row[0]
        for row in bind.execute(
            sa.text("SELECT srid FROM spatial_ref_sys WHERE srid = ANY(:srids)"),
            {"srids": list(VN2000_TM3_SRIDS + VN2000_TM3_LEGACY_SRIDS)},
        )
    }
    for srid in VN2000_TM3_SRIDS + VN2000_TM3_LEGACY_SRIDS:
        if srid in existing:
            continue
        row = vn2000_spatial_ref_row(srid)
        bind.execute(
            sa.text(
                "INSERT INTO spatial_ref_sys (srid, auth_name, auth_srid, srtext, proj4text) "
                "VALUES (:srid, :auth_name, :auth_srid, :srtext, :proj4text)"
            ),
            {
                "srid": row.srid,
                "auth_name": row.auth_name,
                "auth_srid": row.auth_srid,
                "srtext": row.srtext,
                "proj4text": row.proj4text,
            },
        )
