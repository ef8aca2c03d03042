"""CQL2-text filters (OGC API – Features Part 3) parsed by pygeofilter, translated to SQLAlchemy Core.

Property names are checked against the layer's schema; every value is a bound parameter.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

import orjson
from pygeofilter import ast, values
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    and_,
    cast,
    false,
    func,
    literal,
    not_,
    or_,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import DateTime, Text

from layers.errors import InvalidInputError
from layers.features.registry import LayerInfo, property_names
from layers.models import feature

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# Deeper filters (e.g. an AND chain of 1,000 terms) would exhaust the recursion of the parser,
# the translation and SQLAlchemy's compiler; no real filter comes near.
MAX_FILTER_DEPTH = 100

GEOMETRY_NAMES = frozenset({"geometry", "geom", "the_geom"})
TIME_NAMES = frozenset({"datetime", "observed_at"})
_TEMPORAL_FUNC = re.compile(
    r"\b(T_(?:BEFORE|AFTER|MEETS|METBY|OVERLAPS|OVERLAPPEDBY|BEGINS|BEGUNBY|DURING|CONTAINS"
    r"|ENDS|ENDEDBY|EQUALS|INTERSECTS|DISJOINT))\s*\(",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class FilterCrs:
    """CRS of geometry literals: an SRID, and whether coordinates come lat/lon (EPSG:4326)."""

    srid: int = 4326
    lat_lon: bool = False


def _split_args(text: str, start: int) -> tuple[list[str], int]:
    """Split the comma-separated arguments of a call whose '(' is at text[start-1]."""
    depth, quote, args, cur = 0, False, [], start
    i = start
    while i < len(text):
        ch = text[i]
        if ch == "'":
            quote = not quote
        elif not quote:
            if ch == "(":
                depth += 1
            elif ch == ")":
                if depth == 0:
                    args.append(text[cur:i])
                    return args, i + 1
                depth -= 1
            elif ch == "," and depth == 0:
                args.append(text[cur:i])
                cur = i + 1
        i += 1
    raise InvalidInputError(
        "CQL2 filter has an unclosed '(' in a T_ function",
        param="filter",
        i18n="err.cql.cql2_filter_has_unclosed_in",
    )


def rewrite_temporal_functions(text: str) -> str:
    """Turn standard CQL2 `T_AFTER(a, b)` into the infix form pygeofilter's grammar reads."""
    out: list[str] = []
    pos = 0
    while True:
        m = _TEMPORAL_FUNC.search(text, pos)
        if m is None:
            out.append(text[pos:])
            return "".join(out)
        # Skip matches inside string literals.
        if text[: m.start()].count("'") % 2 == 1:
            out.append(text[pos : m.end()])
            pos = m.end()
            continue
        args, end = _split_args(text, m.end())
        if len(args) != 2:
            raise InvalidInputError(
                f"{m.group(1).upper()} takes 2 arguments; got {len(args)}",
                param="filter",
                i18n="err.cql.takes_2_arguments_got",
                name=m.group(1).upper(),
                n=len(args),
            )
        lhs, rhs = (rewrite_temporal_functions(a.strip()) for a in args)
        out.append(text[pos : m.start()])
        op = m.group(1).upper()
        if op == "T_DISJOINT":
            out.append(f"(NOT ({lhs} T_INTERSECTS {rhs}))")
        else:
            out.append(f"({lhs} {op} {rhs})")
        pos = end


def parse_cql2_text(text: str) -> ast.Node:
    """Parse CQL2-text; InvalidInputError carries the parser's position and expectation."""
    from lark.exceptions import LarkError
    from pygeofilter.parsers.cql2_text import parse

    if len(text) > 20_000:
        raise InvalidInputError(
            "CQL2 filter is longer than 20,000 characters",
            param="filter",
            i18n="err.cql.cql2_filter_longer_than_20",
        )
    try:
        node = parse(rewrite_temporal_functions(text))
    except LarkError as exc:
        first = str(exc).strip().splitlines()[0]
        raise InvalidInputError(
            f"invalid CQL2-text filter: {first}",
            param="filter",
            i18n="err.cql.invalid_cql2_text_filter",
            first=first,
        ) from exc
    except (ValueError, TypeError, KeyError) as exc:
        raise InvalidInputError(
            f"invalid CQL2-text filter: {exc}",
            param="filter",
            i18n="err.cql.invalid_cql2_text_filter_2",
            exc=str(exc),
        ) from exc
    if not isinstance(node, ast.Node):
        raise InvalidInputError(
            "CQL2 filter must be a condition",
            param="filter",
            i18n="err.cql.cql2_filter_must_be_condition",
        )
    return node


def parse_cql2_json(doc: str) -> ast.Node:
    """Parse CQL2-JSON into the same AST."""
    from pygeofilter.parsers.cql2_json import parse

    try:
        node = parse(doc)
    except Exception as exc:  # the JSON parser raises assorted types on bad input
        raise InvalidInputError(
            f"invalid CQL2-JSON filter: {exc}",
            param="filter",
            i18n="err.cql.invalid_cql2_json_filter",
            exc=str(exc),
        ) from exc
    if not isinstance(node, ast.Node):
        raise InvalidInputError(
            "CQL2 filter must be a condition",
            param="filter",
            i18n="err.cql.cql2_filter_must_be_condition",
        )
    return node


def queryables(info: LayerInfo) -> dict[str, Any]:
    """JSON Schema of what a filter may name: the declared properties, geometry and time."""
    props: dict[str, Any] = {
        "geometry": {
            "$ref": "https://geojson.org/schema/Geometry.json",
            "x-ogc-role": "primary-geometry",
        },
        "id": {"type": "integer", "title": "feature id"},
    }
    for name, schema in info.property_schema.get("properties", {}).items():
        props[name] = dict(schema) if isinstance(schema, dict) else {}
    if info.time_field:
        props.setdefault(info.time_field, {"type": "string", "format": "date-time"})
        props[info.time_field]["x-ogc-role"] = "primary-instant"
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "title": info.title_en,
        "properties": props,
        "additionalProperties": False,
    }


class _Translator:
    def __init__(self, info: LayerInfo, crs: FilterCrs) -> None:
        self.info = info
        self.crs = crs
        self.props = property_names(info)
        self.schema: dict[str, Any] = info.property_schema.get("properties", {})

    # --- operands -------------------------------------------------------------------------
    def _kind(self, name: str) -> str:
        spec = self.schema.get(name, {})
        kind = spec.get("type") if isinstance(spec, dict) else None
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "string")
        if kind == "string" and isinstance(spec, dict) and spec.get("format") == "date-time":
            return "datetime"
        return str(kind or "string")

    def attribute(self, node: Any) -> tuple[str, str]:
        """(name, kind) of an attribute; kind is geometry/time/id or the schema type."""
        if not isinstance(node, ast.Attribute):
            raise InvalidInputError(
                f"expected a property name, got {node!r}",
                param="filter",
                i18n="err.cql.expected_property_name_got",
                node=node,
            )
        name = node.name
        if name in GEOMETRY_NAMES:
            return name, "geometry"
        if name == self.info.time_field or (name in TIME_NAMES and name not in self.props):
            return name, "time"
        if name == "id" and "id" not in self.props:
            return name, "id"
        if name not in self.props:
            raise InvalidInputError(
                f"unknown property '{name}' in filter; queryables are: "
                f"{', '.join(['geometry', 'id', *self.props])}",
                param="filter",
                i18n="err.cql.unknown_property_in_filter_queryables",
                name=name,
                items=", ".join(["geometry", "id", *self.props]),
            )
        return name, self._kind(name)

    def _json_value(self, name: str, kind: str, value: Any) -> Any:
        if isinstance(value, bool):
            if kind != "boolean":
                raise InvalidInputError(
                    f"property '{name}' is not boolean",
                    param="filter",
                    i18n="err.cql.property_not_boolean",
                    name=name,
                )
            return value
        if kind in ("integer", "number"):
            if isinstance(value, int) and INT64_MIN <= value <= INT64_MAX:
                return value
            if isinstance(value, int | float):
                as_float = float(value)  # a 38-digit literal compares as a double
                if not math.isfinite(as_float):
                    raise InvalidInputError(
                        f"property '{name}': {value!r} is not a finite number",
                        param="filter",
                        i18n="err.cql.property_not_finite_number",
                        name=name,
                        value=value,
                    )
                return as_float
            try:
                return float(str(value))
            except ValueError as exc:
                raise InvalidInputError(
                    f"property '{name}' is a number; {value!r} is not",
                    param="filter",
                    i18n="err.cql.property_number_not",
                    name=name,
                    value=value,
                ) from exc
        if kind == "boolean":
            if str(value).lower() in ("true", "false"):
                return str(value).lower() == "true"
            raise InvalidInputError(
                f"property '{name}' is boolean; {value!r} is not",
                param="filter",
                i18n="err.cql.property_boolean_not",
                name=name,
                value=value,
            )
        if isinstance(value, int | float | str):
            return str(value) if not isinstance(value, str) else value
        raise InvalidInputError(
            f"cannot compare property '{name}' with {value!r}",
            param="filter",
            i18n="err.cql.cannot_compare_property_with",
            name=name,
            value=value,
        )

    def column(self, name: str, kind: str) -> ColumnElement[Any]:
        """The SQL expression of a non-geometry attribute."""
        if kind == "time":
            return feature.c.observed_at
        if kind == "id":
            return feature.c.id
        if kind == "datetime":
            return cast(feature.c.properties.op("->>")(name), DateTime(timezone=True))
        return feature.c.properties.op("->")(name)

    def value(self, name: str, kind: str, value: Any) -> ColumnElement[Any]:
        """A bound literal typed to compare with column(name, kind)."""
        if kind in ("time", "datetime"):
            return literal(_as_datetime(value), DateTime(timezone=True))
        if kind == "id":
            try:
                as_int = int(value)
            except (TypeError, ValueError) as exc:
                raise InvalidInputError(
                    f"id must be an integer; got {value!r}",
                    param="filter",
                    i18n="err.cql.id_must_be_integer_got",
                    value=value,
                ) from exc
            if not INT64_MIN <= as_int <= INT64_MAX:
                raise InvalidInputError(
                    f"id must be a 64-bit integer; got {value!r}",
                    param="filter",
                    i18n="err.cql.id_must_be_64_bit",
                    value=value,
                )
            return literal(as_int, BigInteger)
        doc = orjson.dumps(self._json_value(name, kind, value)).decode()
        return cast(literal(doc, Text), JSONB)

    def operand_pair(self, lhs: Any, rhs: Any) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
        if isinstance(lhs, ast.Function) or isinstance(rhs, ast.Function):
            return self._casei(lhs), self._casei(rhs)
        if not isinstance(lhs, ast.Attribute) and isinstance(rhs, ast.Attribute):
            lhs, rhs = rhs, lhs
        name, kind = self.attribute(lhs)
        if kind == "geometry":
            raise InvalidInputError(
                "use S_ functions to compare geometries",
                param="filter",
                i18n="err.cql.use_functions_to_compare_geometries",
            )
        if isinstance(rhs, ast.Attribute):
            rname, rkind = self.attribute(rhs)
            return self.column(name, kind), self.column(rname, rkind)
        return self.column(name, kind), self.value(name, kind, rhs)

    def _casei(self, node: Any) -> ColumnElement[Any]:
        if isinstance(node, ast.Function):
            if node.name.lower() not in ("lower", "casei") or len(node.arguments) != 1:
                raise InvalidInputError(
                    f"unsupported function {node.name}(); only CASEI() is available",
                    param="filter",
                    i18n="err.cql.unsupported_function_only_casei_available",
                    name=node.name,
                )
            return func.lower(self._casei(node.arguments[0]))
        if isinstance(node, ast.Attribute):
            name, kind = self.attribute(node)
            if kind in ("geometry", "time", "id"):
                raise InvalidInputError(
                    f"CASEI() needs a text property, not '{name}'",
                    param="filter",
                    i18n="err.cql.casei_needs_text_property_not",
                    name=name,
                )
            return feature.c.properties.op("->>")(name)
        if isinstance(node, str):
            return literal(node, Text)
        raise InvalidInputError(
            f"CASEI() needs text, got {node!r}",
            param="filter",
            i18n="err.cql.casei_needs_text_got",
            node=node,
        )

    # --- geometry ---------------------------------------------------------------------------
    def geometry_literal(self, node: Any) -> ColumnElement[Any]:
        if isinstance(node, values.Geometry):
            self._check_coordinates(list(_numbers(node.geometry.get("coordinates"))))
            gj = orjson.dumps(node.geometry).decode()
            geom = func.ST_SetSRID(func.ST_GeomFromGeoJSON(literal(gj, Text)), self.crs.srid)
        elif isinstance(node, values.Envelope):
            self._check_coordinates([node.x1, node.y1, node.x2, node.y2])
            geom = func.ST_MakeEnvelope(node.x1, node.y1, node.x2, node.y2, self.crs.srid)
        else:
            raise InvalidInputError(
                f"expected a geometry literal (WKT), got {node!r}",
                param="filter",
                i18n="err.cql.expected_geometry_literal_wkt_got",
                node=node,
            )
        return self._to_storage(geom)

    def _check_coordinates(self, flat: list[float]) -> None:
        """Refuse coordinates that are not finite or lie outside the filter-crs's area."""
        if any(not math.isfinite(v) for v in flat):
            raise InvalidInputError(
                "filter: coordinates must be finite numbers",
                param="filter",
                i18n="err.cql.filter_coordinates_must_be_finite",
            )
        xs, ys = flat[0::2], flat[1::2]
        if self.crs.lat_lon:
            xs, ys = ys, xs
        if self.crs.srid == 4326:
            lon, lat = xs, ys
        else:
            lon, lat = _to_lonlat(self.crs.srid, xs, ys)
        area = _area_of_use(self.crs.srid)
        ok = all(
            math.isfinite(x) and math.isfinite(y) and area[0] <= x <= area[2]
            and area[1] <= y <= area[3]
            for x, y in zip(lon, lat, strict=False)
        )  # fmt: skip
        if not ok:
            raise InvalidInputError(
                f"filter: coordinates outside the area of EPSG:{self.crs.srid} (filter-crs)",
                param="filter-crs",
                i18n="err.cql.filter_coordinates_outside_area_epsg",
                srid=self.crs.srid,
            )

    def _to_storage(self, geom: ColumnElement[Any]) -> ColumnElement[Any]:
        if self.crs.lat_lon:
            geom = func.ST_FlipCoordinates(geom)
        if self.crs.srid != 4326:
            geom = func.ST_Transform(geom, 4326)
        return geom

    def spatial(self, node: ast.SpatialComparisonPredicate) -> ColumnElement[bool]:
        lhs, rhs = node.lhs, node.rhs
        swapped = False
        if not isinstance(lhs, ast.Attribute):
            lhs, rhs, swapped = rhs, lhs, True
        _, kind = self.attribute(lhs)
        if kind != "geometry":
            raise InvalidInputError(
                "S_ functions compare the geometry property",
                param="filter",
                i18n="err.cql.functions_compare_geometry_property",
            )
        other = self.geometry_literal(rhs)
        fn = {
            ast.GeometryIntersects: func.ST_Intersects,
            ast.GeometryDisjoint: func.ST_Disjoint,
            ast.GeometryContains: func.ST_Contains,
            ast.GeometryWithin: func.ST_Within,
            ast.GeometryTouches: func.ST_Touches,
            ast.GeometryCrosses: func.ST_Crosses,
            ast.GeometryOverlaps: func.ST_Overlaps,
            ast.GeometryEquals: func.ST_Equals,
        }[type(node)]
        args = (other, feature.c.geom) if swapped else (feature.c.geom, other)
        expr: ColumnElement[bool] = fn(*args)
        return expr

    # --- time -------------------------------------------------------------------------------
    def temporal(self, node: ast.TemporalPredicate) -> ColumnElement[bool]:
        lhs, rhs = node.lhs, node.rhs
        if not isinstance(lhs, ast.Attribute):
            lhs, rhs = rhs, lhs
        name, kind = self.attribute(lhs)
        if kind not in ("time", "datetime"):
            raise InvalidInputError(
                f"T_ functions need a time property; '{name}' is not one",
                param="filter",
                i18n="err.cql.t_functions_need_time_property",
                name=name,
            )
        col = self.column(name, kind)
        start, end = _as_interval(rhs)
        s = literal(start, DateTime(timezone=True)) if start else None
        e = literal(end, DateTime(timezone=True)) if end else None
        op = type(node)
        if op is ast.TimeBefore:
            bound = s if s is not None else e
            return col < bound if bound is not None else false()
        if op is ast.TimeAfter:
            bound = e if e is not None else s
            return col > bound if bound is not None else false()
        if op is ast.TimeDuring:
            return _within(col, s, e, strict=True)
        if op in (ast.TimeEquals, ast.TimeOverlaps):
            # Feature times are instants: equal to / intersecting an instant or an interval.
            return _within(col, s, e, strict=False)
        raise InvalidInputError(
            f"{node.op.value} is not supported on instants; use T_BEFORE, T_AFTER, T_DURING, "
            "T_EQUALS, T_INTERSECTS or T_DISJOINT",
            param="filter",
            i18n="err.cql.not_supported_on_instants_use",
            value=node.op.value,
        )

    # --- walk -------------------------------------------------------------------------------
    def __call__(self, node: Any) -> ColumnElement[bool]:
        if isinstance(node, ast.And):
            return and_(self(node.lhs), self(node.rhs))
        if isinstance(node, ast.Or):
            return or_(self(node.lhs), self(node.rhs))
        if isinstance(node, ast.Not):
            return not_(self(node.sub_node))
        if isinstance(node, ast.Include):
            return false() if node.not_ else true()
        if isinstance(node, ast.Comparison):
            left, right = self.operand_pair(node.lhs, node.rhs)
            ops = {
                ast.Equal: left.__eq__,
                ast.NotEqual: left.__ne__,
                ast.LessThan: left.__lt__,
                ast.LessEqual: left.__le__,
                ast.GreaterThan: left.__gt__,
                ast.GreaterEqual: left.__ge__,
            }
            result: ColumnElement[bool] = ops[type(node)](right)
            return result
        if isinstance(node, ast.Between):
            left, low = self.operand_pair(node.lhs, node.low)
            _, high = self.operand_pair(node.lhs, node.high)
            expr = and_(left >= low, left <= high)
            return not_(expr) if node.not_ else expr
        if isinstance(node, ast.In):
            name, kind = self.attribute(node.lhs)
            col = self.column(name, kind)
            if not node.sub_nodes:
                raise InvalidInputError(
                    "IN needs at least one value",
                    param="filter",
                    i18n="err.cql.in_needs_at_least_one",
                )
            expr = col.in_([self.value(name, kind, v) for v in node.sub_nodes])
            return not_(expr) if node.not_ else expr
        if isinstance(node, ast.Like):
            return self.like(node)
        if isinstance(node, ast.IsNull):
            name, kind = self.attribute(node.lhs)
            if kind in ("time",):
                expr = feature.c.observed_at.is_(None)
            elif kind in ("geometry", "id"):
                expr = false()
            else:
                expr = func.coalesce(
                    feature.c.properties.op("->")(name), cast(literal("null", Text), JSONB)
                ) == cast(literal("null", Text), JSONB)
            return not_(expr) if node.not_ else expr
        if isinstance(node, ast.SpatialComparisonPredicate):
            return self.spatial(node)
        if isinstance(node, ast.BBox):
            _, kind = self.attribute(node.lhs)
            if kind != "geometry":
                raise InvalidInputError(
                    "BBOX() needs the geometry property",
                    param="filter",
                    i18n="err.cql.bbox_needs_geometry_property",
                )
            env = self._to_storage(
                func.ST_MakeEnvelope(node.minx, node.miny, node.maxx, node.maxy, self.crs.srid)
            )
            expr2: ColumnElement[bool] = func.ST_Intersects(feature.c.geom, env)
            return expr2
        if isinstance(node, ast.TemporalPredicate):
            return self.temporal(node)
        raise InvalidInputError(
            f"unsupported CQL2 construct: {type(node).__name__}",
            param="filter",
            i18n="err.cql.unsupported_cql2_construct",
            construct=type(node).__name__,
        )

    def like(self, node: ast.Like) -> ColumnElement[bool]:
        if isinstance(node.lhs, ast.Function) or isinstance(node.pattern, ast.Function):
            left, pattern = self._casei(node.lhs), self._casei(node.pattern)
        else:
            name, kind = self.attribute(node.lhs)
            if kind in ("geometry", "time", "id"):
                raise InvalidInputError(
                    f"LIKE needs a text property, not '{name}'",
                    param="filter",
                    i18n="err.cql.like_needs_text_property_not",
                    name=name,
                )
            if not isinstance(node.pattern, str):
                raise InvalidInputError(
                    "LIKE needs a quoted pattern",
                    param="filter",
                    i18n="err.cql.like_needs_quoted_pattern",
                )
            left = feature.c.properties.op("->>")(name)
            pattern = literal(node.pattern, Text)
        expr = left.ilike(pattern, escape="\\") if node.nocase else left.like(pattern, escape="\\")
        return not_(expr) if node.not_ else expr


def _within(
    col: ColumnElement[Any],
    s: ColumnElement[Any] | None,
    e: ColumnElement[Any] | None,
    strict: bool,
) -> ColumnElement[bool]:
    conds: list[ColumnElement[bool]] = []
    if s is not None:
        conds.append(col > s if strict else col >= s)
    if e is not None:
        conds.append(col < e if strict else col <= e)
    return and_(*conds) if conds else col.is_not(None)


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise InvalidInputError(
                f"not a timestamp: {value!r}",
                param="filter",
                i18n="err.cql.not_timestamp",
                value=value,
            ) from exc
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise InvalidInputError(
        f"expected a TIMESTAMP, DATE or INTERVAL, got {value!r}",
        param="filter",
        i18n="err.cql.expected_timestamp_date_or_interval",
        value=value,
    )


def _as_interval(value: Any) -> tuple[datetime | None, datetime | None]:
    if isinstance(value, values.Interval):
        start = None if value.start in (None, "..") else _as_datetime(value.start)
        end = None if value.end in (None, "..") else _as_datetime(value.end)
        if isinstance(value.end, timedelta) and start is not None:
            end = start + value.end
        return start, end
    if isinstance(value, date) and not isinstance(value, datetime):
        # A DATE is the whole (UTC) day.
        start = _as_datetime(value)
        return start, start + timedelta(days=1) - timedelta(microseconds=1)
    instant = _as_datetime(value)
    return instant, instant


def _numbers(value: Any) -> Iterator[float]:
    """Every number in nested GeoJSON coordinates, in order."""
    stack = [value]
    out: list[float] = []
    while stack:
        v = stack.pop()
        if isinstance(v, list | tuple):
            stack.extend(reversed(v))
        elif isinstance(v, int | float) and not isinstance(v, bool):
            out.append(float(v))
    return iter(out)


@lru_cache(maxsize=32)
def _area_of_use(srid: int) -> tuple[float, float, float, float]:
    """(west, south, east, north) in degrees where a CRS is valid (a little margin)."""
    from pyproj import CRS

    area = CRS.from_epsg(srid).area_of_use
    if area is None:
        return (-180.0, -90.0, 180.0, 90.0)
    return (area.west - 1, area.south - 1, area.east + 1, area.north + 1)


def _to_lonlat(srid: int, xs: list[float], ys: list[float]) -> tuple[list[float], list[float]]:
    from pyproj import Transformer

    t = Transformer.from_crs(srid, 4326, always_xy=True)
    lon, lat = t.transform(xs, ys, errcheck=False)
    return list(map(float, lon)), list(map(float, lat))


def _check_depth(node: Any) -> None:
    stack = [(node, 1)]
    while stack:
        n, depth = stack.pop()
        if depth > MAX_FILTER_DEPTH:
            raise InvalidInputError(
                f"filter is nested more than {MAX_FILTER_DEPTH} levels (e.g. a long chain of"
                " AND/OR); use IN (...) or split it",
                param="filter",
                i18n="err.cql.filter_nested_more_than_levels",
                MAX_FILTER_DEPTH=MAX_FILTER_DEPTH,
            )
        if isinstance(n, ast.Node):
            stack.extend((c, depth + 1) for c in n.get_sub_nodes())


def to_sql(node: ast.Node, info: LayerInfo, crs: FilterCrs | None = None) -> ColumnElement[bool]:
    """SQLAlchemy condition equivalent to a CQL2 AST, against one layer's features."""
    _check_depth(node)
    return _Translator(info, crs or FilterCrs())(node)


def compile_filter(
    text: str, info: LayerInfo, lang: str = "cql2-text", crs: FilterCrs | None = None
) -> ColumnElement[bool]:
    """Parse and translate a filter in the given language (cql2-text or cql2-json)."""
    if lang not in ("cql2-text", "cql2-json"):
        raise InvalidInputError(
            f"filter-lang must be cql2-text or cql2-json; got {lang!r}",
            param="filter-lang",
            i18n="err.cql.filter_lang_must_be_cql2",
            lang=lang,
        )
    try:
        node = parse_cql2_text(text) if lang == "cql2-text" else parse_cql2_json(text)
    except RecursionError as exc:
        raise InvalidInputError(
            f"filter is nested more than {MAX_FILTER_DEPTH} levels",
            param="filter",
            i18n="err.cql.filter_nested_more_than_levels_2",
            MAX_FILTER_DEPTH=MAX_FILTER_DEPTH,
        ) from exc
    return to_sql(node, info, crs)
