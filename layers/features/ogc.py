"""OGC API – Features (Parts 1, 2, 3): CRS handling, items queries and the documents' content."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    case,
    cast,
    column,
    func,
    or_,
    select,
    table,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import Double, Text

from layers.errors import InvalidInputError, NotFoundError
from layers.features import ogc_tiles
from layers.features.items import equality_condition, parse_bbox, properties_expr
from layers.features.partitions import partition_name
from layers.features.registry import LayerInfo, property_names
from layers.models import feature

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CRS84H = "http://www.opengis.net/def/crs/OGC/1.3/CRS84h"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/"
SUPPORTED_SRIDS = (4326, 3857, 9208)

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
    *ogc_tiles.CONFORMANCE,
    "http://www.opengis.net/spec/cql2/1.0/conf/temporal-functions",
]


@dataclass(frozen=True)
class Crs:
    """A CRS the API speaks: its URI, SRID, and whether its axis order is lat/lon."""

    uri: str
    srid: int
    lat_lon: bool

    @property
    def precision(self) -> int:
        """Decimal places worth sending: ~1 cm in degrees or metres."""
        return 7 if self.srid == 4326 else 2


CRS_BY_URI: dict[str, Crs] = {
    CRS84: Crs(CRS84, 4326, False),
    CRS84H: Crs(CRS84, 4326, False),
    EPSG + "4326": Crs(EPSG + "4326", 4326, True),
    EPSG + "3857": Crs(EPSG + "3857", 3857, False),
    EPSG + "9208": Crs(EPSG + "9208", 9208, False),
}
STORAGE_CRS = CRS_BY_URI[CRS84]
CRS_LIST = [CRS84, EPSG + "4326", EPSG + "3857", EPSG + "9208"]


def parse_crs(raw: str | None, param: str) -> Crs:
    """A crs/bbox-crs/filter-crs value (URI, [OGC:CRS84] curie or EPSG:n), else 400 with the list."""
    if raw is None or raw == "":
        return STORAGE_CRS
    value = raw.strip()
    if value.startswith("[") and value.endswith("]"):
        value = value[1:-1]
    if value.upper() in ("OGC:CRS84", "CRS84"):
        value = CRS84
    elif value.upper().startswith("EPSG:"):
        value = EPSG + value.split(":", 1)[1]
    value = value.replace("https://", "http://")
    crs = CRS_BY_URI.get(value)
    if crs is None:
        raise InvalidInputError(
            f"{param} {raw!r} is not supported; use one of: {', '.join(CRS_LIST)}",
            param=param,
            i18n="err.ogc.not_supported_use_one",
            raw=raw,
            items=", ".join(CRS_LIST),
        )
    return crs


def parse_bbox_in(raw: str | None, crs: Crs) -> tuple[float, float, float, float] | None:
    """A bbox in `crs` (lat/lon order for EPSG:4326), returned in CRS84 lon/lat."""
    if raw is None or raw == "":
        return None
    parts = raw.split(",")
    if len(parts) == 6:
        # 3D bbox: drop the heights.
        parts = [parts[0], parts[1], parts[3], parts[4]]
    if crs.srid == 4326:
        if crs.lat_lon and len(parts) == 4:
            parts = [parts[1], parts[0], parts[3], parts[2]]
        return parse_bbox(",".join(parts))
    if len(parts) != 4:
        raise InvalidInputError(
            "bbox must have 4 numbers minx,miny,maxx,maxy",
            param="bbox",
            i18n="err.ogc.bbox_must_have_4_numbers",
        )
    try:
        minx, miny, maxx, maxy = (float(p) for p in parts)
    except ValueError as exc:
        raise InvalidInputError(
            f"bbox has a value that is not a number: {raw!r}",
            param="bbox",
            i18n="err.ogc.bbox_has_value_that_not",
            raw=raw,
        ) from exc
    if minx > maxx or miny > maxy:
        raise InvalidInputError(
            "bbox is inverted: minx must be <= maxx and miny <= maxy",
            param="bbox",
            i18n="err.ogc.bbox_inverted_minx_must_be",
        )
    from pyproj import Transformer

    tr = Transformer.from_crs(crs.srid, 4326, always_xy=True)
    lon0, lat0, lon1, lat1 = tr.transform_bounds(minx, miny, maxx, maxy)
    return parse_bbox([lon0, lat0, lon1, lat1])


def _parse_instant(raw: str) -> datetime:
    value = raw.strip()
    if len(value) == 11 and value[10] in "Tt":
        # GDAL's OAPIF driver (3.6, Debian 12) turns a date literal of -where into "2026-06-01T".
        value = value[:10]
    try:
        if len(value) == 10:
            parsed = datetime.fromisoformat(value)
        else:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise InvalidInputError(
            f"datetime {raw!r} is not RFC 3339 (e.g. 2025-01-31T08:00:00Z)",
            param="datetime",
            i18n="err.ogc.datetime_not_rfc_3339_e",
            raw=raw,
        ) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_datetime(raw: str | None) -> tuple[datetime | None, datetime | None] | None:
    """`datetime=` as an instant or an interval with '..' open ends: (start, end) inclusive."""
    if raw is None or raw == "":
        return None
    if "/" in raw:
        a, _, b = raw.partition("/")
        start = None if a in ("", "..") else _parse_instant(a)
        end = None if b in ("", "..") else _parse_instant(b)
        if start is None and end is None:
            raise InvalidInputError(
                "datetime interval '../..' has no bound",
                param="datetime",
                i18n="err.ogc.datetime_interval_has_no_bound",
            )
        if start and end and start > end:
            raise InvalidInputError(
                "datetime interval ends before it starts",
                param="datetime",
                i18n="err.ogc.datetime_interval_ends_before_it",
            )
        return (start, end)
    instant = _parse_instant(raw)
    if len(raw.strip()) == 10:
        from datetime import timedelta

        return (instant, instant + timedelta(days=1) - timedelta(microseconds=1))
    return (instant, instant)


@dataclass
class ItemsQuery:
    """An /items request, parsed and validated."""

    limit: int = 10
    bbox: tuple[float, float, float, float] | None = None
    datetime: tuple[datetime | None, datetime | None] | None = None
    equals: dict[str, str] = field(default_factory=dict)
    filter: ColumnElement[bool] | None = None
    after: int | None = None
    before: int | None = None
    crs: Crs = STORAGE_CRS
    # (property, descending) keys; sorted pages are paged by offset instead of by id
    sortby: list[tuple[str, bool]] = field(default_factory=list)
    offset: int = 0


@dataclass
class ItemsPage:
    """One page of features, pre-serialised, with what the links need."""

    features_json: list[str]
    number_matched: int | None
    next_after: int | None
    prev_before: int | None
    next_offset: int | None = None
    prev_offset: int | None = None


def parse_sortby(raw: str | None, info: LayerInfo) -> list[tuple[str, bool]]:
    """OGC API Features Part 8 sortby: "name,-beds" / "+name" -> [(name, desc)], checked."""
    if raw is None or not raw.strip():
        return []
    names = [*property_names(info), "id"]
    keys: list[tuple[str, bool]] = []
    for part in raw.split(","):
        part = part.strip()
        desc = part.startswith("-")
        name = part.lstrip("+-").strip()
        if name not in names:
            raise InvalidInputError(
                f"sortby: unknown property '{name}'; sortable: {', '.join(names)}",
                param="sortby",
                i18n="err.ogc.sortby_unknown_property_sortable",
                name=name,
                items=", ".join(names),
            )
        keys.append((name, desc))
    return keys


def _sort_expr(name: str, desc: bool) -> ColumnElement[Any]:
    """jsonb ordering: numbers as numbers, strings as text; missing values last."""
    col: ColumnElement[Any] = feature.c.id if name == "id" else feature.c.properties.op("->")(name)
    return col.desc().nulls_last() if desc else col.asc().nulls_last()


def query_sorted_items(
    conn: Connection,
    info: LayerInfo,
    query: ItemsQuery,
    exact_count_max_rows: int = 200_000,
    known_total: int | None = None,
) -> ItemsPage:
    """One page of items ordered by query.sortby (then id), paged by offset."""
    conds = conditions(info, query)
    order = [_sort_expr(n, d) for n, d in query.sortby] + [feature.c.id]
    stmt = (
        select(feature.c.id, feature_doc_expr(query.crs, info))
        .where(and_(*conds))
        .order_by(*order)
        .offset(query.offset)
        .limit(query.limit + 1)
    )
    rows = list(conn.execute(stmt).all())
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    matched = (
        known_total
        if known_total is not None
        else number_matched(conn, info, conds, exact_count_max_rows)
    )
    return ItemsPage(
        [str(r[1]) for r in rows],
        matched,
        None,
        None,
        next_offset=query.offset + query.limit if more else None,
        prev_offset=max(0, query.offset - query.limit) if query.offset > 0 else None,
    )


def geometry_expr(crs: Crs) -> ColumnElement[Any]:
    """Stored geometry in the requested CRS and axis order."""
    geom: ColumnElement[Any] = feature.c.geom
    if crs.srid != 4326:
        geom = func.ST_Transform(geom, crs.srid)
    if crs.lat_lon:
        geom = func.ST_FlipCoordinates(geom)
    return geom


def feature_doc_expr(crs: Crs, info: LayerInfo) -> ColumnElement[str]:
    """One feature as GeoJSON text, built by PostgreSQL (properties include source_key)."""
    return cast(
        func.jsonb_build_object(
            "type",
            "Feature",
            "id",
            feature.c.id,
            "geometry",
            cast(func.ST_AsGeoJSON(geometry_expr(crs), crs.precision), JSONB),
            "properties",
            properties_expr(info),
        ),
        Text,
    )


def conditions(info: LayerInfo, query: ItemsQuery) -> list[ColumnElement[bool]]:
    """WHERE conditions of an items query (without paging)."""
    conds: list[ColumnElement[bool]] = [feature.c.layer_id == info.id]
    if query.bbox is not None:
        env = func.ST_MakeEnvelope(*query.bbox, 4326)
        # A feature whose bbox lies inside the (rectangular) bbox intersects it: only those on
        # its edge need the exact test, which is most of a count's cost over a big bbox.
        conds.append(
            and_(
                feature.c.geom.op("&&")(env),
                or_(feature.c.geom.op("@")(env), func.ST_Intersects(feature.c.geom, env)),
            )
        )
    if query.datetime is not None:
        start, end = query.datetime
        if start is not None:
            conds.append(feature.c.observed_at >= start)
        if end is not None:
            conds.append(feature.c.observed_at <= end)
    for name, value in query.equals.items():
        conds.append(equality_condition(info, name, value))
    if query.filter is not None:
        conds.append(query.filter)
    return conds


def _estimate_rows(conn: Connection, stmt: Select[Any]) -> int:
    """Planner's row estimate of a statement; values stay bound (no literal SQL)."""
    compiled = stmt.compile(dialect=postgresql.dialect())  # type: ignore[no-untyped-call]
    raw = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + str(compiled), compiled.params)
    plan = raw.scalar_one()
    doc = plan if isinstance(plan, list) else orjson.loads(plan)
    return int(doc[0]["Plan"]["Plan Rows"])


def partition_rows_estimate(conn: Connection, info: LayerInfo) -> int:
    """reltuples of the layer's partition (-1 when never analysed)."""
    value = conn.execute(
        text("SELECT reltuples FROM pg_class WHERE relname = :n"), {"n": partition_name(info.id)}
    ).scalar()
    return int(value) if value is not None else -1


def number_matched(
    conn: Connection, info: LayerInfo, conds: list[ColumnElement[bool]], exact_max_rows: int
) -> int:
    """Exact count on small layers, the planner's estimate on large ones."""
    estimate = partition_rows_estimate(conn, info)
    stmt = select(func.count()).select_from(feature).where(and_(*conds))
    if estimate <= exact_max_rows:
        return int(conn.execute(stmt).scalar_one())
    if len(conds) == 1:
        return estimate
    return _estimate_rows(conn, select(feature.c.id).where(and_(*conds)))


def is_unfiltered(query: ItemsQuery) -> bool:
    """True when the query selects the whole layer (its count can be cached per version)."""
    return (
        query.bbox is None and query.datetime is None and not query.equals and query.filter is None
    )


_PG_CLASS = table("pg_class", column("relname", Text), column("reltuples", Double))


def query_items(
    conn: Connection,
    info: LayerInfo,
    query: ItemsQuery,
    exact_count_max_rows: int = 200_000,
    known_total: int | None = None,
) -> ItemsPage:
    """One keyset page of items (by id), forwards from `after` or backwards from `before`."""
    conds = conditions(info, query)
    paging = list(conds)
    backwards = query.before is not None
    if query.after is not None:
        paging.append(feature.c.id > query.after)
    if query.before is not None:
        paging.append(feature.c.id < query.before)
    order = feature.c.id.desc() if backwards else feature.c.id
    columns: list[ColumnElement[Any]] = [feature.c.id, feature_doc_expr(query.crs, info)]
    if known_total is None:
        # The exact count rides along in the same round trip, as a scalar subquery PostgreSQL
        # evaluates once, and only when the partition is small enough for it (else NULL).
        count = select(func.count()).select_from(feature).where(and_(*conds))
        reltuples = (
            select(_PG_CLASS.c.reltuples)
            .where(_PG_CLASS.c.relname == partition_name(info.id))
            .scalar_subquery()
        )
        columns.append(
            case(
                (
                    func.coalesce(reltuples, -1) <= exact_count_max_rows,
                    count.scalar_subquery(),
                ),
                else_=None,
            )
        )
    stmt = select(*columns).where(and_(*paging)).order_by(order).limit(query.limit + 1)
    rows = list(conn.execute(stmt).all())
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    if backwards:
        rows.reverse()
    ids = [int(r[0]) for r in rows]
    if backwards:
        next_after = ids[-1] if ids else None
        prev_before = ids[0] if more and ids else None
    else:
        next_after = ids[-1] if more and ids else None
        prev_before = ids[0] if query.after is not None and ids else None
    matched = known_total
    if matched is None and rows and rows[0][2] is not None:
        matched = int(rows[0][2])
    elif matched is None and not rows and query.after is None and query.before is None:
        matched = 0  # nothing on an unpaged page: nothing matches
    if matched is None:
        matched = number_matched(conn, info, conds, exact_count_max_rows)
    return ItemsPage([str(r[1]) for r in rows], matched, next_after, prev_before)


def get_item(conn: Connection, info: LayerInfo, feature_id: str, crs: Crs) -> str:
    """One feature as GeoJSON text, or NotFoundError."""
    try:
        fid = int(feature_id)
    except ValueError:
        fid = -1
    doc = None
    if fid >= 0:
        doc = conn.execute(
            select(feature_doc_expr(crs, info)).where(
                feature.c.layer_id == info.id, feature.c.id == fid
            )
        ).scalar()
    if doc is None:
        raise NotFoundError(
            f"feature '{feature_id}' does not exist in collection '{info.slug}'",
            collection=info.slug,
            i18n="err.ogc.feature_does_not_exist_in",
            feature_id=feature_id,
            layer=info.slug,
        )
    return str(doc)


def time_extent(conn: Connection, info: LayerInfo) -> tuple[datetime, datetime] | None:
    """First and last observed_at of a layer (index-served min/max)."""
    row = conn.execute(
        select(func.min(feature.c.observed_at), func.max(feature.c.observed_at)).where(
            feature.c.layer_id == info.id
        )
    ).one()
    return None if row[0] is None else (row[0], row[1])


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def collection_doc(
    info: LayerInfo,
    base: str,
    bbox: tuple[float, float, float, float] | None,
    times: tuple[datetime, datetime] | None,
) -> dict[str, Any]:
    """The /collections/{id} document."""
    href = f"{base}/collections/{info.slug}"
    extent: dict[str, Any] = {
        "spatial": {"bbox": [list(bbox or (-180.0, -90.0, 180.0, 90.0))], "crs": CRS84}
    }
    if info.time_field or times:
        extent["temporal"] = {
            "interval": [[_iso(times[0]), _iso(times[1])] if times else [None, None]],
            "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian",
        }
    return {
        "id": info.slug,
        "title": info.title_vi,
        "description": info.description or info.title_en,
        "keywords": [info.sector, info.title_en],
        "itemType": "feature",
        "extent": extent,
        "crs": CRS_LIST,
        "storageCrs": CRS84,
        "attribution": info.attribution,
        "license": info.license,
        "links": [
            {"rel": "self", "type": "application/json", "title": info.title_en, "href": href},
            {
                "rel": "items",
                "type": "application/geo+json",
                "title": f"{info.title_en} (GeoJSON)",
                "href": f"{href}/items",
            },
            {
                "rel": "http://www.opengis.net/def/rel/ogc/1.0/queryables",
                "type": "application/schema+json",
                "title": "Queryables",
                "href": f"{href}/queryables",
            },
            {
                "rel": "describedby",
                "type": "application/schema+json",
                "title": "Schema",
                "href": f"{href}/queryables",
            },
            *ogc_tiles.collection_tile_links(base, info.slug),
        ],
    }


def landing_doc(base: str, title: str) -> dict[str, Any]:
    """The landing page at /ogc."""
    return {
        "title": title,
        "description": "OGC API – Features of IOC Map (Nghệ An IOC): every layer as a collection.",
        "links": [
            {"rel": "self", "type": "application/json", "title": "This document", "href": base},
            {
                "rel": "service-desc",
                "type": "application/vnd.oai.openapi+json;version=3.0",
                "title": "OpenAPI 3.0 definition",
                "href": f"{base}/api",
            },
            {"rel": "service-doc", "type": "text/html", "title": "API docs", "href": "/docs"},
            {
                "rel": "conformance",
                "type": "application/json",
                "title": "Conformance classes",
                "href": f"{base}/conformance",
            },
            {
                "rel": "data",
                "type": "application/json",
                "title": "Collections",
                "href": f"{base}/collections",
            },
            {
                "rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes",
                "type": "application/json",
                "title": "Tile matrix sets",
                "href": f"{base}/tileMatrixSets",
            },
        ],
    }


def _param(
    name: str, desc: str, schema: dict[str, Any], style: str | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": name,
        "in": "query",
        "required": False,
        "description": desc,
        "schema": schema,
    }
    if style:
        out.update({"style": style, "explode": False})
    return out


def openapi_doc(base: str, default_limit: int, max_limit: int) -> dict[str, Any]:
    """A hand-written OpenAPI 3.0 definition of the /ogc endpoints (what GDAL/QGIS read)."""
    cid = {"name": "collectionId", "in": "path", "required": True, "schema": {"type": "string"}}
    fid = {"name": "featureId", "in": "path", "required": True, "schema": {"type": "string"}}
    items_params = [
        cid,
        _param(
            "limit",
            "Features per page",
            {"type": "integer", "minimum": 1, "maximum": max_limit, "default": default_limit},
        ),
        _param(
            "bbox",
            "minx,miny,maxx,maxy (in bbox-crs)",
            {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}},
            style="form",
        ),
        _param("bbox-crs", "CRS of bbox", {"type": "string", "format": "uri", "enum": CRS_LIST}),
        _param("crs", "CRS of the response", {"type": "string", "format": "uri", "enum": CRS_LIST}),
        _param("datetime", "Instant or interval (RFC 3339, '..' open)", {"type": "string"}),
        _param("filter", "CQL2 filter", {"type": "string"}),
        _param("sortby", "Sort keys: name,-other (+ ascending, - descending)", {"type": "string"}),
        _param("offset", "Rows to skip (sorted requests)", {"type": "integer", "minimum": 0}),
        _param(
            "filter-lang", "Filter language", {"type": "string", "enum": ["cql2-text", "cql2-json"]}
        ),
        _param("filter-crs", "CRS of filter geometries", {"type": "string", "format": "uri"}),
    ]
    json_ok = {"200": {"description": "OK", "content": {"application/json": {}}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "IOC Map – OGC API Features", "version": "1.0.0"},
        "servers": [{"url": base}],
        "paths": {
            "/": {"get": {"operationId": "getLandingPage", "responses": json_ok}},
            "/conformance": {"get": {"operationId": "getConformance", "responses": json_ok}},
            "/collections": {"get": {"operationId": "getCollections", "responses": json_ok}},
            "/collections/{collectionId}": {
                "get": {
                    "operationId": "describeCollection",
                    "parameters": [cid],
                    "responses": json_ok,
                }
            },
            "/collections/{collectionId}/queryables": {
                "get": {"operationId": "getQueryables", "parameters": [cid], "responses": json_ok}
            },
            "/collections/{collectionId}/items": {
                "get": {
                    "operationId": "getFeatures",
                    "parameters": items_params,
                    "responses": {
                        "200": {"description": "Features", "content": {"application/geo+json": {}}},
                        "400": {"description": "Bad request"},
                        "404": {"description": "Unknown collection"},
                    },
                }
            },
            "/collections/{collectionId}/items/{featureId}": {
                "get": {
                    "operationId": "getFeature",
                    "parameters": [cid, fid, items_params[4]],
                    "responses": {
                        "200": {"description": "Feature", "content": {"application/geo+json": {}}},
                        "404": {"description": "Unknown feature"},
                    },
                }
            },
        },
    }
