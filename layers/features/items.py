"""Feature queries: bbox, property equality filters and keyset paging, GeoJSON built in SQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, cast, func, literal, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import Text

from layers.errors import InvalidInputError
from layers.features.registry import LayerInfo, LayerSpec, property_names, require_property
from layers.models import feature

BBox = tuple[float, float, float, float]

# The property that carries a feature's stable identity (its source_key, the key it was
# imported under) in tiles and GeoJSON, e.g. for /api/indicators/{code}?level=feature&subject=.
SOURCE_KEY = "source_key"


def adds_source_key(info: LayerSpec) -> bool:
    """True when `source_key` is added from the column (the layer has no property of that name)."""
    return SOURCE_KEY not in property_names(info)


def with_source_key(props: ColumnElement[Any], key: ColumnElement[Any]) -> ColumnElement[Any]:
    """The properties document plus {"source_key": key} (a NULL key gives a JSON null)."""
    return props.op("||")(func.jsonb_build_object(literal(SOURCE_KEY, Text), key))


def properties_expr(info: LayerSpec) -> ColumnElement[Any]:
    """A feature's properties as served: the stored ones, plus source_key unless it has one."""
    if not adds_source_key(info):
        return feature.c.properties
    return with_source_key(feature.c.properties, feature.c.source_key)


def equality_condition(info: LayerSpec, name: str, value: str) -> ColumnElement[bool]:
    """`name = value` on a property (checked against the schema) or on the source_key column."""
    if name == SOURCE_KEY and adds_source_key(info):
        # The (layer_id, source_key) unique index serves this one.
        return feature.c.source_key == value
    require_property(info, name)
    return feature.c.properties.op("->>")(name) == value


def parse_bbox(raw: str | Sequence[float] | None) -> BBox | None:
    """Parse 'minx,miny,maxx,maxy' in WGS84 degrees, refusing anything inverted or off the globe."""
    if raw is None or raw == "":
        return None
    parts: Sequence[object] = raw.split(",") if isinstance(raw, str) else raw
    if len(parts) != 4:
        raise InvalidInputError(
            f"bbox must have 4 numbers minx,miny,maxx,maxy; got {len(parts)} values",
            param="bbox",
            i18n="err.items.bbox_must_have_4_numbers",
            n=len(parts),
        )
    try:
        minx, miny, maxx, maxy = (float(str(p).strip()) for p in parts)
    except ValueError as exc:
        raise InvalidInputError(
            f"bbox has a value that is not a number: {raw!r}",
            param="bbox",
            i18n="err.items.bbox_has_value_that_not",
            raw=raw,
        ) from exc
    if not (
        -180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= 90 and -90 <= maxy <= 90
    ):
        raise InvalidInputError(
            "bbox is outside WGS84 bounds (longitude -180..180, latitude -90..90)",
            param="bbox",
            i18n="err.items.bbox_outside_wgs84_bounds_longitude",
        )
    if minx > maxx or miny > maxy:
        raise InvalidInputError(
            "bbox is inverted: minx must be <= maxx and miny <= maxy",
            param="bbox",
            i18n="err.items.bbox_inverted_minx_must_be",
        )
    return (minx, miny, maxx, maxy)


def check_limit(limit: int, maximum: int) -> int:
    """Refuse a limit outside 1..maximum with a message that says the range."""
    if limit < 1 or limit > maximum:
        raise InvalidInputError(
            f"limit must be between 1 and {maximum}; got {limit}",
            param="limit",
            i18n="err.items.limit_must_be_between_1",
            maximum=maximum,
            limit=limit,
        )
    return limit


@dataclass
class FeatureQuery:
    """What a caller asks of one layer's features."""

    bbox: BBox | None = None
    limit: int = 1000
    after_id: int | None = None
    equals: Mapping[str, str] = field(default_factory=dict)
    time_from: datetime | None = None
    time_to: datetime | None = None
    # (property, descending): a sorted page is paged by offset, not by after_id
    sortby: Sequence[tuple[str, bool]] = ()
    offset: int = 0


@dataclass
class FeaturePage:
    """One page of features: pre-serialised GeoJSON Feature strings and the next cursor."""

    features_json: list[str]
    next_after_id: int | None


def feature_conditions(info: LayerInfo, query: FeatureQuery) -> list[ColumnElement[bool]]:
    """WHERE conditions for a query, with property names checked against the layer's schema."""
    conds: list[ColumnElement[bool]] = [feature.c.layer_id == info.id]
    if query.bbox is not None:
        conds.append(feature.c.geom.op("&&")(func.ST_MakeEnvelope(*query.bbox, 4326)))
        conds.append(func.ST_Intersects(feature.c.geom, func.ST_MakeEnvelope(*query.bbox, 4326)))
    for name, value in query.equals.items():
        conds.append(equality_condition(info, name, value))
    if query.time_from is not None:
        conds.append(feature.c.observed_at >= query.time_from)
    if query.time_to is not None:
        conds.append(feature.c.observed_at <= query.time_to)
    return conds


def geojson_feature_expr(info: LayerSpec) -> ColumnElement[str]:
    """SQL expression that renders one feature row of the layer as a GeoJSON Feature text."""
    return cast(
        func.jsonb_build_object(
            "type",
            "Feature",
            "id",
            feature.c.id,
            "geometry",
            cast(func.ST_AsGeoJSON(feature.c.geom, 7), JSONB),
            "properties",
            properties_expr(info),
        ),
        Text,
    )


def query_features(conn: Connection, info: LayerInfo, query: FeatureQuery) -> FeaturePage:
    """Fetch one page of a layer's features, ordered by id, keyset-paged with `after_id`."""
    conds = feature_conditions(info, query)
    if query.after_id is not None:
        conds.append(feature.c.id > query.after_id)
    order: list[Any] = []
    for name, desc in query.sortby:
        col = feature.c.id if name == "id" else feature.c.properties.op("->")(name)
        order.append(col.desc().nulls_last() if desc else col.asc().nulls_last())
    stmt = (
        select(feature.c.id, geojson_feature_expr(info).label("doc"))
        .where(and_(*conds))
        .order_by(*order, feature.c.id)
        .offset(query.offset if query.sortby else None)
        .limit(query.limit + 1)
    )
    rows = conn.execute(stmt).all()
    has_more = len(rows) > query.limit
    rows = rows[: query.limit]
    if query.sortby:
        # sorted pages: the cursor is the next offset
        return FeaturePage(
            [str(r[1]) for r in rows], query.offset + query.limit if has_more else None
        )
    next_after = int(rows[-1][0]) if has_more and rows else None
    return FeaturePage([str(r[1]) for r in rows], next_after)


def layer_row_count(conn: Connection, layer_id: int) -> int:
    """How many features the layer holds now (exact)."""
    return int(
        conn.execute(
            select(func.count()).select_from(feature).where(feature.c.layer_id == layer_id)
        ).scalar_one()
    )


def count_features(conn: Connection, info: LayerInfo, query: FeatureQuery) -> int:
    """Exact number of features matching the query (without paging)."""
    stmt = select(func.count()).select_from(feature).where(and_(*feature_conditions(info, query)))
    return int(conn.execute(stmt).scalar_one())


def estimate_layer_rows(conn: Connection, info: LayerInfo) -> int:
    """Planner's row estimate of a layer's partition: cheap numberMatched for huge layers."""
    from layers.features.partitions import partition_name

    stmt = text("SELECT reltuples FROM pg_class WHERE relname = :name")
    value = conn.execute(stmt, {"name": partition_name(info.id)}).scalar()
    return max(int(value or 0), 0)


def source_keys_by(conn: Connection, layer_id: int, prop: str | None) -> dict[str, str]:
    """A layer's source keys by a property's value (by the key itself when `prop` is None)."""
    code_col = feature.c.properties[prop].astext if prop else feature.c.source_key
    rows = conn.execute(
        select(code_col, feature.c.source_key).where(
            feature.c.layer_id == layer_id, feature.c.source_key.is_not(None)
        )
    )
    return {str(code): str(key) for code, key in rows if code is not None}
