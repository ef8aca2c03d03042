"""Raster layers (issue 20): the catalogue row of each COG in the state directory."""

from __future__ import annotations

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Double,
    ForeignKey,
    Integer,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from layers.models.base import metadata

# One row per layer of kind 'raster'. The pixels live in a Cloud-Optimized GeoTIFF under
# STATE_DIR/rasters/<slug>/<batch>.tif; the row is switched to a new file in the same
# transaction that records the import batch, so a killed import leaves the old file in use.
raster_layer = Table(
    "raster_layer",
    metadata,
    Column("layer_id", Integer, ForeignKey("layer.id", ondelete="CASCADE"), primary_key=True),
    Column("path", Text, nullable=False),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("bands", Integer, nullable=False),
    Column("dtype", Text, nullable=False),
    Column("nodata", Double),
    Column("crs", Text, nullable=False),
    Column("source_crs", Text, nullable=False, server_default=""),
    Column("crs_source", Text, nullable=False, server_default="file"),
    Column("transform", JSONB, nullable=False),
    Column("resolution_m", Double, nullable=False),
    Column("extent", Geometry("POLYGON", srid=4326, spatial_index=False), nullable=False),
    Column("statistics", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("band_names", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("role", Text, nullable=False, server_default="generic"),
    Column("colormap", Text, nullable=False, server_default="viridis"),
    Column("rescale", JSONB),
    Column("units", Text, nullable=False, server_default=""),
    Column("observed_at", DateTime(timezone=True)),
    Column("import_batch_id", BigInteger, ForeignKey("import_batch.id", ondelete="SET NULL")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
