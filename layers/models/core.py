"""Catalog, features, administrative units and import batches."""

from __future__ import annotations

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from layers.models.base import metadata

layer = Table(
    "layer",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("slug", Text, nullable=False, unique=True),
    Column("title_vi", Text, nullable=False),
    Column("title_en", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("sector", Text, nullable=False),
    Column("geometry_type", Text, nullable=False),
    Column("property_schema", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("default_style", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("source_system", Text, nullable=False, server_default=""),
    Column("synthetic", Boolean, nullable=False, server_default=text("false")),
    Column("license", Text, nullable=False, server_default=""),
    Column("attribution", Text, nullable=False, server_default=""),
    Column("time_field", Text),
    Column("sensitive", Boolean, nullable=False, server_default=text("false")),
    # 'vector' (features in `feature`) or 'raster' (a COG described by raster_layer, 0016).
    Column("kind", Text, nullable=False, server_default="vector"),
    # The property naming a feature, and who may read the layer (LayerVisibility).
    Column("name_field", Text),
    Column(
        "visibility",
        JSONB,
        nullable=False,
        server_default=text("""'{"access": "public", "roles": []}'::jsonb"""),
    ),
    # Bumped on every content change; tile caches and H3 aggregates compare against it.
    Column("data_version", BigInteger, nullable=False, server_default=text("1")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("slug ~ '^[a-z][a-z0-9_]{1,62}$'", name="slug_format"),
    CheckConstraint(
        "geometry_type IN ('Point','MultiPoint','LineString','MultiLineString',"
        "'Polygon','MultiPolygon','Geometry')",
        name="geometry_type_known",
    ),
    CheckConstraint("kind IN ('vector','raster')", name="kind_known"),
)

import_batch = Table(
    "import_batch",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("layer_id", Integer, ForeignKey("layer.id", ondelete="SET NULL")),
    Column("source", Text, nullable=False),
    Column("kind", Text, nullable=False, server_default="file"),
    Column("actor", Text, nullable=False),
    Column("mode", Text, nullable=False, server_default="append"),
    Column("status", Text, nullable=False, server_default="running"),
    Column("started_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("finished_at", DateTime(timezone=True)),
    Column("counts", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("errors", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("report", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    CheckConstraint("status IN ('running','succeeded','failed','dry_run')", name="status_known"),
)

# LIST-partitioned by layer_id: each layer gets its own GiST index and statistics,
# so a million parcels do not slow queries on 150 hospitals. Partitions are created
# by layers.features.registry when a layer is created.
feature = Table(
    "feature",
    metadata,
    Column("id", BigInteger, nullable=False, server_default=text("nextval('feature_id_seq')")),
    Column("layer_id", Integer, ForeignKey("layer.id", ondelete="CASCADE"), nullable=False),
    Column("geom", Geometry("GEOMETRY", srid=4326, spatial_index=False), nullable=False),
    Column("properties", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("source_key", Text),
    Column("observed_at", DateTime(timezone=True)),
    Column("import_batch_id", BigInteger, ForeignKey("import_batch.id", ondelete="SET NULL")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # How big the shape looks in degrees (layers.features.tiles.TILE_SIZE_SQL); filled by the importer
    # or by the trigger of migration 0008_lod_size, and tested by the partial LOD indexes.
    Column("lod_size", Double),
    PrimaryKeyConstraint("layer_id", "id"),
    # Partial (0010): rows without a key are never in conflict, so they are not indexed.
    Index(
        "uq_feature_layer_id_source_key",
        "layer_id",
        "source_key",
        unique=True,
        postgresql_where=text("source_key IS NOT NULL"),
    ),
    Index("ix_feature_geom", "geom", postgresql_using="gist"),
    # Partial (0009): layers without a time field add nothing to it.
    Index(
        "ix_feature_observed_at",
        "layer_id",
        "observed_at",
        postgresql_where=text("observed_at IS NOT NULL"),
    ),
    postgresql_partition_by="LIST (layer_id)",
)

admin_unit = Table(
    "admin_unit",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("code", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("kind", Text, nullable=False, server_default=""),
    Column("level", Text, nullable=False),
    Column("parent_code", Text),
    Column("geom", Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=False),
    Column("population", BigInteger),
    Column("area_km2", Double),
    Column("valid_from", Date, nullable=False),
    Column("valid_to", Date),
    Column("properties", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    UniqueConstraint("code", "valid_from"),
    CheckConstraint("level IN ('province','commune')", name="level_known"),
    CheckConstraint("valid_to IS NULL OR valid_to > valid_from", name="validity_order"),
    Index("ix_admin_unit_geom", "geom", postgresql_using="gist"),
)
