"""Helpers for analytics tests: synthetic layers written through layers.features.bulk."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine

from layers.features.bulk import FeatureRow, upsert_features
from layers.features.registry import LayerSpec, create_or_update_layer

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def point_spec(slug: str, timed: bool = True, sector: str = "feedback") -> LayerSpec:
    """A point layer with a numeric `value` property."""
    return LayerSpec(
        slug=slug,
        title_vi=slug,
        title_en=slug,
        sector=sector,  # type: ignore[arg-type]
        geometry_type="Point",
        property_schema={
            "type": "object",
            "properties": {"value": {"type": "number"}, "kind": {"type": "string"}},
        },
        time_field="t" if timed else None,
    )


MakeLayer = Callable[[LayerSpec, Sequence[FeatureRow]], int]


@pytest.fixture
def make_layer(engine: Engine) -> MakeLayer:
    """Create (or update) a layer and write rows to it; returns the layer id."""

    def make(spec: LayerSpec, rows: Sequence[FeatureRow]) -> int:
        with engine.begin() as conn:
            lid = create_or_update_layer(conn, spec)
            if rows:
                upsert_features(conn, lid, rows)
        return lid

    return make
