"""Reading raster layers for queries: grids (from overviews when large), points, profiles,
and the vector units and features that queries weigh against them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from pyproj import Geod, Transformer
from rasterio.enums import Resampling
from rasterio.windows import Window
from sqlalchemy import Connection, text

from layers.errors import InvalidInputError
from layers.features.registry import LayerInfo, get_layer
from layers.rasters.grid import Grid
from layers.rasters.store import RasterLayer
from layers.rasters.tiles import open_dataset
from layers.settings import Settings

_TO_3857 = Transformer.from_crs(4326, 3857, always_xy=True)
_TO_4326 = Transformer.from_crs(3857, 4326, always_xy=True)
_GEOD = Geod(ellps="WGS84")


def to_mercator(geom: shapely.Geometry) -> shapely.Geometry:
    """A WGS84 geometry in EPSG:3857."""
    return shapely.transform(
        geom, lambda xy: np.column_stack(_TO_3857.transform(xy[:, 0], xy[:, 1]))
    )


def to_mercator_many(geoms: list[shapely.Geometry]) -> list[shapely.Geometry]:
    """Many WGS84 geometries in EPSG:3857, in one transform call."""
    if not geoms:
        return []
    out = shapely.transform(
        np.array(geoms, dtype=object),
        lambda xy: np.column_stack(_TO_3857.transform(xy[:, 0], xy[:, 1])),
    )
    return list(out)


def to_lonlat(geom: shapely.Geometry) -> shapely.Geometry:
    """An EPSG:3857 geometry in WGS84."""
    return shapely.transform(
        geom, lambda xy: np.column_stack(_TO_4326.transform(xy[:, 0], xy[:, 1]))
    )


@dataclass
class ReadGrid:
    """A grid read from a raster layer, and the decimation applied to stay under a budget."""

    grid: Grid
    factor: int


@dataclass(frozen=True)
class GridPlan:
    """Which pixels a read takes: the window, the decimation, and the grid it gives."""

    col0: int
    row0: int
    width: int  # of the window, in source pixels (a multiple of factor)
    height: int
    factor: int
    bounds: tuple[float, float, float, float]  # of the grid, EPSG:3857

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) of the grid the read returns."""
        return self.height // self.factor, self.width // self.factor


def plan_grid(
    raster: RasterLayer,
    max_pixels: int,
    bounds: tuple[float, float, float, float] | None = None,
) -> GridPlan:
    """The window and decimation `read_grid` uses (known before reading any pixel)."""
    meta = raster.meta
    a, _, c, _, e, f = meta.transform
    col0, row0, col1, row1 = 0, 0, meta.width, meta.height
    if bounds is not None:
        col0 = max(0, math.floor((bounds[0] - c) / a))
        col1 = min(meta.width, math.ceil((bounds[2] - c) / a))
        row0 = max(0, math.floor((bounds[3] - f) / e))
        row1 = min(meta.height, math.ceil((bounds[1] - f) / e))
        if col1 <= col0 or row1 <= row0:
            raise InvalidInputError(
                "the area is outside the raster",
                layer=raster.info.slug,
                i18n="err.rasters_read.area_outside_raster",
            )
    w, h = col1 - col0, row1 - row0
    factor = 1
    while (w // factor) * (h // factor) > max_pixels:
        factor *= 2
    # Whole cells only: trim the window to a multiple of the factor.
    w, h = (w // factor) * factor, (h // factor) * factor
    xmin, ymax = c + col0 * a, f + row0 * e
    return GridPlan(col0, row0, w, h, factor, (xmin, ymax + h * e, xmin + w * a, ymax))


def read_grid(
    settings: Settings,
    raster: RasterLayer,
    max_pixels: int,
    band: int = 1,
    bounds: tuple[float, float, float, float] | None = None,
) -> ReadGrid:
    """Band values of the raster (or of `bounds`, EPSG:3857), decimated by a whole factor
    (from the COG's overviews) when there are more pixels than `max_pixels`."""
    plan = plan_grid(raster, max_pixels, bounds)
    rows, cols = plan.shape
    ds = open_dataset(raster.file(settings), threaded=rows * cols > 1 << 22)
    values = ds.read(
        band,
        window=Window(plan.col0, plan.row0, plan.width, plan.height),
        out_shape=(rows, cols),
        resampling=Resampling.nearest if plan.factor == 1 else Resampling.average,
    )
    return ReadGrid(Grid(values, plan.bounds, raster.meta.nodata), plan.factor)


def value_at(settings: Settings, raster: RasterLayer, lon: float, lat: float) -> list[float | None]:
    """Every band's value at a lon/lat point (None where nodata or outside)."""
    return sample(settings, raster, [(lon, lat)])[0]


def sample(
    settings: Settings, raster: RasterLayer, lonlat: list[tuple[float, float]]
) -> list[list[float | None]]:
    """Band values at many lon/lat points (None where nodata or outside the raster)."""
    meta = raster.meta
    if not lonlat:
        return []
    xs, ys = _TO_3857.transform([p[0] for p in lonlat], [p[1] for p in lonlat])
    a, _, c, _, e, f = meta.transform
    cols = np.floor((np.asarray(xs) - c) / a).astype(np.int64)
    rows = np.floor((np.asarray(ys) - f) / e).astype(np.int64)
    inside = (cols >= 0) & (cols < meta.width) & (rows >= 0) & (rows < meta.height)
    out: list[list[float | None]] = [[None] * meta.bands for _ in lonlat]
    if not inside.any():
        return out
    c0, c1 = int(cols[inside].min()), int(cols[inside].max()) + 1
    r0, r1 = int(rows[inside].min()), int(rows[inside].max()) + 1
    ds = open_dataset(raster.file(settings))
    if (c1 - c0) * (r1 - r0) <= 4_000_000:
        block = ds.read(window=Window(c0, r0, c1 - c0, r1 - r0))
        vals = block[:, rows[inside] - r0, cols[inside] - c0]
    else:
        vals = np.stack(
            [
                ds.read(window=Window(int(cc), int(rr), 1, 1))[:, 0, 0]
                for cc, rr in zip(cols[inside], rows[inside], strict=True)
            ],
            axis=1,
        )
    idx = np.nonzero(inside)[0]
    for k, i in enumerate(idx):
        for b in range(meta.bands):
            v = float(vals[b, k])
            ok = math.isfinite(v) and (meta.nodata is None or v != meta.nodata)
            out[int(i)][b] = v if ok else None
    return out


def profile(
    settings: Settings, raster: RasterLayer, line: list[tuple[float, float]], samples: int
) -> list[dict[str, Any]]:
    """Values along a lon/lat polyline at `samples` evenly spaced points (geodesic metres)."""
    if len(line) < 2:
        raise InvalidInputError(
            "a profile needs a line of at least 2 points",
            param="line",
            i18n="err.rasters_read.profile_needs_line_at_least",
        )
    seg = [
        _GEOD.inv(line[i][0], line[i][1], line[i + 1][0], line[i + 1][1])[2]
        for i in range(len(line) - 1)
    ]
    total = float(sum(seg))
    if total <= 0:
        raise InvalidInputError(
            "the profile line has no length",
            param="line",
            i18n="err.rasters_read.profile_line_has_no_length",
        )
    points: list[tuple[float, float, float]] = []
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    for d in np.linspace(0.0, total, samples):
        i = min(int(np.searchsorted(cum, d, side="right")) - 1, len(seg) - 1)
        t = 0.0 if seg[i] == 0 else (d - cum[i]) / seg[i]
        (x0, y0), (x1, y1) = line[i], line[i + 1]
        points.append((float(d), x0 + t * (x1 - x0), y0 + t * (y1 - y0)))
    values = sample(settings, raster, [(p[1], p[2]) for p in points])
    return [
        {"distance_m": round(d, 2), "lon": lon, "lat": lat, "value": v[0]}
        for (d, lon, lat), v in zip(points, values, strict=True)
    ]


@dataclass
class Unit:
    """A polygon unit of a zonal query: code, name, population, area and geometry (WGS84)."""

    code: str
    name: str
    population: float | None
    area_km2: float | None
    geom: shapely.Geometry


def polygon_units(conn: Connection, slug: str, limit: int) -> tuple[LayerInfo, list[Unit]]:
    """Every polygon of a layer as a unit (code and name from its properties or source key)."""
    info = get_layer(conn, slug)
    if info.kind != "vector" or info.geometry_type not in ("Polygon", "MultiPolygon", "Geometry"):
        raise InvalidInputError(
            f"units must be a polygon layer; '{slug}' holds {info.geometry_type}",
            param="units",
            i18n="err.rasters_read.units_must_be_polygon_layer",
            slug=slug,
            geometry_type=info.geometry_type,
        )
    rows = conn.execute(
        text(
            "SELECT f.source_key, f.id, f.properties, ST_AsBinary(f.geom) AS wkb "
            "FROM feature f JOIN layer l ON l.id = f.layer_id "
            "WHERE l.slug = :slug AND ST_GeometryType(f.geom) IN ('ST_Polygon','ST_MultiPolygon') "
            "ORDER BY f.id LIMIT :limit"
        ),
        {"slug": slug, "limit": limit + 1},
    ).mappings()
    units: list[Unit] = []
    for r in rows:
        p = r["properties"] or {}
        code = str(p.get("code") or p.get("ma") or r["source_key"] or r["id"])
        name = str(p.get("name") or p.get("ten") or p.get("title") or code)
        pop = p.get("population")
        area = p.get("area_km2")
        units.append(
            Unit(
                code,
                name,
                float(pop) if isinstance(pop, int | float) else None,
                float(area) if isinstance(area, int | float) else None,
                shapely.from_wkb(bytes(r["wkb"])),
            )
        )
    if len(units) > limit:
        raise InvalidInputError(
            f"layer '{slug}' has more than {limit} polygons; too many units for one query",
            param="units",
            i18n="err.rasters_read.layer_has_more_than_polygons",
            slug=slug,
            limit=limit,
        )
    return info, units


@dataclass
class ExposedCandidate:
    """A feature of a point/polygon layer that may be under water."""

    key: str
    name: str
    geom: shapely.Geometry


def features_in_bbox(
    conn: Connection, slug: str, bbox: tuple[float, float, float, float], limit: int
) -> list[ExposedCandidate]:
    """Features of a layer whose geometry meets a lon/lat bbox (at most `limit`)."""
    rows = conn.execute(
        text(
            "SELECT f.source_key, f.id, f.properties, ST_AsBinary(f.geom) AS wkb "
            "FROM feature f JOIN layer l ON l.id = f.layer_id WHERE l.slug = :slug "
            "AND f.geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326) LIMIT :limit"
        ),
        {"slug": slug, "x0": bbox[0], "y0": bbox[1], "x1": bbox[2], "y1": bbox[3], "limit": limit},
    ).mappings()
    out = []
    for r in rows:
        p = r["properties"] or {}
        key = str(r["source_key"] or r["id"])
        name = str(p.get("name") or p.get("ten") or p.get("title") or p.get("SoThuTuThua") or key)
        out.append(ExposedCandidate(key, name, shapely.from_wkb(bytes(r["wkb"]))))
    return out


def exposure_layers(conn: Connection) -> list[LayerInfo]:
    """Vector point and polygon layers whose features can be under water (not admin units)."""
    from layers.features.registry import list_layers

    return [
        i
        for i in list_layers(conn, with_stats=False)
        if i.kind == "vector"
        and i.sector != "admin"
        and i.geometry_type in ("Point", "MultiPoint", "Polygon", "MultiPolygon")
        and not i.slug.startswith("flood_extent")
    ]
