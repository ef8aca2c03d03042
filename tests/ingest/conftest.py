"""Helpers for ingest tests: truth transforms through EPSG's own pipeline, and file writers."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import shapely
from pyproj.transformer import Transformer, TransformerGroup
from sqlalchemy import Engine, text

from ingest.pipeline import ImportOptions, ImportReport, run_import
from layers.settings import Settings

# Known WGS84 points inside Nghệ An: Vinh, Cửa Lò, Đô Lương, Con Cuông.
TRUTH_LONLAT = np.array(
    [[105.6813, 18.6796], [105.7195, 18.8148], [105.3216, 18.9005], [104.8826, 19.0522]]
)
NAMES = ["Vinh", "Cửa Lò", "Đô Lương", "Con Cuông"]


def epsg_transformer(src: str, dst: str) -> Transformer:
    """EPSG's pipeline through VN-2000 to WGS 84 (2) = EPSG:6960, chosen explicitly."""
    for t in TransformerGroup(src, dst, always_xy=True).transformers:
        if "6960" in json.dumps(t.to_json_dict()) or "VN-2000" not in t.description:
            return t
    raise AssertionError("no EPSG:6960 pipeline")


def to_srid(lonlat: np.ndarray, srid: int) -> np.ndarray:
    """WGS84 truth to a VN-2000 (or any) CRS with EPSG's own operation."""
    if srid == 4326:
        return lonlat.copy()
    t = epsg_transformer("EPSG:4326", f"EPSG:{srid}")
    x, y = t.transform(lonlat[:, 0], lonlat[:, 1])
    return np.column_stack([x, y])


def metres_apart(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Ground distance between lon/lat pairs (small distances)."""
    dx = (a[:, 0] - b[:, 0]) * 111_320.0 * np.cos(np.radians(b[:, 1]))
    dy = (a[:, 1] - b[:, 1]) * 110_574.0
    return np.hypot(dx, dy)


@pytest.fixture
def do_import(engine: Engine, settings: Settings) -> Callable[..., ImportReport]:
    """Run an import with options as keywords."""

    def run(path: Path, layer: str, **kw: object) -> ImportReport:
        return run_import(engine, settings, ImportOptions(path=path, layer=layer, **kw))  # type: ignore[arg-type]

    return run


@pytest.fixture
def layer_points(engine: Engine) -> Callable[[str], dict[str, tuple[float, float]]]:
    """name -> (lon, lat) of a point layer's features."""

    def read(slug: str) -> dict[str, tuple[float, float]]:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT f.properties->>'name', ST_X(f.geom), ST_Y(f.geom) FROM feature f "
                    "JOIN layer l ON l.id = f.layer_id WHERE l.slug = :s"
                ),
                {"s": slug},
            ).all()
        return {r[0]: (r[1], r[2]) for r in rows}

    return read


def points(coords: np.ndarray) -> np.ndarray:
    """Shapely points from an (n, 2) array."""
    return shapely.points(coords[:, 0], coords[:, 1])
