"""Database side of alerts: rules, rule inputs, deduplicated alert writes, transitions, NOTIFY."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import numpy as np
import orjson
import pandas as pd
import shapely
from numpy.typing import NDArray
from pydantic import BaseModel
from sqlalchemy import Connection, and_, bindparam, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from layers.errors import ConflictError, InvalidInputError, NotFoundError
from layers.features.registry import get_layer, require_property
from layers.models import admin_unit, feature
from layers.models.analytics import alert, alert_rule

ALERTS_CHANNEL = "iocmap_alerts"
Status = Literal["open", "acknowledged", "resolved"]


def save_rule(
    conn: Connection, slug: str, name: str, severity: str, enabled: bool, spec: dict[str, Any]
) -> int:
    """Insert or replace a rule by slug; returns its id."""
    stmt = pg_insert(alert_rule).values(
        slug=slug, name=name, severity=severity, enabled=enabled, spec=spec
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[alert_rule.c.slug],
        set_={
            "name": stmt.excluded.name,
            "severity": stmt.excluded.severity,
            "enabled": stmt.excluded.enabled,
            "spec": stmt.excluded.spec,
            "updated_at": func.now(),
        },
    )
    return int(conn.execute(stmt.returning(alert_rule.c.id)).scalar_one())


def rule_ids_by_slug(conn: Connection, slugs: Sequence[str]) -> dict[str, int]:
    """slug -> id of the rules that exist among `slugs`."""
    rows = conn.execute(
        select(alert_rule.c.slug, alert_rule.c.id).where(alert_rule.c.slug.in_(slugs))
    )
    return {str(slug): int(rule_id) for slug, rule_id in rows}


def list_rules(conn: Connection, enabled_only: bool = False) -> list[dict[str, Any]]:
    """Every rule row (id, slug, name, severity, enabled, spec)."""
    stmt = select(alert_rule).order_by(alert_rule.c.id)
    if enabled_only:
        stmt = stmt.where(alert_rule.c.enabled)
    return [dict(r) for r in conn.execute(stmt).mappings()]


def mark_rule_evaluated(conn: Connection, rule_id: int) -> None:
    """Stamp the rule's last evaluation time."""
    conn.execute(
        update(alert_rule).where(alert_rule.c.id == rule_id).values(last_evaluated_at=func.now())
    )


@dataclass
class RuleInput:
    """Features a rule looks at, as columns."""

    ids: NDArray[np.int64]
    lng: NDArray[np.float64]
    lat: NDArray[np.float64]
    t: NDArray[np.float64]
    updated: NDArray[np.float64]
    keys: list[str]
    values: NDArray[np.float64]
    since: NDArray[np.float64]
    commune: list[str]


def _num(col: Sequence[Any]) -> NDArray[np.float64]:
    return pd.to_numeric(pd.Series(list(col), dtype=object), errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan
    )


def _epoch_col(col: Sequence[Any]) -> NDArray[np.float64]:
    s = pd.to_datetime(pd.Series(list(col), dtype=object), errors="coerce", utc=True)
    # total_seconds is independent of the datetime unit pandas picked
    secs = (s - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    return np.asarray(secs.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)


def load_rule_input(
    conn: Connection,
    layer_slug: str,
    *,
    where: dict[str, str],
    t_from: datetime | None,
    t_to: datetime | None,
    value_property: str | None = None,
    key_property: str | None = None,
    since_property: str | None = None,
    with_commune: bool = False,
    polygon_geojson: dict[str, Any] | None = None,
) -> RuleInput:
    """Features of a layer for a rule: location, time, device key, value and commune."""
    info = get_layer(conn, layer_slug)
    for name in [*where, value_property, key_property, since_property]:
        if name:
            require_property(info, name)
    p = feature.c.properties
    pt = func.ST_PointOnSurface(feature.c.geom)
    cols: list[Any] = [
        feature.c.id,
        func.ST_X(pt),
        func.ST_Y(pt),
        func.extract("epoch", feature.c.observed_at),
        func.extract("epoch", feature.c.updated_at),
        p.op("->>")(bindparam("kp", key_property)) if key_property else feature.c.source_key,
        p.op("->>")(bindparam("vp", value_property)) if value_property else feature.c.id,
        p.op("->>")(bindparam("sp", since_property)) if since_property else feature.c.updated_at,
    ]
    conds = [feature.c.layer_id == info.id]
    for i, (k, v) in enumerate(where.items()):
        conds.append(p.op("->>")(bindparam(f"wk{i}", k)) == bindparam(f"wv{i}", v))
    if t_from is not None:
        conds.append(feature.c.observed_at >= t_from)
    if t_to is not None:
        conds.append(feature.c.observed_at < t_to)
    if polygon_geojson is not None:
        poly = func.ST_SetSRID(
            func.ST_GeomFromGeoJSON(bindparam("poly", json.dumps(polygon_geojson))), 4326
        )
        conds.append(func.ST_Intersects(feature.c.geom, poly))
    if with_commune:
        sub = (
            select(admin_unit.c.code)
            .where(
                admin_unit.c.level == "commune",
                admin_unit.c.valid_to.is_(None),
                admin_unit.c.geom.op("&&")(feature.c.geom),
                func.ST_Intersects(admin_unit.c.geom, pt),
            )
            .limit(1)
            .scalar_subquery()
        )
        cols.append(sub)
    rows = conn.execute(select(*cols).where(and_(*conds))).all()
    c: list[Sequence[Any]] = (
        list(zip(*rows, strict=True)) if rows else [[] for _ in range(len(cols))]
    )
    return RuleInput(
        ids=np.asarray(c[0], dtype=np.int64),
        lng=_num(c[1]),
        lat=_num(c[2]),
        t=_num(c[3]),
        updated=_num(c[4]),
        keys=["" if k is None else str(k) for k in c[5]],
        values=_num(c[6]) if value_property else np.zeros(len(rows)),
        since=_epoch_col(c[7]),
        commune=["" if k is None else str(k) for k in c[8]] if with_commune else [],
    )


def hourly_cells(
    conn: Connection,
    layer_id: int,
    res: int,
    buckets: Sequence[datetime],
    measure_index: int | None,
) -> tuple[NDArray[np.uint64], NDArray[np.float64], NDArray[np.float64]]:
    """Cell, bucket start (epoch s) and value (count or sum of a measure) in hour buckets."""
    value = "sum(count)" if measure_index is None else "sum(sums[:mi])"
    sql = {
        "sum(count)": "SELECT cell, extract(epoch from bucket), sum(count) FROM h3_agg"
        " WHERE layer_id = :lid AND res = :res AND bucket_s = 3600 AND bucket = ANY(:b)"
        " GROUP BY cell, bucket",
        "sum(sums[:mi])": "SELECT cell, extract(epoch from bucket), sum(sums[:mi]) FROM h3_agg"
        " WHERE layer_id = :lid AND res = :res AND bucket_s = 3600 AND bucket = ANY(:b)"
        " GROUP BY cell, bucket",
    }[value]
    params: dict[str, Any] = {"lid": layer_id, "res": res, "b": list(buckets)}
    if measure_index is not None:
        params["mi"] = measure_index
    rows = conn.execute(text(sql), params).all()
    cells = np.asarray([r[0] for r in rows], dtype=np.int64).view(np.uint64)
    return cells, _num([r[1] for r in rows]), _num([r[2] for r in rows])


class AlertWrite(BaseModel):
    """One alert to open (or refresh while it is still open)."""

    rule_id: int
    dedup_key: str
    severity: str
    title: str
    area_kind: str
    area_ref: str
    geom_wkb: bytes | None = None
    commune_code: str | None = None
    value: float | None = None
    threshold: float | None = None
    evidence: dict[str, Any] = {}
    window_start: datetime | None = None
    window_end: datetime | None = None


_UPSERT_ALERT = text(
    """
    INSERT INTO alert AS a (rule_id, dedup_key, severity, title, area_kind, area_ref, geom,
                            value, threshold, evidence, window_start, window_end)
    VALUES (:rule_id, :dedup_key, :severity, :title, :area_kind, :area_ref,
            COALESCE(ST_SetSRID(ST_GeomFromWKB(:geom_wkb), 4326),
                     (SELECT geom FROM admin_unit WHERE code = :commune_code
                      AND level = 'commune' AND valid_to IS NULL LIMIT 1)),
            :value, :threshold, CAST(:evidence AS jsonb), :window_start, :window_end)
    ON CONFLICT (rule_id, dedup_key) WHERE status <> 'resolved' DO UPDATE
       SET last_seen_at = now(), value = EXCLUDED.value, threshold = EXCLUDED.threshold,
           title = EXCLUDED.title, evidence = EXCLUDED.evidence,
           window_start = EXCLUDED.window_start, window_end = EXCLUDED.window_end
    RETURNING id, (xmax = 0) AS inserted
    """
)


def write_alerts(conn: Connection, alerts: Sequence[AlertWrite]) -> tuple[list[int], list[int]]:
    """Open new alerts or refresh open ones (deduplicated by rule and key); NOTIFY new ones.

    Returns (new ids, refreshed ids).
    """
    new: list[int] = []
    seen: list[int] = []
    for a in alerts:
        params = a.model_dump()
        params["evidence"] = orjson.dumps(a.evidence).decode()
        alert_id, inserted = conn.execute(_UPSERT_ALERT, params).one()
        (new if inserted else seen).append(int(alert_id))
        if inserted:
            notify(conn, "new", int(alert_id))
    return new, seen


def notify(conn: Connection, kind: str, alert_id: int) -> None:
    """Small NOTIFY on iocmap_alerts: '<kind>:<id>' (the data stays in the table)."""
    conn.execute(
        text("SELECT pg_notify(:ch, :payload)"),
        {"ch": ALERTS_CHANNEL, "payload": f"{kind}:{alert_id}"},
    )


def resolve_missing(conn: Connection, rule_id: int, keep_keys: Sequence[str]) -> list[int]:
    """Resolve a rule's unresolved alerts whose condition no longer holds."""
    rows = conn.execute(
        update(alert)
        .where(
            alert.c.rule_id == rule_id,
            alert.c.status != "resolved",
            alert.c.dedup_key.not_in(list(keep_keys)),
        )
        .values(status="resolved", resolved_at=func.now(), resolved_by="system")
        .returning(alert.c.id)
    ).all()
    ids = [int(r[0]) for r in rows]
    for i in ids:
        notify(conn, "resolved", i)
    return ids


def _alert_cols() -> list[Any]:
    return [
        alert.c.id,
        alert_rule.c.slug.label("rule"),
        alert.c.dedup_key,
        alert.c.status,
        alert.c.severity,
        alert.c.title,
        alert.c.area_kind,
        alert.c.area_ref,
        func.ST_AsGeoJSON(alert.c.geom, 6).label("geometry"),
        alert.c.value,
        alert.c.threshold,
        alert.c.evidence,
        alert.c.window_start,
        alert.c.window_end,
        alert.c.first_seen_at,
        alert.c.last_seen_at,
        alert.c.acknowledged_at,
        alert.c.acknowledged_by,
        alert.c.resolved_at,
        alert.c.resolved_by,
        alert.c.note,
    ]


def _row(r: Any) -> dict[str, Any]:
    # plain str keys: SQLAlchemy's quoted_name is a str subclass orjson refuses
    d = {str(k): v for k, v in r.items()}
    d["geometry"] = json.loads(d["geometry"]) if d["geometry"] else None
    return d


def list_alerts(
    conn: Connection,
    *,
    status: Sequence[str] = (),
    severity: Sequence[str] = (),
    rule: str | None = None,
    since: datetime | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    limit: int = 100,
    units: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Alerts, newest first, filtered by status, severity, rule, time, bbox and admin units."""
    stmt = select(*_alert_cols()).select_from(alert.join(alert_rule))
    if units is not None:
        stmt = stmt.where(_within_units(units))
    if status:
        stmt = stmt.where(alert.c.status.in_(list(status)))
    if severity:
        stmt = stmt.where(alert.c.severity.in_(list(severity)))
    if rule:
        stmt = stmt.where(alert_rule.c.slug == rule)
    if since is not None:
        stmt = stmt.where(alert.c.last_seen_at >= since)
    if bbox is not None:
        stmt = stmt.where(func.ST_Intersects(alert.c.geom, func.ST_MakeEnvelope(*bbox, 4326)))
    stmt = stmt.order_by(alert.c.first_seen_at.desc(), alert.c.id.desc()).limit(limit)
    return [_row(r) for r in conn.execute(stmt).mappings()]


def _within_units(units: Sequence[str]) -> Any:
    """Alerts about one of these communes: named by code, or located inside one of them.

    Province-wide alerts are left out: a commune user acts on their own communes only.
    """
    codes = list(units)
    inside = (
        select(admin_unit.c.id)
        .where(
            admin_unit.c.code.in_(codes),
            admin_unit.c.valid_to.is_(None),
            # a point of the alert's area, not any overlap: neighbours share their borders
            func.ST_Covers(admin_unit.c.geom, func.ST_PointOnSurface(alert.c.geom)),
        )
        .exists()
    )
    named = and_(alert.c.area_kind == "commune", alert.c.area_ref.in_(codes))
    return and_(alert.c.area_kind != "province", or_(named, inside))


def get_alert(
    conn: Connection, alert_id: int, units: Sequence[str] | None = None
) -> dict[str, Any]:
    """One alert (visible within `units` when given), or NotFoundError."""
    stmt = select(*_alert_cols()).select_from(alert.join(alert_rule)).where(alert.c.id == alert_id)
    if units is not None:
        stmt = stmt.where(_within_units(units))
    row = conn.execute(stmt).mappings().first()
    if row is None:
        raise NotFoundError(
            f"alert {alert_id} does not exist",
            alert_id=alert_id,
            i18n="err.alerts.alert_does_not_exist",
        )
    return _row(row)


def transition(
    conn: Connection,
    alert_id: int,
    to: Literal["acknowledged", "resolved"],
    actor: str,
    note: str = "",
) -> dict[str, Any]:
    """Acknowledge (from open) or resolve (from open/acknowledged) an alert."""
    current = get_alert(conn, alert_id)["status"]
    allowed = {"acknowledged": ("open",), "resolved": ("open", "acknowledged")}[to]
    if current not in allowed:
        raise ConflictError(
            f"alert {alert_id} is {current}; cannot move it to {to}",
            alert_id=alert_id,
            i18n="err.alerts.alert_cannot_move_it_to",
            current=current,
            to=to,
        )
    if not actor:
        raise InvalidInputError(
            "actor must not be empty", param="actor", i18n="err.alerts.actor_must_not_be_empty"
        )
    values: dict[str, Any] = {"status": to}
    if to == "acknowledged":
        values.update(acknowledged_at=func.now(), acknowledged_by=actor)
    else:
        values.update(resolved_at=func.now(), resolved_by=actor)
    if note:
        values["note"] = note
    conn.execute(update(alert).where(alert.c.id == alert_id).values(**values))
    notify(conn, to, alert_id)
    return get_alert(conn, alert_id)


async def listen_alerts(conninfo: str) -> AsyncIterator[tuple[str, int]]:
    """Yield ("listening", 0) once LISTEN is in place, then (kind, alert id) per NOTIFY."""
    from psycopg import sql

    from layers.db import connect_async
    from layers.sql import ident

    async with await connect_async(conninfo) as aconn:
        await aconn.execute(sql.SQL("LISTEN {}").format(ident(ALERTS_CHANNEL)))
        yield "listening", 0
        async for note in aconn.notifies():
            kind, _, raw = note.payload.partition(":")
            if raw.isdigit():
                yield kind, int(raw)


def point_wkb(lng: float, lat: float) -> bytes:
    """WKB of a WGS84 point."""
    return bytes(shapely.to_wkb(shapely.Point(lng, lat)))
