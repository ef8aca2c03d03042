"""Storage side of the place search (`GET /api/search`): name lookups over features and reports.

Names are compared folded (marks stripped, đ→d, lower case) inside PostgreSQL with `translate`,
so no extension is needed and the same fold as `layers.features.placenames.fold` applies on both sides.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Connection, Text, and_, cast, func, literal, or_, select

from layers.features.registry import LayerInfo
from layers.models.core import feature
from layers.models.reports import field_report


@lru_cache(maxsize=1)
def fold_table() -> tuple[str, str]:
    """(from, to) strings for SQL translate(): every precomposed Latin letter to its folded one."""
    src: list[str] = []
    dst: list[str] = []
    for cp in [*range(0x41, 0x250), *range(0x1E00, 0x1F00)]:
        ch = chr(cp)
        if not ch.isalpha():
            continue
        nfd = unicodedata.normalize("NFD", ch.replace("đ", "d").replace("Đ", "D"))
        folded = "".join(c for c in nfd if not unicodedata.combining(c)).lower()
        if len(folded) == 1 and folded != ch:
            src.append(ch)
            dst.append(folded)
    return "".join(src), "".join(dst)


def folded_sql(expr: ColumnElement[Any]) -> ColumnElement[str]:
    """SQL expression: the text folded like layers.features.placenames.fold (NFC input)."""
    src, dst = fold_table()
    return func.translate(func.lower(expr), literal(src, Text), literal(dst, Text))


@dataclass(frozen=True)
class FeatureHit:
    """A feature whose name field matched."""

    layer: str
    feature_id: int
    field: str
    name: str
    properties: dict[str, Any]
    lon: float
    lat: float
    bbox: tuple[float, float, float, float]


def _bbox_cols() -> list[ColumnElement[Any]]:
    point = func.ST_PointOnSurface(feature.c.geom)
    return [
        func.ST_X(point),
        func.ST_Y(point),
        func.ST_XMin(feature.c.geom),
        func.ST_YMin(feature.c.geom),
        func.ST_XMax(feature.c.geom),
        func.ST_YMax(feature.c.geom),
    ]


def find_features(
    conn: Connection, info: LayerInfo, fields: list[str], folded: str, limit: int
) -> list[FeatureHit]:
    """Features of one layer whose folded `fields` contain the folded query text."""
    if not fields or not folded:
        return []
    pattern = "%" + folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    hits: list[FeatureHit] = []
    conds = [folded_sql(feature.c.properties.op("->>")(f)).like(pattern) for f in fields]
    stmt = (
        select(feature.c.id, feature.c.properties, *_bbox_cols())
        .where(and_(feature.c.layer_id == info.id, or_(*conds)))
        .order_by(feature.c.id)
        .limit(limit)
    )
    for row in conn.execute(stmt):
        props = dict(row[1] or {})
        field = next(
            (f for f in fields if folded in fold_python(str(props.get(f) or ""))), fields[0]
        )
        hits.append(
            FeatureHit(
                layer=info.slug,
                feature_id=int(row[0]),
                field=field,
                name=str(props.get(field) or ""),
                properties=props,
                lon=float(row[2]),
                lat=float(row[3]),
                bbox=(float(row[4]), float(row[5]), float(row[6]), float(row[7])),
            )
        )
    return hits


def fold_python(text: str) -> str:
    """The same fold as folded_sql, in Python."""
    src, dst = fold_table()
    return text.lower().translate(str.maketrans(src, dst))


@dataclass(frozen=True)
class ReportHit:
    """A field report whose code matched."""

    code: str
    category: str
    status: str
    commune_name: str
    lon: float
    lat: float


def find_reports(
    conn: Connection, code_prefix: str, scope: ColumnElement[bool], limit: int
) -> list[ReportHit]:
    """Reports whose code starts with `code_prefix` (case-insensitive), within `scope`."""
    pattern = code_prefix.upper().replace("%", "").replace("_", "\\_") + "%"
    stmt = (
        select(
            field_report.c.code,
            field_report.c.category,
            field_report.c.status,
            field_report.c.commune_name,
            func.ST_X(field_report.c.geom),
            func.ST_Y(field_report.c.geom),
        )
        .where(and_(func.upper(cast(field_report.c.code, Text)).like(pattern), scope))
        .order_by(field_report.c.code.desc())
        .limit(limit)
    )
    return [
        ReportHit(str(r[0]), str(r[1]), str(r[2]), str(r[3] or ""), float(r[4]), float(r[5]))
        for r in conn.execute(stmt)
    ]


def commune_units(conn: Connection, info: LayerInfo) -> list[FeatureHit]:
    """Every commune/ward feature of the admin layer, with the point and bbox of its main part.

    The main part (largest polygon) is where a person expects to land: Cửa Lò's islands lie
    25 km offshore and would otherwise zoom the map out to open sea.
    """
    parts = func.ST_Dump(feature.c.geom).table_valued("path", "geom").alias("part")
    main = (
        select(parts.c.geom)
        .order_by(func.ST_Area(parts.c.geom).desc())
        .limit(1)
        .correlate(feature)
        .scalar_subquery()
    )
    point = func.ST_PointOnSurface(main)
    stmt = (
        select(
            feature.c.id,
            feature.c.properties,
            func.ST_X(point),
            func.ST_Y(point),
            func.ST_XMin(main),
            func.ST_YMin(main),
            func.ST_XMax(main),
            func.ST_YMax(main),
        )
        .where(feature.c.layer_id == info.id)
        .order_by(feature.c.id)
    )
    return [
        FeatureHit(
            layer=info.slug,
            feature_id=int(r[0]),
            field="name",
            name=str((r[1] or {}).get("name") or ""),
            properties=dict(r[1] or {}),
            lon=float(r[2]),
            lat=float(r[3]),
            bbox=(float(r[4]), float(r[5]), float(r[6]), float(r[7])),
        )
        for r in conn.execute(stmt)
    ]
