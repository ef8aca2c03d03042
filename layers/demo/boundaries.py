"""Real 2025 boundaries of Nghệ An from the bundled vietnam-3d-map JSON, repaired, none dropped."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import shapely
from shapely.geometry import MultiPolygon, Polygon

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "nghe-an"
WARDS_FILE = DATA_DIR / "wards-2025.json"
PROVINCE_FILE = DATA_DIR / "province-40.json"


@dataclass(frozen=True)
class Ward:
    """One post-reform commune (xã) or ward (phường)."""

    code: str
    name: str
    kind: str
    population: int
    area_km2: float
    density: float
    center: tuple[float, float]
    geometry: MultiPolygon
    repaired: bool

    @property
    def is_urban(self) -> bool:
        """Phường are urban wards; xã are rural communes."""
        return self.kind == "Phường"


@dataclass(frozen=True)
class Province:
    """The province outline and its headline figures."""

    code: str
    name: str
    population: int
    area_km2: float
    geometry: MultiPolygon


def rings_to_multipolygon(rings: list[list[list[float]]]) -> tuple[MultiPolygon, bool]:
    """Build a valid MultiPolygon from [lon, lat] rings; returns it and whether repair was needed.

    Each ring is one part. Self-intersecting rings are repaired with make_valid's 'structure'
    method, which keeps the enclosed area instead of dropping bow-tie lobes.
    """
    parts: list[Polygon] = []
    repaired = False
    for ring in rings:
        poly = Polygon(ring)
        if poly.is_valid:
            parts.append(poly)
            continue
        repaired = True
        fixed = shapely.make_valid(poly, method="structure", keep_collapsed=False)
        parts.extend(_polygons_of(fixed))
    merged = shapely.union_all(parts) if len(parts) > 1 else parts[0]
    polys = _polygons_of(merged)
    return MultiPolygon(polys), repaired


def _polygons_of(geom: shapely.Geometry) -> list[Polygon]:
    if isinstance(geom, Polygon):
        return [geom] if not geom.is_empty else []
    if isinstance(geom, MultiPolygon):
        return list(geom.geoms)
    out: list[Polygon] = []
    for part in getattr(geom, "geoms", []):
        out.extend(_polygons_of(part))
    return out


@lru_cache(maxsize=1)
def load_wards() -> tuple[Ward, ...]:
    """All 130 wards, ordered by code, with invalid rings repaired."""
    data = json.loads(WARDS_FILE.read_text(encoding="utf-8"))
    wards = []
    for raw in data["wards"]:
        geom, repaired = rings_to_multipolygon(raw["polygons"])
        wards.append(
            Ward(
                code=str(raw["id"]),
                name=raw["name"],
                kind=raw["type"],
                population=int(raw["population"]),
                area_km2=float(raw["area"]),
                density=float(raw["density"]),
                center=(float(raw["center"][0]), float(raw["center"][1])),
                geometry=geom,
                repaired=repaired,
            )
        )
    return tuple(sorted(wards, key=lambda w: w.code))


@lru_cache(maxsize=1)
def load_province() -> Province:
    """The Nghệ An outline from the 34-province file."""
    raw = json.loads(PROVINCE_FILE.read_text(encoding="utf-8"))["province"]
    rings = raw["polygons"]
    if isinstance(rings, str):
        rings = json.loads(rings)
    geom, _ = rings_to_multipolygon(rings)
    return Province(
        code=str(raw["id"]),
        name=raw["name"],
        population=int(raw["population"]),
        area_km2=float(raw["area"]),
        geometry=geom,
    )


def wards_by_code() -> dict[str, Ward]:
    """Wards keyed by their code."""
    return {w.code: w for w in load_wards()}
