"""Tables of the analytics area: H3 aggregates with refresh state, alert rules and alerts."""

from __future__ import annotations

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from layers.models.base import metadata

# One row per (layer, resolution, bucket width, bucket start, cell). bucket_s 0 is the
# all-time bucket of layers without time; sums/nvals align with h3_state.measures.
h3_agg = Table(
    "h3_agg",
    metadata,
    Column("layer_id", Integer, ForeignKey("layer.id", ondelete="CASCADE"), nullable=False),
    Column("res", SmallInteger, nullable=False),
    Column("bucket_s", Integer, nullable=False),
    Column("bucket", DateTime(timezone=True), nullable=False),
    Column("cell", BigInteger, nullable=False),
    Column("count", Double, nullable=False),
    Column("sums", ARRAY(Double), nullable=False),
    Column("nvals", ARRAY(Double), nullable=False),
    PrimaryKeyConstraint("layer_id", "res", "bucket_s", "bucket", "cell"),
)

# What the aggregates of a layer reflect: the measures, each source layer's data_version,
# and when the last refresh read the features (changed rows are found by updated_at).
h3_state = Table(
    "h3_state",
    metadata,
    Column("layer_id", Integer, ForeignKey("layer.id", ondelete="CASCADE"), primary_key=True),
    Column("measures", ARRAY(Text), nullable=False),
    Column("source_versions", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("spec_hash", Text, nullable=False, server_default=""),
    Column("refreshed_at", DateTime(timezone=True), nullable=False),
    Column("full_refreshed_at", DateTime(timezone=True), nullable=False),
)

# Where each aggregated feature was at the last refresh (bbox and time): incremental
# refresh needs the old place of moved or deleted features to know which cells to redo.
h3_feature_state = Table(
    "h3_feature_state",
    metadata,
    Column("layer_id", Integer, ForeignKey("layer.id", ondelete="CASCADE"), nullable=False),
    Column("feature_id", BigInteger, nullable=False),
    Column("source_layer_id", Integer, nullable=False),
    Column("min_x", Double, nullable=False),
    Column("min_y", Double, nullable=False),
    Column("max_x", Double, nullable=False),
    Column("max_y", Double, nullable=False),
    Column("t", DateTime(timezone=True)),
    PrimaryKeyConstraint("layer_id", "feature_id"),
    Index("ix_h3_feature_state_source", "source_layer_id", "feature_id"),
)

alert_rule = Table(
    "alert_rule",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("slug", Text, nullable=False, unique=True),
    Column("name", Text, nullable=False),
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    Column("severity", Text, nullable=False),
    Column("spec", JSONB, nullable=False),
    Column("last_evaluated_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("severity IN ('info','warning','critical')", name="severity_known"),
)

alert = Table(
    "alert",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("rule_id", Integer, ForeignKey("alert_rule.id", ondelete="CASCADE"), nullable=False),
    Column("dedup_key", Text, nullable=False),
    Column("status", Text, nullable=False, server_default="open"),
    Column("severity", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("area_kind", Text, nullable=False),
    Column("area_ref", Text, nullable=False),
    Column("geom", Geometry("GEOMETRY", srid=4326, spatial_index=False)),
    Column("value", Double),
    Column("threshold", Double),
    Column("evidence", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("window_start", DateTime(timezone=True)),
    Column("window_end", DateTime(timezone=True)),
    Column("first_seen_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_seen_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("acknowledged_at", DateTime(timezone=True)),
    Column("acknowledged_by", Text),
    Column("resolved_at", DateTime(timezone=True)),
    Column("resolved_by", Text),
    Column("note", Text, nullable=False, server_default=""),
    CheckConstraint("status IN ('open','acknowledged','resolved')", name="status_known"),
    # Deduplication: at most one unresolved alert per rule and key.
    Index(
        "uq_alert_open_key",
        "rule_id",
        "dedup_key",
        unique=True,
        postgresql_where=text("status <> 'resolved'"),
    ),
    Index("ix_alert_status_seen", "status", "last_seen_at"),
    Index("ix_alert_geom", "geom", postgresql_using="gist"),
)
