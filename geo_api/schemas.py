"""Response models shared by routers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from layers.features.registry import LayerInfo


class LayerOut(BaseModel):
    """A catalog entry as the API returns it."""

    slug: str
    title_vi: str
    title_en: str
    description: str
    sector: str
    geometry_type: str
    property_schema: dict[str, Any]
    default_style: dict[str, Any]
    source_system: str
    synthetic: bool
    license: str
    attribution: str
    time_field: str | None
    sensitive: bool
    kind: str = "vector"  # 'raster' layers (issue 20) are COGs: /api/rasters/{slug}
    name_field: str | None = None
    visibility: dict[str, Any] = {"access": "public", "roles": []}
    data_version: int
    updated_at: datetime
    feature_count: int | None
    bbox: tuple[float, float, float, float] | None
    time_extent: tuple[datetime, datetime] | None
    links: list[dict[str, str]]

    @classmethod
    def from_info(cls, info: LayerInfo) -> LayerOut:
        """Build from a registry LayerInfo."""
        data = info.model_dump()
        data["default_style"] = info.default_style.model_dump()
        data["links"] = [
            {
                "rel": "items",
                "href": f"/api/layers/{info.slug}/features",
                "type": "application/geo+json",
            },
            {"rel": "tiles", "href": f"/tiles/{info.slug}.json", "type": "application/json"},
        ]
        return cls.model_validate({k: v for k, v in data.items() if k in cls.model_fields})
