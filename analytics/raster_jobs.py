"""Thin jobs over raster layers: zonal statistics per unit and flood exposure (reads via layers)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import shapely
from rasterio import features as rfeatures
from rasterio.enums import Resampling
from rasterio.transform import from_bounds
from sqlalchemy import Connection

from analytics import coverage, flood, rules
from analytics.zonal import StatRequest, zonal
from layers.errors import InvalidInputError
from layers.features.queries import QueryResult, parse_polygon
from layers.features.registry import LayerInfo
from layers.rasters import read
from layers.rasters.cache import RasterCache
from layers.rasters.grid import Grid
from layers.rasters.store import RasterLayer, get_raster, list_rasters
from layers.rasters.tiles import read_window
from layers.settings import Settings


def grid_of(
    settings: Settings,
    raster: RasterLayer,
    max_pixels: int,
    band: int = 1,
    bounds: tuple[float, float, float, float] | None = None,
    cache: RasterCache | None = None,
) -> read.ReadGrid:
    """`read.read_grid`, kept in the cache (read-only) under the COG's path: a re-import
    writes a new file, so an entry never outlives its data."""
    if cache is None:
        return read.read_grid(settings, raster, max_pixels, band, bounds)
    key = ("grid", str(raster.file(settings)), band, max_pixels, bounds)

    def make() -> read.ReadGrid:
        got = read.read_grid(settings, raster, max_pixels, band, bounds)
        got.grid.values.setflags(write=False)
        return got

    return cache.get_or_make(key, make, lambda g: int(g.grid.values.nbytes))


def _digest(geoms: list[shapely.Geometry]) -> str:
    h = hashlib.blake2b(digest_size=16)
    for wkb in shapely.to_wkb(np.array(geoms, dtype=object)):
        h.update(wkb)
    return h.hexdigest()


def coverage_index(
    grid: Grid, polygons: list[shapely.Geometry], cache: RasterCache | None
) -> coverage.CoverageIndex:
    """The polygons' coverage index on the grid, made once per (grid geometry, polygons)."""
    return coverage_index_for(grid.bounds, grid.shape, polygons, cache)


def coverage_index_for(
    bounds: tuple[float, float, float, float],
    shape: tuple[int, int],
    polygons: list[shapely.Geometry],
    cache: RasterCache | None,
) -> coverage.CoverageIndex:
    """The polygons' coverage index on a grid of these bounds and shape (cached)."""
    if cache is None:
        return coverage.build_index(bounds, shape, polygons)
    key = ("coverage", bounds, shape, _digest(polygons))
    return cache.get_or_make(
        key, lambda: coverage.build_index(bounds, shape, polygons), lambda i: i.nbytes
    )


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
    cache: RasterCache | None = None,
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
    merc = read.to_mercator_many([u.geom for u in found])
    bounds = _union_bounds(merc)
    plan = read.plan_grid(raster, settings.raster_query_max_pixels, bounds)
    # The coverage index needs only the grid's geometry: built while the pixels are read.
    with ThreadPoolExecutor(1) as pool:
        index = pool.submit(coverage_index_for, plan.bounds, plan.shape, merc, cache)
        got = grid_of(settings, raster, settings.raster_query_max_pixels, band, bounds, cache)
        stats = zonal(got.grid, merc, req, index.result())
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
    cache: RasterCache | None = None,
) -> tuple[Grid, RasterLayer, int]:
    """The flood's depth grid (metres) from a depth raster or from a DEM, a level and a seed."""
    budget = settings.raster_preview_max_pixels if preview else settings.raster_query_max_pixels
    if depth is not None:
        raster = get_raster(conn, depth)
        got = grid_of(settings, raster, budget, cache=cache)
        d = flood.depth_from_raster(got.grid.values, got.grid.valid(), min_depth_m)
        return Grid(d, got.grid.bounds, None), raster, got.factor
    assert dem is not None and level_m is not None and seed is not None
    raster = get_raster(conn, dem)
    got = grid_of(settings, raster, budget, cache=cache)
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


def population_raster(
    conn: Connection, slug: str | None, may_read: Callable[[LayerInfo], bool]
) -> RasterLayer | None:
    """The population raster named, else the first readable raster marked `population`."""
    if slug is not None:
        raster = get_raster(conn, slug)
        if raster.meta.role != "population":
            raise InvalidInputError(
                f"layer '{slug}' is not a population raster (its role is {raster.meta.role})",
                param="population",
                layer=slug,
            )
        return raster
    from layers.features.registry import list_layers

    ids = {i: m for i, m in list_rasters(conn).items() if m.role == "population"}
    for info in sorted(list_layers(conn, with_stats=False), key=lambda i: i.slug):
        if info.id in ids and may_read(info):
            return RasterLayer(info=info, meta=ids[info.id])
    return None


def people_grid(
    settings: Settings, grid: Grid, population: RasterLayer
) -> tuple[np.ndarray, np.ndarray]:
    """People in each cell of `grid` from a population raster (people per pixel), and
    where the population raster has a value.

    The population is read onto the grid by area average, then scaled by the ratio of cell
    areas (both grids are WebMercator, so the ratio is that of their projected sizes): the
    sum over any set of cells is the population living there, finer or coarser grid alike.
    """
    rows, cols = grid.shape
    got = read_window(
        population.file(settings),
        population.meta,
        grid.bounds,
        cols,
        rows,
        [1],
        Resampling.average,
    )
    if got is None:
        return np.zeros(grid.shape, np.float64), np.zeros(grid.shape, bool)
    data, valid = got
    a, e = population.meta.transform[0], population.meta.transform[4]
    ratio = (grid.res[0] * grid.res[1]) / abs(a * e)
    people = np.where(valid, data[0].astype(np.float64) * ratio, 0.0)
    return people, valid


def exposure(
    conn: Connection,
    settings: Settings,
    grid: Grid,
    units_slug: str,
    may_read: Callable[[LayerInfo], bool],
    layers: list[str] | None,
    max_features: int,
    population: RasterLayer | None = None,
    cache: RasterCache | None = None,
    max_listed: int | None = None,
) -> dict[str, Any]:
    """Per-commune flooded km², share and people; per layer the features under water.

    People exposed: with a population raster, the people of its cells under water (and,
    where it has no value, the commune's population times the flooded share of that part);
    without one, the commune's population times its flooded share of area.
    """
    _, units = read.polygon_units(conn, units_slug, 20_000)
    merc_units = read.to_mercator_many([u.geom for u in units])
    index = coverage_index(grid, merc_units, cache) if units else None
    req = StatRequest(basic=["area_km2"], above=[0.0])
    stats = zonal(grid, merc_units, req, index) if units else []
    from_raster: list[float] | None = None
    uncovered: list[float] | None = None
    if population is not None and index is not None:
        people, pop_ok = people_grid(settings, grid, population)
        wet = grid.values > 0
        row_area = grid.row_area_m2()
        everywhere = np.ones(grid.shape, bool)
        in_water = coverage.sums(
            index, np.where(wet, people, 0.0), everywhere, row_area, want_minmax=False
        )
        # Flooded cells the population raster says nothing about (outside it, or nodata).
        gap = coverage.sums(
            index, (wet & ~pop_ok).view(np.uint8), everywhere, row_area, [0], want_minmax=False
        )
        from_raster = [float(x) for x in in_water.total]
        uncovered = [float(x) / 1e6 for x in gap.above[0]]
    communes: list[dict[str, Any]] = []
    totals = {"flooded_km2": 0.0, "people_exposed": 0.0, "communes_flooded": 0.0}
    for i, (u, s) in enumerate(zip(units, stats, strict=True)):
        flooded_km2 = float(s.get("area_km2_above_0") or 0.0)
        area = u.area_km2 or float(s.get("area_km2") or 0.0)
        if flooded_km2 <= 0:
            continue
        if from_raster is not None and uncovered is not None:
            rest = flood.people_exposed(u.population, uncovered[i], area) or 0.0
            people_i: float | None = from_raster[i] + rest
            method = "population_raster" if uncovered[i] <= 0 else "population_raster+area_share"
        else:
            people_i = flood.people_exposed(u.population, flooded_km2, area)
            method = "area_share"
        communes.append(
            {
                "code": u.code,
                "name": u.name,
                "flooded_km2": round(flooded_km2, 4),
                "share": round(min(1.0, flooded_km2 / area), 5) if area > 0 else None,
                "population": u.population,
                "people_exposed": None if people_i is None else round(people_i),
                "people_method": method,
            }
        )
        totals["flooded_km2"] += flooded_km2
        totals["people_exposed"] += people_i or 0.0
        totals["communes_flooded"] += 1
    communes.sort(key=lambda c: -float(c["people_exposed"] or 0))
    wet_bounds = _wet_bounds(grid)
    exposed: dict[str, list[dict[str, Any]]] = {}
    counts: dict[str, int] = {}
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
            hits = _under_water(grid, feats, cache)
            if hits:
                # A live slider needs the counts and the deepest few, not every parcel.
                exposed[info.slug] = hits if max_listed is None else hits[:max_listed]
                counts[info.slug] = len(hits)
    if population is not None:
        people_note = (
            f"people living in the flooded cells of the population raster '{population.info.slug}'"
            "; where it has no value, commune population x flooded share of that area"
        )
    else:
        people_note = (
            "commune population x flooded share of the commune's area"
            " (no population raster is loaded)"
        )
    return {
        "communes": communes,
        "totals": {k: round(v, 4) for k, v in totals.items()},
        "exposed": exposed,
        "exposed_counts": counts,
        "withheld_layers": withheld,
        "population_raster": population.info.slug if population is not None else None,
        "assumptions": {"people_exposed": people_note},
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


def _under_water(
    grid: Grid, feats: list[read.ExposedCandidate], cache: RasterCache | None = None
) -> list[dict[str, Any]]:
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
        merc = read.to_mercator_many([f.geom for f in polys])
        deepest = polygon_max_depth(grid, merc, cache)
        for f, d in zip(polys, deepest, strict=True):
            if d > 0:
                out.append({"key": f.key, "name": f.name, "depth_m": round(float(d), 3)})
    out.sort(key=lambda h: -h["depth_m"])
    return out


# Polygons whose bounding box spans at most this many cells are tested cell by cell (parcels,
# buildings: thousands per request); larger ones go through their coverage index.
_SMALL_CELLS = 64


def polygon_max_depth(
    grid: Grid, polygons: list[shapely.Geometry], cache: RasterCache | None = None
) -> np.ndarray:
    """The deepest water among the cells each polygon (EPSG:3857) covers with some area
    (0 where it covers no wet cell): the cells exactextract would give a coverage > 0."""
    n = len(polygons)
    out = np.zeros(n)
    if n == 0:
        return out
    rows, cols = grid.shape
    dx, dy = grid.res
    xmin, _, _, ymax = grid.bounds
    depth = grid.values
    b = shapely.bounds(np.array(polygons, dtype=object))
    c0 = np.clip(np.floor((b[:, 0] - xmin) / dx), 0, cols).astype(np.int64)
    c1 = np.clip(np.ceil((b[:, 2] - xmin) / dx), 0, cols).astype(np.int64)
    r0 = np.clip(np.floor((ymax - b[:, 3]) / dy), 0, rows).astype(np.int64)
    r1 = np.clip(np.ceil((ymax - b[:, 1]) / dy), 0, rows).astype(np.int64)
    nw, nh = np.maximum(c1 - c0, 0), np.maximum(r1 - r0, 0)
    ncells = nw * nh
    small = ncells <= _SMALL_CELLS
    # Small ones: every (polygon, wet cell of its box) pair, kept where the polygon's interior
    # meets the cell's (positive covered area), all in GEOS at once.
    idx = np.nonzero(small & (ncells > 0))[0]
    if len(idx):
        counts = ncells[idx]
        poly = np.repeat(idx, counts)
        k = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        r = r0[poly] + k // nw[poly]
        c = c0[poly] + k % nw[poly]
        d = depth[r, c]
        wet = d > 0
        poly, r, c, d = poly[wet], r[wet], c[wet], d[wet]
        if len(poly):
            cells = shapely.box(
                xmin + c * dx, ymax - (r + 1) * dy, xmin + (c + 1) * dx, ymax - r * dy
            )
            geoms = np.array(polygons, dtype=object)[poly]
            shapely.prepare(geoms)
            hit = shapely.relate_pattern(geoms, cells, "T********")
            np.maximum.at(out, poly[hit], d[hit].astype(np.float64))
    large = np.nonzero(~small)[0]
    if len(large):
        masked = Grid(np.where(depth > 0, depth, np.nan), grid.bounds, None)
        big = [polygons[i] for i in large]
        stats = zonal(masked, big, StatRequest(basic=["max"]), coverage_index(masked, big, cache))
        for i, st in zip(large, stats, strict=True):
            out[i] = float(st["max"] or 0.0)
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
    population = population_raster(conn, None, lambda _info: True)
    result = exposure(
        conn, settings, depth, "admin_communes", lambda _info: True, [], 1, population
    )
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
