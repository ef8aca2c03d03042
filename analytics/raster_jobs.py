"""Thin jobs over raster layers: zonal statistics per unit and flood exposure (reads via layers)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import shapely
from rasterio import features as rfeatures
from rasterio.transform import from_bounds
from sqlalchemy import Connection

from analytics import flood, rules
from analytics.zonal import StatRequest, zonal
from layers.errors import InvalidInputError
from layers.features.queries import QueryResult, parse_polygon
from layers.features.registry import LayerInfo
from layers.rasters import read
from layers.rasters.grid import Grid
from layers.rasters.store import RasterLayer, get_raster
from layers.settings import Settings


def units_for(
    conn: Connection, units: str | dict[str, Any], limit: int = 20_000
) -> tuple[str, list[read.Unit]]:
    """A polygon layer's units, or one unit from a GeoJSON polygon."""
    if isinstance(units, str):
        info, found = read.polygon_units(conn, units, limit)
        return info.slug, found
    geom = parse_polygon(units)
    return "polygon", [read.Unit("polygon", "polygon", None, None, geom)]


def zonal_query(
    conn: Connection,
    settings: Settings,
    raster_slug: str,
    units: str | dict[str, Any],
    req: StatRequest,
    band: int = 1,
) -> QueryResult:
    """One row per unit (code, name, the statistics asked for), exact over partial pixels."""
    raster = get_raster(conn, raster_slug)
    if not 1 <= band <= raster.meta.bands:
        raise InvalidInputError(
            f"band must be 1..{raster.meta.bands}; got {band}",
            param="band",
            i18n="err.raster_jobs.band_must_be_1_got",
            bands=raster.meta.bands,
            band=band,
        )
    name, found = units_for(conn, units)
    merc = [read.to_mercator(u.geom) for u in found]
    bounds = _union_bounds(merc)
    got = read.read_grid(settings, raster, settings.raster_query_max_pixels, band, bounds)
    stats = zonal(got.grid, merc, req)
    rows = [{"code": u.code, "name": u.name, **s} for u, s in zip(found, stats, strict=True)]
    meta: dict[str, Any] = {"raster": raster_slug, "units": name, "decimation": got.factor}
    return QueryResult(
        f"zonal_{raster_slug}_{name}",
        ["code", "name", *req.columns()],
        rows,
        [u.geom for u in found],
        meta=meta,
    )


def _union_bounds(geoms: list[shapely.Geometry]) -> tuple[float, float, float, float]:
    b = shapely.total_bounds(np.array(geoms, dtype=object))
    return float(b[0]), float(b[1]), float(b[2]), float(b[3])


def seed_mask(grid: Grid, seed: shapely.Geometry) -> np.ndarray:
    """Cells the seed (a river line or a point, EPSG:3857) touches."""
    rows, cols = grid.shape
    transform = from_bounds(*grid.bounds, cols, rows)
    mask: np.ndarray = rfeatures.rasterize(
        [(seed, 1)], out_shape=(rows, cols), transform=transform, all_touched=True, dtype="uint8"
    ).astype(bool)
    return mask


def flood_depth_grid(
    conn: Connection,
    settings: Settings,
    *,
    depth: str | None,
    dem: str | None,
    level_m: float | None,
    seed: dict[str, Any] | None,
    preview: bool,
    min_depth_m: float,
) -> tuple[Grid, RasterLayer, int]:
    """The flood's depth grid (metres) from a depth raster or from a DEM, a level and a seed."""
    budget = settings.raster_preview_max_pixels if preview else settings.raster_query_max_pixels
    if depth is not None:
        raster = get_raster(conn, depth)
        got = read.read_grid(settings, raster, budget)
        d = flood.depth_from_raster(got.grid.values, got.grid.valid(), min_depth_m)
        return Grid(d, got.grid.bounds, None), raster, got.factor
    assert dem is not None and level_m is not None and seed is not None
    raster = get_raster(conn, dem)
    got = read.read_grid(settings, raster, budget)
    try:
        seed_geom = shapely.geometry.shape(seed.get("geometry", seed))
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise InvalidInputError(
            f"seed is not a GeoJSON geometry ({exc})",
            param="seed",
            i18n="err.raster_jobs.seed_not_geojson_geometry",
            exc=str(exc),
        ) from exc
    if seed_geom.is_empty:
        raise InvalidInputError(
            "seed geometry is empty", param="seed", i18n="err.raster_jobs.seed_geometry_empty"
        )
    mask = seed_mask(got.grid, read.to_mercator(seed_geom))
    if not mask.any():
        raise InvalidInputError(
            "the seed lies outside the DEM",
            param="seed",
            i18n="err.raster_jobs.seed_lies_outside_dem",
        )
    d = flood.flood_from_level(got.grid.values, got.grid.valid(), level_m, mask)
    d[d < min_depth_m] = 0.0
    return Grid(d, got.grid.bounds, None), raster, got.factor


def extent_polygons(grid: Grid, simplify_m: float) -> shapely.Geometry:
    """The flooded cells as one (simplified) WGS84 MultiPolygon."""
    rows, cols = grid.shape
    transform = from_bounds(*grid.bounds, cols, rows)
    wet = (grid.values > 0).astype(np.uint8)
    polys = [
        shapely.geometry.shape(g)
        for g, v in rfeatures.shapes(wet, mask=wet.astype(bool), transform=transform)
        if v == 1
    ]
    if not polys:
        return shapely.MultiPolygon()
    merged = shapely.union_all(polys)
    if simplify_m > 0:
        merged = merged.simplify(simplify_m, preserve_topology=True)
    out = read.to_lonlat(merged)
    if out.geom_type == "Polygon":
        out = shapely.MultiPolygon([out])
    return out


def exposure(
    conn: Connection,
    settings: Settings,
    grid: Grid,
    units_slug: str,
    may_read: Callable[[LayerInfo], bool],
    layers: list[str] | None,
    max_features: int,
) -> dict[str, Any]:
    """Per-commune flooded km², share and people; per layer the features under water."""
    _, units = read.polygon_units(conn, units_slug, 20_000)
    merc_units = [read.to_mercator(u.geom) for u in units]
    req = StatRequest(basic=["area_km2"], above=[0.0])
    stats = zonal(grid, merc_units, req) if units else []
    communes: list[dict[str, Any]] = []
    totals = {"flooded_km2": 0.0, "people_exposed": 0.0, "communes_flooded": 0.0}
    for u, s in zip(units, stats, strict=True):
        flooded_km2 = float(s.get("area_km2_above_0") or 0.0)
        area = u.area_km2 or float(s.get("area_km2") or 0.0)
        people = flood.people_exposed(u.population, flooded_km2, area)
        if flooded_km2 <= 0:
            continue
        communes.append(
            {
                "code": u.code,
                "name": u.name,
                "flooded_km2": round(flooded_km2, 4),
                "share": round(min(1.0, flooded_km2 / area), 5) if area > 0 else None,
                "population": u.population,
                "people_exposed": None if people is None else round(people),
            }
        )
        totals["flooded_km2"] += flooded_km2
        totals["people_exposed"] += people or 0.0
        totals["communes_flooded"] += 1
    communes.sort(key=lambda c: -float(c["people_exposed"] or 0))
    wet_bounds = _wet_bounds(grid)
    exposed: dict[str, list[dict[str, Any]]] = {}
    withheld: list[str] = []
    if wet_bounds is not None:
        candidates = read.exposure_layers(conn)
        for info in candidates:
            if layers is not None and info.slug not in layers:
                continue
            if not may_read(info):
                withheld.append(info.slug)
                continue
            feats = read.features_in_bbox(conn, info.slug, wet_bounds, max_features)
            hits = _under_water(grid, feats)
            if hits:
                exposed[info.slug] = hits
    return {
        "communes": communes,
        "totals": {k: round(v, 4) for k, v in totals.items()},
        "exposed": exposed,
        "withheld_layers": withheld,
        "assumptions": {
            "people_exposed": "commune population x flooded share of the commune's area"
            " (no land-use or population raster is used)",
        },
    }


def _wet_bounds(grid: Grid) -> tuple[float, float, float, float] | None:
    wet = grid.values > 0
    if not wet.any():
        return None
    rows = np.nonzero(wet.any(axis=1))[0]
    cols = np.nonzero(wet.any(axis=0))[0]
    dx, dy = grid.res
    xmin, _, _, ymax = grid.bounds
    box = shapely.box(
        xmin + cols[0] * dx,
        ymax - (rows[-1] + 1) * dy,
        xmin + (cols[-1] + 1) * dx,
        ymax - rows[0] * dy,
    )
    b = read.to_lonlat(box).bounds
    return (b[0], b[1], b[2], b[3])


def _under_water(grid: Grid, feats: list[read.ExposedCandidate]) -> list[dict[str, Any]]:
    """Features touching water, with the depth at the point or the deepest cell of the polygon."""
    if not feats:
        return []
    out: list[dict[str, Any]] = []
    rows, cols = grid.shape
    dx, dy = grid.res
    xmin, _, _, ymax = grid.bounds
    points = [f for f in feats if f.geom.geom_type in ("Point", "MultiPoint")]
    polys = [f for f in feats if f.geom.geom_type in ("Polygon", "MultiPolygon")]
    for f in points:
        p = read.to_mercator(f.geom.centroid if f.geom.geom_type == "MultiPoint" else f.geom)
        c, r = int(math.floor((p.x - xmin) / dx)), int(math.floor((ymax - p.y) / dy))
        if 0 <= r < rows and 0 <= c < cols and grid.values[r, c] > 0:
            out.append(
                {"key": f.key, "name": f.name, "depth_m": round(float(grid.values[r, c]), 3)}
            )
    if polys:
        masked = Grid(np.where(grid.values > 0, grid.values, np.nan), grid.bounds, None)
        stats = zonal(masked, [read.to_mercator(f.geom) for f in polys], StatRequest(basic=["max"]))
        for f, s in zip(polys, stats, strict=True):
            if s.get("max") is not None and s["max"] > 0:
                out.append({"key": f.key, "name": f.name, "depth_m": round(float(s["max"]), 3)})
    out.sort(key=lambda h: -h["depth_m"])
    return out


def flood_firings(
    conn: Connection, spec: rules.RuleSpec, settings: Settings | None
) -> list[rules.Firing]:
    """A flood_exposure rule: exposure of the depth raster `spec.layer` against the threshold."""
    if settings is None:
        raise InvalidInputError(
            "flood_exposure rules need the settings (the raster directory)",
            i18n="err.raster_jobs.flood_exposure_rules_need_settings",
        )
    raster = get_raster(conn, spec.layer)
    got = read.read_grid(settings, raster, settings.raster_query_max_pixels)
    depth = Grid(
        flood.depth_from_raster(got.grid.values, got.grid.valid(), 0.0), got.grid.bounds, None
    )
    result = exposure(conn, settings, depth, "admin_communes", lambda _info: True, [], 1)
    measure = spec.measure
    label = {
        "people_exposed": "người bị ảnh hưởng / people exposed",
        "flooded_km2": "km² ngập / km² flooded",
        "communes_flooded": "xã bị ngập / communes flooded",
    }[measure]
    out: list[rules.Firing] = []
    if spec.area.kind == "commune":
        for c in result["communes"]:
            value = float(c.get(measure) or 0.0)
            if bool(rules.holds(spec.condition, value, spec.threshold)):
                out.append(
                    rules.Firing(
                        key=f"{spec.layer}:{raster.info.data_version}:{c['code']}",
                        value=value,
                        threshold=spec.threshold,
                        title=f"{spec.name}: {c['name']} — {value:,.0f} {label}",
                        area_kind="commune",
                        area_ref=str(c["code"]),
                        extra={"raster": spec.layer, "flooded_km2": c["flooded_km2"]},
                    )
                )
        return out
    value = float(result["totals"].get(measure, 0.0))
    if bool(rules.holds(spec.condition, value, spec.threshold)):
        b = raster.meta.bounds
        out.append(
            rules.Firing(
                key=f"{spec.layer}:{raster.info.data_version}",
                value=value,
                threshold=spec.threshold,
                title=f"{spec.name}: {value:,.0f} {label}",
                area_kind="feature",
                area_ref=spec.layer,
                lng=(b[0] + b[2]) / 2,
                lat=(b[1] + b[3]) / 2,
                extra={"raster": spec.layer, "totals": result["totals"]},
            )
        )
    return out
