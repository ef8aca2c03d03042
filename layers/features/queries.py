"""Spatial queries for planners: within, radius, nearest, per-commune rates, gaps, buffer/overlay.

Distances are metres on the WGS84 spheroid (geography); areas are square metres. Index use:
every distance test is preceded by a bbox test on the stored EPSG:4326 geometry (&&), grown by
a degree margin that is safe for the latitudes involved, so the layer's GiST index is used.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import shapely
from shapely.geometry import shape
from sqlalchemy import Connection, text

from layers.errors import InvalidInputError, NotFoundError
from layers.features.registry import LayerInfo, get_layer, require_property

METRES_PER_DEGREE_LAT = 110_574.0
MAX_RADIUS_M = 200_000.0


@dataclass
class QueryResult:
    """Rows of a query: properties per row and an optional WGS84 geometry per row."""

    name: str
    columns: list[str]
    rows: list[dict[str, Any]]
    geometries: list[shapely.Geometry | None]
    truncated: bool = False
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rows)


def degree_margin(radius_m: float, max_abs_lat: float) -> float:
    """Degrees that surely cover radius_m in longitude and latitude up to max_abs_lat."""
    lat = min(abs(max_abs_lat) + 1.0, 89.0)
    return radius_m / (111_000.0 * math.cos(math.radians(lat))) * 1.01 + 1e-6


def check_radius(radius_m: float) -> float:
    """A radius in metres, 0 < r <= 200 km."""
    if not (radius_m > 0 and radius_m <= MAX_RADIUS_M):
        raise InvalidInputError(
            f"radius must be in metres, between 0 and {MAX_RADIUS_M:.0f}; got {radius_m}",
            param="radius_m",
            i18n="err.queries.radius_must_be_in_metres",
            MAX_RADIUS_M=format(MAX_RADIUS_M, ".0f"),
            radius_m=radius_m,
        )
    return float(radius_m)


def check_point(lon: float, lat: float) -> tuple[float, float]:
    """A WGS84 lon/lat point."""
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise InvalidInputError(
            f"point ({lon}, {lat}) is not lon/lat in degrees (lon -180..180, lat -90..90)",
            param="point",
            i18n="err.queries.point_not_lon_lat_in",
            lon=lon,
            lat=lat,
        )
    return float(lon), float(lat)


def parse_polygon(geojson: Mapping[str, Any]) -> shapely.Geometry:
    """A GeoJSON Polygon/MultiPolygon (or a Feature of one), valid, in WGS84."""
    doc = dict(geojson)
    if doc.get("type") == "Feature":
        doc = dict(doc.get("geometry") or {})
    if doc.get("type") not in ("Polygon", "MultiPolygon"):
        raise InvalidInputError(
            f"polygon must be a GeoJSON Polygon or MultiPolygon; got {doc.get('type')!r}",
            param="polygon",
            i18n="err.queries.polygon_must_be_geojson_polygon",
            type=doc.get("type"),
        )
    try:
        geom = shape(doc)
    except (ValueError, TypeError, AttributeError, IndexError) as exc:
        raise InvalidInputError(
            f"polygon is not valid GeoJSON: {exc}",
            param="polygon",
            i18n="err.queries.polygon_not_valid_geojson",
            exc=str(exc),
        ) from exc
    if geom.is_empty:
        raise InvalidInputError(
            "polygon is empty", param="polygon", i18n="err.queries.polygon_empty"
        )
    minx, miny, maxx, maxy = geom.bounds
    if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
        raise InvalidInputError(
            "polygon coordinates must be lon/lat degrees",
            param="polygon",
            i18n="err.queries.polygon_coordinates_must_be_lon",
        )
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    return geom


def equals_json(info: LayerInfo, equals: Mapping[str, str] | None) -> str:
    """Property equality filters as one JSONB document for `properties @> :doc`.

    Names are checked against the layer's schema; values are coerced to the declared type.
    """
    import orjson

    doc: dict[str, Any] = {}
    schema = info.property_schema.get("properties", {})
    for name, value in (equals or {}).items():
        require_property(info, name)
        kind = schema.get(name, {}).get("type") if isinstance(schema.get(name), dict) else None
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "string")
        doc[name] = _coerce(name, str(value), kind)
    return orjson.dumps(doc).decode()


def _coerce(name: str, value: str, kind: Any) -> Any:
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
    except ValueError as exc:
        raise InvalidInputError(
            f"property '{name}' is a number; {value!r} is not",
            param=name,
            i18n="err.queries.property_number_not",
            name=name,
            value=value,
        ) from exc
    if kind == "boolean":
        if value.lower() not in ("true", "false"):
            raise InvalidInputError(
                f"property '{name}' is true or false; got {value!r}",
                param=name,
                i18n="err.queries.property_true_or_false_got",
                name=name,
                value=value,
            )
        return value.lower() == "true"
    return value


def _max_abs_lat(conn: Connection, info: LayerInfo) -> float:
    from layers.features.tiles import layer_bounds

    bounds = layer_bounds(conn, info)
    return 0.0 if bounds is None else max(abs(bounds[1]), abs(bounds[3]))


def _feature_result(
    name: str, rows: Sequence[Any], limit: int, extra: Sequence[str] = ()
) -> QueryResult:
    """Rows of (id, wkb, properties, *extra) into a QueryResult, properties flattened."""
    truncated = len(rows) > limit
    rows = rows[:limit]
    cols: dict[str, None] = {"id": None}
    out: list[dict[str, Any]] = []
    geoms: list[shapely.Geometry | None] = []
    for r in rows:
        rec: dict[str, Any] = {"id": int(r[0])}
        rec.update(r[2] or {})
        for i, key in enumerate(extra):
            rec[key] = r[3 + i]
        for key in rec:
            cols.setdefault(key, None)
        out.append(rec)
        geoms.append(shapely.from_wkb(bytes(r[1])) if r[1] is not None else None)
    return QueryResult(name, list(cols), out, geoms, truncated)


_ADMIN_UNIT = text(
    "SELECT geom FROM admin_unit WHERE code = :code AND valid_to IS NULL "
    "ORDER BY valid_from DESC LIMIT 1"
)
_WITHIN_ADMIN = text(
    "WITH a AS (SELECT geom FROM admin_unit WHERE code = :code AND valid_to IS NULL "
    "           ORDER BY valid_from DESC LIMIT 1) "
    "SELECT f.id, ST_AsBinary(f.geom), f.properties FROM feature f, a "
    "WHERE f.layer_id = :layer AND f.geom && a.geom AND ST_Intersects(f.geom, a.geom) "
    "AND f.properties @> CAST(:f_eq AS jsonb) ORDER BY f.id LIMIT :limit"
)


def within_admin(
    conn: Connection,
    slug: str,
    code: str,
    limit: int,
    equals: Mapping[str, str] | None = None,
) -> QueryResult:
    """Features of a layer whose geometry intersects the admin unit (by code)."""
    info = get_layer(conn, slug)
    exists = conn.execute(_ADMIN_UNIT, {"code": code}).first()
    if exists is None:
        raise NotFoundError(
            f"admin unit '{code}' does not exist",
            admin_code=code,
            i18n="err.queries.admin_unit_does_not_exist",
        )
    params = {"f_eq": equals_json(info, equals)}
    sql = _WITHIN_ADMIN
    rows = conn.execute(sql, {"code": code, "layer": info.id, "limit": limit + 1, **params}).all()
    return _feature_result(f"{slug}_in_{code}", rows, limit)


def within_polygon(
    conn: Connection,
    slug: str,
    polygon: Mapping[str, Any],
    limit: int,
    equals: Mapping[str, str] | None = None,
) -> QueryResult:
    """Features of a layer intersecting a drawn GeoJSON polygon."""
    info = get_layer(conn, slug)
    geom = parse_polygon(polygon)
    params = {"f_eq": equals_json(info, equals)}
    sql = text(
        "WITH a AS (SELECT ST_SetSRID(ST_GeomFromWKB(:wkb), 4326) AS geom) "
        "SELECT f.id, ST_AsBinary(f.geom), f.properties FROM feature f, a "
        "WHERE f.layer_id = :layer AND f.geom && a.geom AND ST_Intersects(f.geom, a.geom) AND f.properties @> CAST(:f_eq AS jsonb) ORDER BY f.id LIMIT :limit"
    )
    rows = conn.execute(
        sql, {"wkb": shapely.to_wkb(geom), "layer": info.id, "limit": limit + 1, **params}
    ).all()
    return _feature_result(f"{slug}_in_polygon", rows, limit)


def within_radius(
    conn: Connection,
    slug: str,
    lon: float,
    lat: float,
    radius_m: float,
    limit: int,
    equals: Mapping[str, str] | None = None,
) -> QueryResult:
    """Features within radius_m metres of a point, nearest first, with distance_m."""
    info = get_layer(conn, slug)
    lon, lat = check_point(lon, lat)
    radius_m = check_radius(radius_m)
    margin = degree_margin(radius_m, abs(lat))
    params = {"f_eq": equals_json(info, equals)}
    sql = text(
        "WITH p AS (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS g) "
        "SELECT f.id, ST_AsBinary(f.geom), f.properties, "
        "ST_Distance(f.geom::geography, p.g::geography) AS distance_m FROM feature f, p "
        "WHERE f.layer_id = :layer AND f.geom && ST_Expand(p.g, :margin) "
        "AND ST_DWithin(f.geom::geography, p.g::geography, :r) AND f.properties @> CAST(:f_eq AS jsonb) ORDER BY distance_m, f.id LIMIT :limit"
    )
    rows = conn.execute(
        sql,
        {
            "lon": lon,
            "lat": lat,
            "margin": margin,
            "r": radius_m,
            "layer": info.id,
            "limit": limit + 1,
            **params,
        },
    ).all()
    return _feature_result(f"{slug}_within_{radius_m:.0f}m", rows, limit, ("distance_m",))


def near_layer(
    conn: Connection,
    slug: str,
    other_slug: str,
    radius_m: float,
    limit: int,
    equals: Mapping[str, str] | None = None,
    other_equals: Mapping[str, str] | None = None,
) -> QueryResult:
    """Features within radius_m of any feature of another layer, e.g. schools near hospitals.

    Each row carries the nearest other feature (nearest_id) and its distance (distance_m).
    """
    info = get_layer(conn, slug)
    other = get_layer(conn, other_slug)
    radius_m = check_radius(radius_m)
    margin = degree_margin(radius_m, max(_max_abs_lat(conn, info), _max_abs_lat(conn, other)))
    params = {"f_eq": equals_json(info, equals)}
    oparams = {"o_eq": equals_json(other, other_equals)}
    sql = text(
        "SELECT f.id, ST_AsBinary(f.geom), f.properties, n.id AS nearest_id, n.d AS distance_m "
        "FROM feature f CROSS JOIN LATERAL ("
        "  SELECT o.id, ST_Distance(o.geom::geography, f.geom::geography) AS d FROM feature o"
        "  WHERE o.layer_id = :other AND o.geom && ST_Expand(f.geom, :margin)"
        "  AND ST_DWithin(o.geom::geography, f.geom::geography, :r) AND o.properties @> CAST(:o_eq AS jsonb)  ORDER BY d, o.id LIMIT 1) n "
        "WHERE f.layer_id = :layer AND f.properties @> CAST(:f_eq AS jsonb) ORDER BY f.id LIMIT :limit"
    )
    rows = conn.execute(
        sql,
        {
            "layer": info.id,
            "other": other.id,
            "margin": margin,
            "r": radius_m,
            "limit": limit + 1,
            **params,
            **oparams,
        },
    ).all()
    return _feature_result(
        f"{slug}_within_{radius_m:.0f}m_of_{other_slug}", rows, limit, ("nearest_id", "distance_m")
    )


def nearest(
    conn: Connection,
    slug: str,
    lon: float,
    lat: float,
    k: int,
    equals: Mapping[str, str] | None = None,
) -> QueryResult:
    """The k features nearest to a point, by true (spheroid) distance in metres.

    KNN (<->) on the GiST index finds k candidates in degrees; the farthest of them bounds the
    search radius, and an exact geography pass over that radius ranks the answer.
    """
    info = get_layer(conn, slug)
    lon, lat = check_point(lon, lat)
    if not 1 <= k <= 1000:
        raise InvalidInputError(
            f"k must be between 1 and 1000; got {k}",
            param="k",
            i18n="err.queries.k_must_be_between_1",
            k=k,
        )
    params = {"f_eq": equals_json(info, equals)}
    base = {"lon": lon, "lat": lat, "layer": info.id, "k": k, **params}
    bound = conn.execute(
        text(
            "WITH p AS (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS g) "
            "SELECT max(ST_Distance(c.geom::geography, p.g::geography)) FROM p, LATERAL ("
            "  SELECT f.geom FROM feature f WHERE f.layer_id = :layer AND f.properties @> CAST(:f_eq AS jsonb)"
            "  ORDER BY f.geom <-> p.g LIMIT :k) c"
        ),
        base,
    ).scalar()
    if bound is None:
        return QueryResult(f"{slug}_nearest_{k}", ["id"], [], [])
    radius = float(bound) + 0.01
    margin = degree_margin(radius, abs(lat) + radius / METRES_PER_DEGREE_LAT)
    sql = text(
        "WITH p AS (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS g) "
        "SELECT f.id, ST_AsBinary(f.geom), f.properties, "
        "ST_Distance(f.geom::geography, p.g::geography) AS distance_m FROM feature f, p "
        "WHERE f.layer_id = :layer AND f.geom && ST_Expand(p.g, :margin) "
        "AND ST_DWithin(f.geom::geography, p.g::geography, :r) AND f.properties @> CAST(:f_eq AS jsonb) ORDER BY distance_m, f.id LIMIT :k"
    )
    rows = conn.execute(sql, {**base, "margin": margin, "r": radius}).all()
    return _feature_result(f"{slug}_nearest_{k}", rows, k, ("distance_m",))


def per_commune(
    conn: Connection,
    slug: str,
    sum_property: str | None = None,
    per: float = 10_000.0,
    equals: Mapping[str, str] | None = None,
) -> QueryResult:
    """Count (and sum of a numeric property) per commune, and both per `per` inhabitants.

    A feature belongs to the commune containing its point-on-surface, so a parcel on a
    boundary is counted once.
    """
    info = get_layer(conn, slug)
    if sum_property is not None:
        require_property(info, sum_property)
        kind = info.property_schema.get("properties", {}).get(sum_property, {}).get("type")
        if kind not in ("integer", "number"):
            raise InvalidInputError(
                f"property '{sum_property}' is not numeric; it cannot be summed",
                param="sum_property",
                i18n="err.queries.property_not_numeric_it_cannot",
                sum_property=sum_property,
            )
    if not per > 0:
        raise InvalidInputError(
            "per must be a positive number of inhabitants",
            param="per",
            i18n="err.queries.per_must_be_positive_number",
        )
    params = {"f_eq": equals_json(info, equals)}
    sql = text(
        # Communes drive the loop: the feature index is probed with each commune's bbox, and
        # ST_Intersects reuses the commune's prepared geometry across its candidates.
        "WITH a AS (SELECT id, code, name, population, geom FROM admin_unit "
        "      WHERE level = 'commune' AND valid_to IS NULL), "
        "agg AS (SELECT a.id, count(f.id) AS n, sum(CASE WHEN jsonb_typeof(f.properties -> :prop)"
        "        = 'number' THEN (f.properties ->> :prop)::double precision END) AS total "
        "        FROM a LEFT JOIN feature f ON f.layer_id = :layer AND f.geom && a.geom "
        "        AND f.properties @> CAST(:f_eq AS jsonb) "
        "        AND ST_Intersects(a.geom, ST_PointOnSurface(f.geom)) GROUP BY a.id) "
        "SELECT a.code, a.name, a.population, agg.n, agg.total, ST_AsBinary(a.geom) "
        "FROM a JOIN agg ON agg.id = a.id ORDER BY a.code"
    )
    rows = conn.execute(sql, {"layer": info.id, "prop": sum_property or "", **params}).all()
    cols = ["code", "name", "population", "count", f"count_per_{per:g}"]
    if sum_property:
        cols += [f"sum_{sum_property}", f"sum_{sum_property}_per_{per:g}"]
    out: list[dict[str, Any]] = []
    geoms: list[shapely.Geometry | None] = []
    for code, name, pop, n, total, wkb in rows:
        pop_i = int(pop) if pop is not None else None
        rec: dict[str, Any] = {
            "code": code,
            "name": name,
            "population": pop_i,
            "count": int(n),
            f"count_per_{per:g}": (n / pop_i * per) if pop_i else None,
        }
        if sum_property:
            tot = float(total) if total is not None else 0.0
            rec[f"sum_{sum_property}"] = tot
            rec[f"sum_{sum_property}_per_{per:g}"] = (tot / pop_i * per) if pop_i else None
        out.append(rec)
        geoms.append(shapely.from_wkb(bytes(wkb)))
    return QueryResult(f"{slug}_per_commune", cols, out, geoms)


def gaps(
    conn: Connection,
    slug: str,
    radius_m: float,
    equals: Mapping[str, str] | None = None,
) -> QueryResult:
    """Communes whose representative point has no feature of the layer within radius_m metres.

    The representative point is PostGIS's ST_PointOnSurface of the commune (always inside it).
    Each row has nearest_m: the distance to the nearest such feature (None if the layer is empty).
    """
    info = get_layer(conn, slug)
    radius_m = check_radius(radius_m)
    margin = degree_margin(radius_m, _max_abs_lat(conn, info))
    params = {"f_eq": equals_json(info, equals)}
    sql = text(
        "WITH a AS (SELECT code, name, population, geom, ST_PointOnSurface(geom) AS p "
        "           FROM admin_unit WHERE level = 'commune' AND valid_to IS NULL) "
        "SELECT a.code, a.name, a.population, ST_AsBinary(a.geom), ST_AsBinary(a.p), "
        " (SELECT min(ST_Distance(f.geom::geography, a.p::geography)) FROM ("
        "    SELECT f.geom FROM feature f WHERE f.layer_id = :layer AND f.properties @> CAST(:f_eq AS jsonb)"
        "    ORDER BY f.geom <-> a.p LIMIT 8) f) AS nearest_m "
        "FROM a WHERE NOT EXISTS (SELECT 1 FROM feature f WHERE f.layer_id = :layer AND f.properties @> CAST(:f_eq AS jsonb) AND f.geom && ST_Expand(a.p, :margin)"
        " AND ST_DWithin(f.geom::geography, a.p::geography, :r)) ORDER BY a.code"
    )
    rows = conn.execute(sql, {"layer": info.id, "margin": margin, "r": radius_m, **params}).all()
    out: list[dict[str, Any]] = []
    geoms: list[shapely.Geometry | None] = []
    for code, name, pop, wkb, pwkb, near in rows:
        p = shapely.from_wkb(bytes(pwkb))
        out.append(
            {
                "code": code,
                "name": name,
                "population": int(pop) if pop is not None else None,
                "point_lon": p.x,
                "point_lat": p.y,
                "nearest_m": float(near) if near is not None else None,
            }
        )
        geoms.append(shapely.from_wkb(bytes(wkb)))
    cols = ["code", "name", "population", "point_lon", "point_lat", "nearest_m"]
    return QueryResult(f"communes_without_{slug}_within_{radius_m:.0f}m", cols, out, geoms)


_BUFFER_EACH = text(
    "SELECT f.id, ST_AsBinary(b.g), f.properties, ST_Area(b.g::geography) AS area_m2 "
    "FROM feature f CROSS JOIN LATERAL "
    "  (SELECT ST_Buffer(f.geom::geography, :r, 'quad_segs=16')::geometry AS g) b "
    "WHERE f.layer_id = :layer AND f.properties @> CAST(:f_eq AS jsonb) "
    "ORDER BY f.id LIMIT :limit"
)
_BUFFER_DISSOLVED = text(
    "SELECT 0, ST_AsBinary(u.g), '{}'::jsonb, ST_Area(u.g::geography) AS area_m2 FROM "
    "(SELECT ST_Union(ST_Buffer(f.geom::geography, :r, 'quad_segs=16')::geometry) AS g FROM feature f "
    " WHERE f.layer_id = :layer AND f.properties @> CAST(:f_eq AS jsonb)) u "
    "WHERE u.g IS NOT NULL"
)


def buffer_layer(
    conn: Connection,
    slug: str,
    radius_m: float,
    dissolve: bool,
    limit: int,
    equals: Mapping[str, str] | None = None,
) -> QueryResult:
    """Geodesic buffers of a layer's features (radius in metres), optionally dissolved into one."""
    info = get_layer(conn, slug)
    radius_m = check_radius(radius_m)
    params = {"f_eq": equals_json(info, equals)}
    sql = _BUFFER_DISSOLVED if dissolve else _BUFFER_EACH
    rows = conn.execute(sql, {"layer": info.id, "r": radius_m, "limit": limit + 1, **params}).all()
    return _feature_result(f"{slug}_buffer_{radius_m:.0f}m", rows, limit, ("area_m2",))


_INTERSECTION = text(
    "WITH o AS MATERIALIZED (SELECT o.id, CASE WHEN :buffered "
    "   THEN ST_Buffer(o.geom::geography, :r, 'quad_segs=16')::geometry ELSE o.geom END AS geom "
    "   FROM feature o WHERE o.layer_id = :other AND o.properties @> CAST(:o_eq AS jsonb)) "
    "SELECT f.id, ST_AsBinary(x.g), f.properties, o.id AS other_id, "
    " ST_Area(x.g::geography) AS area_m2 "
    "FROM o JOIN feature f ON f.layer_id = :layer AND f.geom && o.geom "
    " AND ST_Intersects(f.geom, o.geom) "
    "CROSS JOIN LATERAL (SELECT ST_CollectionExtract(ST_Intersection(f.geom, o.geom), "
    "   CASE WHEN GeometryType(f.geom) LIKE '%POLYGON' THEN 3 "
    "        WHEN GeometryType(f.geom) LIKE '%LINESTRING' THEN 2 ELSE 1 END) AS g) x "
    "WHERE f.properties @> CAST(:f_eq AS jsonb) AND NOT ST_IsEmpty(x.g) "
    "ORDER BY f.id, o.id LIMIT :limit"
)


def intersection(
    conn: Connection,
    slug: str,
    other_slug: str,
    limit: int,
    buffer_m: float | None = None,
    equals: Mapping[str, str] | None = None,
    other_equals: Mapping[str, str] | None = None,
) -> QueryResult:
    """Pairwise intersection of two layers' geometries (other layer optionally buffered, metres).

    Each row: the first layer's feature id and properties, other_id, the intersection
    geometry and its area_m2 (geodesic).
    """
    info = get_layer(conn, slug)
    other = get_layer(conn, other_slug)
    params = {"f_eq": equals_json(info, equals)}
    oparams = {"o_eq": equals_json(other, other_equals)}
    if buffer_m is not None:
        buffer_m = check_radius(buffer_m)
    sql = _INTERSECTION
    rows = conn.execute(
        sql,
        {
            "layer": info.id,
            "other": other.id,
            "r": buffer_m or 0.0,
            "buffered": buffer_m is not None,
            "limit": limit + 1,
            **params,
            **oparams,
        },
    ).all()
    return _feature_result(f"{slug}_x_{other_slug}", rows, limit, ("other_id", "area_m2"))


# --- export --------------------------------------------------------------------------------

EXPORT_FORMATS = {
    "geojson": "application/geo+json",
    "csv": "text/csv; charset=utf-8",
    "gpkg": "application/geopackage+sqlite3",
    "parquet": "application/vnd.apache.parquet",
    "fgb": "application/flatgeobuf",
}


def to_geodataframe(result: QueryResult) -> Any:
    """The result as a GeoDataFrame in EPSG:4326 (nested values as JSON text)."""
    import geopandas as gpd
    import orjson

    records = [
        {k: (orjson.dumps(v).decode() if isinstance(v, dict | list) else v) for k, v in row.items()}
        for row in result.rows
    ]
    import pandas as pd

    frame = pd.DataFrame.from_records(records, columns=result.columns)
    return gpd.GeoDataFrame(frame, geometry=list(result.geometries), crs="EPSG:4326")


def result_arrow(result: QueryResult) -> pa.Table:
    """The result as an Arrow table: its columns, then the geometry as WKB."""
    frame = to_geodataframe(result).drop(columns="geometry")
    table = pa.Table.from_pandas(frame, preserve_index=False)
    wkb = [g.wkb if g is not None else None for g in result.geometries]
    return table.append_column(pa.field("geometry", pa.binary()), pa.array(wkb, pa.binary()))


def stream_export(result: QueryResult, fmt: str) -> Iterator[bytes]:
    """A result as GeoParquet or FlatGeobuf bytes, streamed (see layers.features.columnar)."""
    from layers.features import columnar

    table = result_arrow(result)
    batches = iter(table.to_batches(max_chunksize=columnar.BATCH_ROWS))
    if fmt == "parquet":
        kinds = sorted({g.geom_type for g in result.geometries if g is not None})
        return columnar.stream_geoparquet(batches, table.schema, kinds)
    return columnar.stream_flatgeobuf(batches, table.schema, result.name)


def export(result: QueryResult, fmt: str) -> bytes:
    """Serialise a result as GeoJSON, CSV (WKT), GeoPackage, GeoParquet or FlatGeobuf."""
    import orjson

    if fmt not in EXPORT_FORMATS:
        raise InvalidInputError(
            f"format must be one of {', '.join(EXPORT_FORMATS)}; got {fmt!r}",
            param="format",
            i18n="err.queries.format_must_be_one_got",
            items=", ".join(EXPORT_FORMATS),
            fmt=fmt,
        )
    if fmt == "geojson":
        feats = [
            {
                "type": "Feature",
                "id": i,
                "geometry": shapely.geometry.mapping(g) if g is not None else None,
                "properties": row,
            }
            for i, (row, g) in enumerate(zip(result.rows, result.geometries, strict=True))
        ]
        doc = {
            "type": "FeatureCollection",
            "name": result.name,
            "numberReturned": len(feats),
            "truncated": result.truncated,
            "features": feats,
        }
        return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
    gdf = to_geodataframe(result)
    if fmt == "csv":
        import io

        frame = gdf.drop(columns="geometry")
        frame["wkt"] = [g.wkt if g is not None else "" for g in result.geometries]
        buf = io.StringIO()
        frame.to_csv(buf, index=False)
        return buf.getvalue().encode("utf-8")
    if fmt in ("parquet", "fgb"):
        return b"".join(stream_export(result, fmt))
    import tempfile
    from pathlib import Path

    import pyogrio

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "result.gpkg"
        pyogrio.write_dataframe(gdf, path, layer=result.name[:60], driver="GPKG")
        return path.read_bytes()
