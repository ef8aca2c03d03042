"""Mapbox vector tiles of a layer, built by PostGIS (ST_AsMVT), zoom-aware, plus TileJSON."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property, lru_cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal_column,
    text,
)
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import DBAPIError
from sqlalchemy.types import Double, Integer, Text

from layers.errors import InvalidInputError
from layers.features.items import SOURCE_KEY, adds_source_key, with_source_key
from layers.features.ogc import parse_datetime
from layers.features.partitions import partition_name
from layers.features.registry import LayerInfo, property_names
from layers.models import feature

EXTENT = 4096
BUFFER = 64
MAX_ZOOM = 22
WORLD = 20037508.342789244  # half the EPSG:3857 world width, metres
MEDIA_TYPE = "application/vnd.mapbox-vector-tile"
POINT_TYPES = frozenset({"Point", "MultiPoint"})
# One pixel of a 256-px tile, in MVT extent units.
PIXEL = EXTENT // 256
# Points closer than this many extent units are merged into one cluster, by zoom. Beyond
# CLUSTER_MAX_ZOOM points are drawn one by one (unless the byte budget says otherwise).
CLUSTER_MAX_ZOOM = 13
# Lines/polygons whose bbox covers less than this many pixels squared (and is not long) are dropped,
# by zoom: up to z14 (whose tiles the web map draws until map zoom 14.5) such a shape is a speck.
# From COMPLETE_ZOOM on every feature is kept; the map overzooms z15 tiles beyond it, so any
# closer look shows every parcel.
COMPLETE_ZOOM = 15
MIN_SIZE_PX_BY_ZOOM = {z: (1.0 if z < COMPLETE_ZOOM else 0.0) for z in range(MAX_ZOOM + 1)}
# Below this zoom a line/polygon tile keeps at most MAX_SHAPES_PER_TILE features, the largest
# first (by lod_size): about 45 bytes each, so a dense cadastre stays under budget.
TOP_N_MAX_ZOOM = 14
MAX_SHAPES_PER_TILE = 8_000
# At this zoom a cheap bounded count decides whether the largest-first cap is needed.
COUNT_PROBE_ZOOM = 14
# How big a line/polygon looks, in degrees: the side of its bbox's square, or a quarter of its
# longest side (so roads and rivers count). A shape is drawn when this covers a pixel. It is
# stored per feature in LOD_SIZE_COLUMN (computed by the importer, or by the trigger of
# migration 0008_lod_size from this very text), and the partial LOD indexes test that column,
# so a low-zoom tile query reads only the features big enough for them.
TILE_SIZE_SQL = (
    "greatest(sqrt((ST_XMax(geom) - ST_XMin(geom)) * (ST_YMax(geom) - ST_YMin(geom))),"
    " (ST_XMax(geom) - ST_XMin(geom)) / 4, (ST_YMax(geom) - ST_YMin(geom)) / 4)"
)
LOD_SIZE_COLUMN = "lod_size"
# Thresholds of those partial indexes (one pixel at zooms 12 and 10), in degrees.
LOD_INDEX_MIN_DEG = (360.0 / (1 << 12) / 256, 360.0 / (1 << 10) / 256)


@dataclass(frozen=True)
class TileAddress:
    """z/x/y of a WebMercatorQuad tile, validated."""

    z: int
    x: int
    y: int

    def xy_bounds(self) -> tuple[float, float, float, float]:
        """Tile bounds in EPSG:3857 metres."""
        size = 2 * WORLD / (1 << self.z)
        minx = -WORLD + self.x * size
        maxy = WORLD - self.y * size
        return (minx, maxy - size, minx + size, maxy)

    def lonlat_bounds(self, margin: float = 0.0) -> tuple[float, float, float, float]:
        """Tile bounds in WGS84 degrees, grown by `margin` (a fraction of the tile size)."""
        n = 1 << self.z

        def lon(x: float) -> float:
            return max(-180.0, min(180.0, x / n * 360.0 - 180.0))

        def lat(y: float) -> float:
            y = max(0.0, min(float(n), y))
            return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * y / n))))

        return (
            lon(self.x - margin),
            lat(self.y + 1 + margin),
            lon(self.x + 1 + margin),
            lat(self.y - margin),
        )


def tile_address(z: int, x: int, y: int, max_zoom: int = MAX_ZOOM) -> TileAddress:
    """Validate z/x/y; InvalidInputError says which part is out of range."""
    if not 0 <= z <= max_zoom:
        raise InvalidInputError(
            f"zoom must be between 0 and {max_zoom}; got {z}",
            param="z",
            i18n="err.features_tiles.zoom_must_be_between_0",
            max_zoom=max_zoom,
            z=z,
        )
    n = 1 << z
    if not (0 <= x < n and 0 <= y < n):
        raise InvalidInputError(
            f"tile {z}/{x}/{y} does not exist: x and y must be between 0 and {n - 1} at zoom {z}",
            param="xy",
            i18n="err.features_tiles.tile_does_not_exist_x",
            z=z,
            x=x,
            y=y,
            last=n - 1,
        )
    return TileAddress(z, x, y)


def parse_properties(info: LayerInfo, raw: str | None) -> tuple[str, ...] | None:
    """`properties=a,b` checked against the layer's schema; None means every property.

    `source_key` may be selected too (it is added to every feature unless the layer has a
    property of that name).
    """
    if raw is None:
        return None
    names = tuple(dict.fromkeys(p.strip() for p in raw.split(",") if p.strip()))
    known = property_names(info)
    if adds_source_key(info):
        known.append(SOURCE_KEY)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InvalidInputError(
            f"layer '{info.slug}' has no propert{'y' if len(unknown) == 1 else 'ies'} "
            f"{', '.join(repr(u) for u in unknown)}; it has: {', '.join(known) or 'none'}",
            param="properties",
            i18n="err.features_tiles.layer_has_no_propert_it",
            layer=info.slug,
            unknown=", ".join(repr(u) for u in unknown),
            known=", ".join(known) or "—",
        )
    return names


def props_key(props: tuple[str, ...] | None) -> str:
    """Stable short text naming a property selection (for cache keys and ETags)."""
    if props is None:
        return "*"
    return hashlib.blake2s(",".join(props).encode(), digest_size=6).hexdigest()


# A filtered tile is kept in the server cache only when each bound of its interval falls on a
# whole hour (or is the last microsecond of one, as a date's end is): a time slider stepping
# by hours or days reuses them, while arbitrary intervals are rendered and not stored.
CACHE_ALIGN_US = 3_600_000_000


def _epoch_us(dt: datetime) -> int:
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@dataclass(frozen=True)
class TimeFilter:
    """A tile's datetime filter on observed_at: inclusive bounds, None for an open end."""

    start: datetime | None
    end: datetime | None

    @cached_property
    def key(self) -> str:
        """Canonical text for cache keys and ETags: the same interval however it was written."""
        a = ".." if self.start is None else format(_epoch_us(self.start), "x")
        b = ".." if self.end is None else format(_epoch_us(self.end), "x")
        return f"@{a}~{b}"

    @cached_property
    def cacheable(self) -> bool:
        """True when both bounds are open or aligned to whole hours (see CACHE_ALIGN_US)."""
        return all(
            t is None or _epoch_us(t) % CACHE_ALIGN_US in (0, CACHE_ALIGN_US - 1)
            for t in (self.start, self.end)
        )


@lru_cache(maxsize=1024)
def _time_filter(raw: str) -> TimeFilter | None:
    # Cached: the warm path parses the same few slider intervals over and over. Errors are
    # raised again each time (lru_cache does not keep exceptions).
    when = parse_datetime(raw)
    return None if when is None else TimeFilter(when[0], when[1])


def parse_time_filter(info: LayerInfo, raw: str | None) -> TimeFilter | None:
    """`datetime=` (an instant, or an interval a/b with '..' open ends) of a time-enabled layer.

    Parsed exactly as the OGC items endpoint does; None when absent or empty.
    """
    if raw is None or raw == "":
        return None
    if not info.time_field:
        raise InvalidInputError(
            f"layer '{info.slug}' has no time field, so datetime={raw!r} cannot filter its tiles;"
            " only time-enabled layers (with a time_field) take datetime",
            param="datetime",
            i18n="err.features_tiles.layer_has_no_time_field",
            layer=info.slug,
            raw=raw,
        )
    return _time_filter(raw)


@dataclass(frozen=True)
class TilePlan:
    """How a tile is generalised: point cluster cell and polygon minimum size, in extent units."""

    cluster_cell: int
    min_size_units: float
    max_shapes: int | None = None


def initial_plan(info: LayerInfo, z: int) -> TilePlan:
    """The generalisation a tile starts with at zoom z."""
    if info.geometry_type in POINT_TYPES:
        cell = 0 if z > CLUSTER_MAX_ZOOM else (4 * PIXEL if z >= 10 else 8 * PIXEL)
        return TilePlan(cluster_cell=cell, min_size_units=0.0)
    return TilePlan(
        cluster_cell=0,
        min_size_units=MIN_SIZE_PX_BY_ZOOM[z] * PIXEL,
        max_shapes=MAX_SHAPES_PER_TILE if z < TOP_N_MAX_ZOOM else None,
    )


def coarser(info: LayerInfo, plan: TilePlan) -> TilePlan:
    """A stricter plan, for a tile that came out over the byte budget."""
    if info.geometry_type in POINT_TYPES:
        return TilePlan(max(plan.cluster_cell * 2, 2 * PIXEL), 0.0)
    shapes = plan.max_shapes or MAX_SHAPES_PER_TILE
    return TilePlan(0, max(plan.min_size_units * 2, PIXEL), max(shapes // 2, 1))


@dataclass(frozen=True)
class _Shape:
    """What changes the SQL text of a tile query (values are bound, never part of it)."""

    points: bool
    cluster: bool
    min_size: bool
    top_n: bool
    n_props: int | None  # None: every property; else how many selected
    direct: bool = False  # shapes inside the tile go to tile units by an affine map
    t_from: bool = False  # observed_at >= t0
    t_to: bool = False  # observed_at <= t1
    add_key: bool = False  # every property: source_key added from the column
    key_at: int | None = None  # selected properties: the position of the source_key column


# Above this many vertices a shape is clipped to the tile and simplified before projecting.
BIG_SHAPE_VERTICES = 64
# From this zoom on, a line/polygon lying wholly inside the tile skips ST_Transform and
# ST_AsMVTGeom (clipping, validation: most of a dense tile's render): its lon/lat go straight
# to tile units through the tile's affine tangent of Web Mercator, snapped to the unit grid.
# Mercator's curvature over one z14 tile moves a vertex < 0.3 units (of 4096; < 0.02 at
# z16), under the snapping's own rounding.
DIRECT_MIN_ZOOM = 14
# Only shapes at least this many extent units across take that path, so snapping never
# collapses one (ST_AsMVTGeom drops collapsed shapes; the direct path must never meet one).
DIRECT_MIN_UNITS = 8


def _shape_statement(shape: _Shape) -> Select[Any]:
    """The tile query for a shape, with named bind parameters only."""
    env = func.ST_MakeEnvelope(
        bindparam("x0"), bindparam("y0"), bindparam("x1"), bindparam("y1"), 3857
    )
    # The filter envelope is computed in Python in EPSG:4326, never the stored geometries
    # transformed, so the partition's GiST index on geom serves the && test.
    env4326 = func.ST_MakeEnvelope(
        bindparam("lon0"), bindparam("lat0"), bindparam("lon1"), bindparam("lat1"), 4326
    )
    # What is selected: points touching the buffer (a symbol drawn across the tile's edge),
    # lines and polygons touching the tile itself. A map clips each tile's lines and fills to
    # the tile, so a shape lying wholly in the buffer would never draw a pixel; shapes crossing
    # the edge still keep their part in the buffer.
    sel4326 = func.ST_MakeEnvelope(
        bindparam("slon0"), bindparam("slat0"), bindparam("slon1"), bindparam("slat1"), 4326
    )
    conds: list[ColumnElement[bool]] = [
        feature.c.layer_id == bindparam("layer_id"),
        feature.c.geom.op("&&")(sel4326),
    ]
    if shape.t_from:
        conds.append(feature.c.observed_at >= bindparam("t0"))
    if shape.t_to:
        conds.append(feature.c.observed_at <= bindparam("t1"))
    if shape.points or not (shape.min_size or shape.top_n):
        cand_q = sa_select(
            feature.c.id,
            feature.c.properties,
            feature.c.source_key,
            feature.c.geom,
            feature.c.lod_size,
        ).where(and_(*conds))
    else:
        size = feature.c.lod_size
        if shape.min_size:
            # The stored size: no bbox is read from any geometry, and at zoom 12 or lower it
            # implies a partial index's predicate, so only features this big are read at all.
            conds.append(size >= bindparam("min_deg", type_=Double))
        cand_q = sa_select(
            feature.c.id,
            feature.c.properties,
            feature.c.source_key,
            feature.c.geom,
            feature.c.lod_size,
        ).where(and_(*conds))
        if shape.top_n:
            # Keep the largest shapes; MVT geometry is built only for them, outside this
            # subquery (a LIMIT subquery is not flattened into the outer one).
            cand_q = cand_q.order_by(size.desc().nulls_last()).limit(
                bindparam("max_shapes", type_=Integer)
            )
    cand = cand_q.subquery("f")
    geom: ColumnElement[Any] = cand.c.geom
    if not shape.points:
        # Big shapes (admin boundaries) are cut to the tile and simplified to half an extent
        # unit before projecting: far fewer vertices to transform. Small ones (parcels) go as is.
        geom = case(
            (
                func.ST_NPoints(cand.c.geom) > BIG_SHAPE_VERTICES,
                func.ST_Simplify(
                    func.ST_ClipByBox2D(cand.c.geom, env4326),
                    bindparam("tolerance", type_=Double),
                    True,
                ),
            ),
            else_=cand.c.geom,
        )
    mvt_geom: ColumnElement[Any] = func.ST_AsMVTGeom(
        func.ST_Transform(geom, 3857), env, EXTENT, BUFFER, True
    )
    if shape.direct:
        inside = func.ST_MakeEnvelope(
            bindparam("ilon0"), bindparam("ilat0"), bindparam("ilon1"), bindparam("ilat1"), 4326
        )
        affine = func.ST_Affine(
            cand.c.geom,
            bindparam("ax", type_=Double),
            0.0,
            0.0,
            bindparam("ay", type_=Double),
            bindparam("ox", type_=Double),
            bindparam("oy", type_=Double),
        )
        # Counter-clockwise in these (y-down) units is what ST_AsMVTGeom writes, and so what
        # MVT readers take for an outer ring.
        direct_geom = func.ST_ForcePolygonCCW(func.ST_SnapToGrid(affine, 1.0))
        mvt_geom = case(
            (
                and_(
                    cand.c.geom.op("@")(inside),
                    cand.c.lod_size >= bindparam("direct_deg", type_=Double),
                    func.ST_NPoints(cand.c.geom) <= BIG_SHAPE_VERTICES,
                ),
                direct_geom,
            ),
            else_=mvt_geom,
        )
    # Every property and an added source_key, outside clusters: the key goes to ST_AsMVT as a
    # column of its own (a NULL one is left out), not merged into a new jsonb per feature.
    key_column = shape.n_props is None and shape.add_key and not shape.cluster
    if shape.n_props is None:
        props_expr: ColumnElement[Any] = cand.c.properties
        if shape.add_key and not key_column:
            # A NULL source_key gives a JSON null, which ST_AsMVT leaves out.
            props_expr = with_source_key(props_expr, cand.c.source_key)
    elif shape.n_props == 0:
        props_expr = cast("{}", JSONB)
    else:
        args: list[Any] = []
        for i in range(shape.n_props):
            key = bindparam(f"k{i}", type_=Text)
            value = (
                func.to_jsonb(cand.c.source_key)
                if i == shape.key_at
                else cand.c.properties.op("->")(key)
            )
            args.extend([cast(key, Text), value])
        props_expr = func.jsonb_build_object(*args)
    inner_cols = [cand.c.id.label("id"), props_expr.label("props"), mvt_geom.label("geom")]
    if key_column:
        inner_cols.append(cand.c.source_key.label(SOURCE_KEY))
    inner = sa_select(*inner_cols)
    if shape.cluster or shape.direct:
        # OFFSET 0 fences the subquery, so the clusters' NULL test (or the direct path's
        # emptiness test) is not pushed into the scan, which would build each MVT geometry twice.
        inner = inner.offset(0)
    rows = inner.subquery("p")
    if shape.cluster:
        cell = bindparam("cell", type_=Double)
        cx = func.ST_X(func.ST_Centroid(rows.c.geom))
        cy = func.ST_Y(func.ST_Centroid(rows.c.geom))
        n = func.count()
        clusters = (
            sa_select(
                n.label("n"),
                func.min(rows.c.id).label("id"),
                func.min(cast(rows.c.props, Text)).label("props"),
                func.round(func.avg(cx)).label("cx"),
                func.round(func.avg(cy)).label("cy"),
            )
            .where(rows.c.geom.is_not(None))
            .group_by(func.floor(cx / cell), func.floor(cy / cell))
            .subquery("c")
        )
        single = clusters.c.n == 1
        final = sa_select(
            case((single, clusters.c.id), else_=None).label("id"),
            case(
                (single, cast(clusters.c.props, JSONB)),
                else_=func.jsonb_build_object("point_count", clusters.c.n, "cluster", True),
            ).label("props"),
            func.ST_MakePoint(clusters.c.cx, clusters.c.cy).label("geom"),
        ).subquery("t")
    elif shape.direct:
        # A shape the snapping emptied would still be written, as a feature without geometry.
        final = sa_select(*rows.c).where(func.ST_IsEmpty(rows.c.geom).is_not(True)).subquery("t")
    else:
        # No "geom IS NOT NULL" here: PostgreSQL would push it into the scan and build every
        # MVT geometry twice; ST_AsMVT skips NULL geometries by itself.
        final = sa_select(*rows.c).subquery("t")
    return sa_select(
        func.ST_AsMVT(literal_column("t"), bindparam("name", type_=Text), EXTENT, "geom", "id")
    ).select_from(final)


@lru_cache(maxsize=256)
def _shape_sql(shape: _Shape) -> tuple[str, tuple[tuple[str, Any], ...]]:
    """The shape's SQL and its constant parameters, compiled once per process.

    Building and compiling the Core statement costs ~2 ms, more than a small tile's render.
    """
    from sqlalchemy.dialects import postgresql

    compiled = _shape_statement(shape).compile(dialect=postgresql.psycopg.dialect())  # type: ignore[no-untyped-call]
    constants = tuple((k, v) for k, v in compiled.params.items() if v is not None)
    return str(compiled), constants


def tile_query(
    info: LayerInfo,
    tile: TileAddress,
    props: tuple[str, ...] | None,
    plan: TilePlan,
    when: TimeFilter | None = None,
) -> tuple[str, dict[str, Any]]:
    """SQL text and bound values that render one tile (of features within `when`, if given)."""
    points = info.geometry_type in POINT_TYPES
    deg_per_unit = 360.0 / (1 << tile.z) / EXTENT
    min_deg = plan.min_size_units * deg_per_unit
    add_key = adds_source_key(info)
    shape = _Shape(
        points=points,
        cluster=points and plan.cluster_cell > 0,
        min_size=not points and plan.min_size_units > 0,
        top_n=not points and plan.max_shapes is not None,
        n_props=None if props is None else len(props),
        direct=not points and tile.z >= DIRECT_MIN_ZOOM,
        t_from=when is not None and when.start is not None,
        t_to=when is not None and when.end is not None,
        add_key=props is None and add_key,
        key_at=props.index(SOURCE_KEY) if add_key and props and SOURCE_KEY in props else None,
    )
    x0, y0, x1, y1 = tile.xy_bounds()
    lon0, lat0, lon1, lat1 = tile.lonlat_bounds(BUFFER / EXTENT)
    params: dict[str, Any] = {
        "x0": x0,
        "y0": y0,
        "x1": x1,
        "y1": y1,
        "lon0": lon0,
        "lat0": lat0,
        "lon1": lon1,
        "lat1": lat1,
        "layer_id": info.id,
        "name": info.slug,
    }
    sel = (lon0, lat0, lon1, lat1) if points else tile.lonlat_bounds()
    params.update(zip(("slon0", "slat0", "slon1", "slat1"), sel, strict=True))
    if not points:
        params["tolerance"] = deg_per_unit / 2
    if shape.direct:
        params.update(direct_params(tile))
    if shape.min_size:
        params["min_deg"] = min_deg
    if shape.top_n:
        params["max_shapes"] = plan.max_shapes
    if shape.cluster:
        params["cell"] = float(plan.cluster_cell)
    for i, name in enumerate(props or ()):
        params[f"k{i}"] = name
    if shape.t_from:
        params["t0"] = when.start if when else None
    if shape.t_to:
        params["t1"] = when.end if when else None
    sql, constants = _shape_sql(shape)
    return sql, {**dict(constants), **params}


def direct_params(tile: TileAddress) -> dict[str, float]:
    """Bound values of the direct path: the tile's inner bounds in degrees and the affine map
    (x = ax·lon + ox, y = ay·lat + oy, in extent units, y down) tangent to Web Mercator at the
    tile's centre."""
    n = 1 << tile.z
    lon0, lat0, lon1, lat1 = tile.lonlat_bounds()
    lon_c, lat_c = (lon0 + lon1) / 2, (lat0 + lat1) / 2
    world = n * EXTENT  # extent units around the world at this zoom
    ax = world / 360.0
    phi = math.radians(lat_c)
    ay = -world / (2 * math.pi) / math.cos(phi) * math.pi / 180.0
    x_c = ((lon_c + 180.0) / 360.0 * n - tile.x) * EXTENT
    y_c = ((1 - math.asinh(math.tan(phi)) / math.pi) / 2 * n - tile.y) * EXTENT
    return {
        "ilon0": lon0,
        "ilat0": lat0,
        "ilon1": lon1,
        "ilat1": lat1,
        "ax": ax,
        "ay": ay,
        "ox": x_c - ax * lon_c,
        "oy": y_c - ay * lat_c,
        "direct_deg": DIRECT_MIN_UNITS * 360.0 / world,
    }


_COUNT_PROBE_HEAD = (
    "SELECT count(*) FROM (SELECT 1 FROM feature WHERE layer_id = %(layer_id)s"
    " AND geom && ST_MakeEnvelope(%(lon0)s, %(lat0)s, %(lon1)s, %(lat1)s, 4326)"
)
_COUNT_PROBE_TAIL = " LIMIT %(cap)s) AS s"
COUNT_PROBE_SQL = _COUNT_PROBE_HEAD + _COUNT_PROBE_TAIL


def count_probe(
    info: LayerInfo, tile: TileAddress, when: TimeFilter | None = None
) -> tuple[str, dict[str, Any]] | None:
    """SQL and parameters counting the tile's features (up to a cap) when its density must be
    checked first, else None."""
    if info.geometry_type in POINT_TYPES or tile.z != COUNT_PROBE_ZOOM:
        return None
    lon0, lat0, lon1, lat1 = tile.lonlat_bounds(BUFFER / EXTENT)
    params: dict[str, Any] = {
        "layer_id": info.id,
        "lon0": lon0,
        "lat0": lat0,
        "lon1": lon1,
        "lat1": lat1,
        "cap": MAX_SHAPES_PER_TILE + 1,
    }
    sql = _COUNT_PROBE_HEAD
    if when is not None and when.start is not None:
        sql += " AND observed_at >= %(t0)s"
        params["t0"] = when.start
    if when is not None and when.end is not None:
        sql += " AND observed_at <= %(t1)s"
        params["t1"] = when.end
    return sql + _COUNT_PROBE_TAIL, params


async def render_tile_async(
    fetch: Callable[[str, dict[str, Any]], Awaitable[Any]],
    info: LayerInfo,
    tile: TileAddress,
    props: tuple[str, ...] | None,
    max_bytes: int = 500_000,
    when: TimeFilter | None = None,
) -> bytes:
    """Render one tile; zero bytes is an empty tile. Generalises further until under max_bytes.

    `fetch(sql, params)` runs a statement and returns its first column (the API passes its
    async read pool).
    """
    plan = initial_plan(info, tile.z)
    probe = count_probe(info, tile, when)
    if probe is not None and int(await fetch(*probe) or 0) > MAX_SHAPES_PER_TILE:
        plan = TilePlan(plan.cluster_cell, plan.min_size_units, MAX_SHAPES_PER_TILE)
    data = b""
    for _ in range(8):
        sql, params = tile_query(info, tile, props, plan, when)
        data = bytes(await fetch(sql, params) or b"")
        if len(data) <= max_bytes:
            return data
        plan = coarser(info, plan)
    return data


_ESTIMATED_EXTENT = text(
    "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
    "FROM ST_EstimatedExtent('public', :t, 'geom') AS e"
)


def layer_bounds(conn: Connection, info: LayerInfo) -> tuple[float, float, float, float] | None:
    """The layer's extent in WGS84: the planner's estimate when statistics exist, else exact."""
    row: Any = None
    try:
        with conn.begin_nested():
            row = conn.execute(_ESTIMATED_EXTENT, {"t": partition_name(info.id)}).one()
    except DBAPIError:  # no statistics yet: fall back to the exact extent
        row = None
    if row is None or row[0] is None:
        ext = func.ST_Extent(feature.c.geom)
        stmt = sa_select(
            func.ST_XMin(ext), func.ST_YMin(ext), func.ST_XMax(ext), func.ST_YMax(ext)
        ).where(feature.c.layer_id == info.id)
        row = conn.execute(stmt).one()
    if row[0] is None:
        return None
    return (float(row[0]), float(row[1]), float(row[2]), float(row[3]))


def _field_type(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    return {"integer": "Number", "number": "Number", "boolean": "Boolean"}.get(str(kind), "String")


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def tilejson(
    info: LayerInfo,
    tiles_url: str,
    bbox: tuple[float, float, float, float] | None,
    times: tuple[datetime, datetime] | None = None,
) -> dict[str, Any]:
    """TileJSON 3.0.0 document of a layer.

    Beyond the standard keys: `feature_key` names the property holding each feature's
    source_key, and a time-enabled layer has `time` (its field, observed extent and the
    `datetime` query parameter its tiles take).
    """
    props = info.property_schema.get("properties", {})
    fields = {k: _field_type(v) for k, v in props.items() if isinstance(v, dict)}
    if adds_source_key(info):
        fields[SOURCE_KEY] = "String"
    bounds = list(bbox) if bbox else [-180.0, -85.05112878, 180.0, 85.05112878]
    center = [(bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2, 10]
    minzoom = info.default_style.min_zoom
    doc: dict[str, Any] = {
        "tilejson": "3.0.0",
        "name": info.slug,
        "description": info.title_en,
        "version": str(info.data_version),
        "attribution": info.attribution,
        "scheme": "xyz",
        "tiles": [tiles_url],
        "minzoom": 0,
        "maxzoom": MAX_ZOOM,
        "bounds": bounds,
        "center": center,
        "vector_layers": [
            {
                "id": info.slug,
                "description": info.title_vi,
                "fields": fields,
                "minzoom": minzoom,
                "maxzoom": MAX_ZOOM,
                "feature_key": SOURCE_KEY,
            }
        ],
    }
    if info.time_field:
        doc["time"] = {
            "field": info.time_field,
            "extent": [_iso(times[0]), _iso(times[1])] if times else None,
            "parameter": "datetime",
            "cache_step": "PT1H",
        }
    return doc
