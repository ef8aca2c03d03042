"""The configured province's boundary: from the database when loaded, else the bundled file."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import shapely
from sqlalchemy import Connection

from layers.features.gazetteer import province_boundary_wkb
from layers.settings import Settings

DATA_DIR = Path(__file__).resolve().parent.parent / "layers" / "data"

# Degrees per metre at the equator; the tolerance is small, so a rough factor is enough.
_DEG_PER_M = 1.0 / 111_320.0


@lru_cache(maxsize=8)
def bundled_boundary(province_code: str) -> shapely.Geometry | None:
    """The province polygon shipped in layers/data (WGS84), if the province has one."""
    for path in DATA_DIR.glob(f"*/province-{province_code}.json"):
        doc = json.loads(path.read_text(encoding="utf-8"))
        record = doc.get("province", doc)
        polygons = record["polygons"]
        if isinstance(polygons, str):
            polygons = json.loads(polygons)
        # Either one ring list [[x, y], ...] or a list of rings / polygons.
        if polygons and isinstance(polygons[0][0], int | float):
            polygons = [polygons]
        parts: list[shapely.Geometry] = []
        for ring in polygons:
            if ring and isinstance(ring[0][0], list):
                parts.extend(shapely.Polygon(r) for r in ring)
            else:
                parts.append(shapely.Polygon(ring))
        geom = shapely.union_all(shapely.make_valid(parts))
        polygons_only = [
            g for g in shapely.get_parts(geom) if g.geom_type in ("Polygon", "MultiPolygon")
        ]
        return shapely.union_all(polygons_only)
    return None


def province_boundary(settings: Settings, conn: Connection | None = None) -> shapely.Geometry:
    """The province boundary in WGS84: admin_unit or admin_province in the DB, else bundled."""
    if conn is not None:
        row = province_boundary_wkb(conn, settings.province_code)
        if row is not None:
            return shapely.from_wkb(row)
    geom = bundled_boundary(settings.province_code)
    if geom is None:
        raise FileNotFoundError(
            f"no boundary for province {settings.province_code}: load admin units first"
        )
    return geom


def tolerant_boundary(boundary: shapely.Geometry, tolerance_m: float) -> shapely.Geometry:
    """The boundary grown by `tolerance_m` (simplified boundaries cut off the coast), prepared."""
    grown = shapely.buffer(boundary, tolerance_m * _DEG_PER_M, quad_segs=2)
    shapely.prepare(grown)
    return grown
