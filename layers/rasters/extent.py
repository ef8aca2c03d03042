"""Writing a flood extent as a vector layer (one MultiPolygon feature, replaced each time)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import shapely
from sqlalchemy import Connection

from layers.features.bulk import FeatureRow, upsert_features
from layers.features.registry import LayerSpec, LayerStyle, create_or_update_layer


def write_extent(
    conn: Connection, slug: str, geom: shapely.Geometry, properties: dict[str, Any], synthetic: bool
) -> int:
    """Replace the extent layer's content by this flood extent; returns the layer id."""
    spec = LayerSpec(
        slug=slug,
        title_vi="Vùng ngập (kết quả phân tích)",
        title_en="Flood extent (analysis result)",
        description="Written by POST /api/query/flood-exposure",
        sector="environment",
        geometry_type="MultiPolygon",
        synthetic=synthetic,
        default_style=LayerStyle(fill_color=(30, 100, 220, 140), line_color=(10, 60, 160, 220)),
    )
    layer_id = create_or_update_layer(conn, spec)
    rows = [] if geom.is_empty else [FeatureRow("extent", geom, properties, datetime.now(UTC))]
    upsert_features(conn, layer_id, rows, delete_missing=True)
    return layer_id
