"""Traffic layers: per-minute vehicle counts (written by vision and imports) and their H3 density."""

from __future__ import annotations

from sqlalchemy import Connection

from layers.features.registry import LayerSpec, LayerStyle, create_or_update_layer, list_layers
from layers.vision.events import TRAFFIC_COUNTS as TRAFFIC_COUNTS_LAYER

TRAFFIC_COUNTS = TRAFFIC_COUNTS_LAYER.slug
TRAFFIC_DENSITY = "traffic_density"
# Properties of traffic counter layers that hold a vehicle count, in order of preference.
COUNT_PROPERTIES = ("count", "vehicles", "volume")
DENSITY_MEASURE = "vehicles"
DENSITY_WIDTHS = (900, 3600)

# One definition, in layers/ (below both vision and analytics), used by both writers.
TRAFFIC_COUNTS_SPEC = TRAFFIC_COUNTS_LAYER

TRAFFIC_DENSITY_SPEC = LayerSpec(
    slug=TRAFFIC_DENSITY,
    title_vi="Mật độ giao thông (H3, 15 phút)",
    title_en="Traffic density (H3, 15 min)",
    description="Tổng số xe theo ô H3 và khung 15 phút, từ camera và bộ đếm giao thông.",
    sector="traffic",
    geometry_type="Point",
    property_schema={
        "type": "object",
        "properties": {DENSITY_MEASURE: {"type": "number"}},
        "additionalProperties": True,
    },
    default_style=LayerStyle(fill_color=(244, 67, 54, 180)),
    source_system="IOC Map analytics (derived)",
    time_field="minute",
)


def ensure_density_layer(conn: Connection) -> int | None:
    """Create the traffic_density catalog entry once any traffic counter layer exists."""
    layers = {info.slug: info for info in list_layers(conn, with_stats=False)}
    if TRAFFIC_DENSITY in layers:
        return layers[TRAFFIC_DENSITY].id
    if not any(i.sector == "traffic" and i.time_field for i in layers.values()):
        return None
    return create_or_update_layer(conn, TRAFFIC_DENSITY_SPEC)
