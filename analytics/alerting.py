"""Rule evaluation jobs: read each rule's inputs through layers, evaluate purely, write alerts."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import shapely
from sqlalchemy import Connection, Engine

from analytics import h3bin, rules
from analytics.h3jobs import target_for
from layers import alerts as adb
from layers import h3 as h3db
from layers.errors import IocError
from layers.registry import get_layer

log = logging.getLogger(__name__)


def install_rules(conn: Connection, specs: Sequence[rules.RuleSpec]) -> list[int]:
    """Store rules (insert or replace by slug)."""
    return [
        adb.save_rule(conn, s.slug, s.name, s.severity, s.enabled, s.model_dump(mode="json"))
        for s in specs
    ]


def _hex_wkb(cell: int) -> bytes:
    poly = h3bin.cell_polygons(np.asarray([cell], dtype=np.uint64))[0]
    return bytes(shapely.to_wkb(poly))


def firings(conn: Connection, spec: rules.RuleSpec, now: datetime) -> list[rules.Firing]:
    """Where the rule's condition holds at `now` (pure evaluation over inputs read here)."""
    info = get_layer(conn, spec.layer)
    t_from = now - timedelta(seconds=spec.window_s) if info.time_field else None
    t_to = now if info.time_field else None
    if spec.kind == "percentile":
        return _percentile(conn, spec, now)
    inp = adb.load_rule_input(
        conn,
        spec.layer,
        where=spec.where,
        t_from=t_from if spec.kind != "duration" else None,
        t_to=t_to if spec.kind != "duration" else None,
        value_property=spec.property if spec.kind == "value" else None,
        key_property=spec.key_property,
        since_property=spec.since_property,
        with_commune=spec.kind == "count" and spec.area.kind == "commune",
        polygon_geojson=spec.area.geometry if spec.area.kind == "polygon" else None,
    )
    if spec.kind == "count":
        if spec.area.kind == "hex":
            cells = h3bin.points_to_cells(inp.lng, inp.lat, spec.area.res)
            keys = [str(int(c)) for c in cells.tolist()]
        elif spec.area.kind == "commune":
            keys = inp.commune
        elif spec.area.kind == "polygon":
            keys = ["polygon"] * len(inp.ids)
        else:
            keys = inp.keys
        ok = [i for i, k in enumerate(keys) if k]
        out = rules.count_by_area(spec, [keys[i] for i in ok], inp.ids[ok])
        for f in out:
            if spec.area.kind == "hex":
                f.area_ref = h3bin.cells_to_strings(np.asarray([int(f.key)], dtype=np.uint64))[0]
        return out
    if spec.kind == "value":
        return rules.latest_value(spec, inp.keys, inp.t, inp.values, inp.ids, inp.lng, inp.lat)
    return rules.state_duration(
        spec, inp.keys, inp.since, now.timestamp(), inp.ids, inp.lng, inp.lat
    )


def _percentile(conn: Connection, spec: rules.RuleSpec, now: datetime) -> list[rules.Firing]:
    target = target_for(conn, get_layer(conn, spec.layer))
    if target is None or 3600 not in target.widths:
        raise IocError(f"layer '{spec.layer}' has no hourly H3 aggregates")
    state = h3db.read_state(conn, target.layer_id)
    if state is None:
        return []
    kind, mi = h3db.parse_measure(spec.measure, state.measures)
    current = int(now.timestamp() // 3600 * 3600 - 3600)  # the last complete hour
    hist = [current - k * 7 * 86400 for k in range(1, spec.history_weeks + 1)]
    stamps = [datetime.fromtimestamp(b, tz=UTC) for b in [current, *hist]]
    cells, bucket, value = adb.hourly_cells(
        conn, target.layer_id, spec.area.res, stamps, mi if kind != "count" else None
    )
    first = h3db.query_series(conn, target.layer_id, 3600, None, None, "count", None)[0]
    oldest = int(first[0]) if len(first) else current
    n_weeks = sum(1 for b in hist if b >= oldest)
    now_mask = bucket == current
    week = ((current - bucket[~now_mask]) // (7 * 86400) - 1).astype(np.int64)
    keep = week < n_weeks
    out = rules.above_percentile(
        spec,
        cells[now_mask],
        value[now_mask],
        cells[~now_mask][keep],
        week[keep],
        value[~now_mask][keep],
        n_weeks,
    )
    for f in out:
        f.area_ref = h3bin.cells_to_strings(np.asarray([int(f.key)], dtype=np.uint64))[0]
        f.extra = {"hour_start": datetime.fromtimestamp(current, tz=UTC).isoformat()}
    return out


@dataclass
class EvalReport:
    """Outcome of evaluating rules."""

    evaluated: int = 0
    opened: list[int] = field(default_factory=list)
    refreshed: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


def evaluate_rule(conn: Connection, row: dict[str, Any], now: datetime, report: EvalReport) -> None:
    """Evaluate one stored rule and write its alerts (deduplicated while open)."""
    spec = rules.RuleSpec.model_validate(row["spec"])
    found = firings(conn, spec, now)
    writes = []
    for f in found:
        if f.area_kind == "hex":
            geom: bytes | None = _hex_wkb(int(f.key))
        elif f.lng is not None and f.lat is not None:
            geom = adb.point_wkb(f.lng, f.lat)
        elif f.area_kind == "polygon" and spec.area.geometry:
            geom = bytes(shapely.to_wkb(shapely.geometry.shape(spec.area.geometry)))
        else:
            geom = None
        writes.append(
            adb.AlertWrite(
                rule_id=int(row["id"]),
                dedup_key=f.key,
                severity=spec.severity,
                title=f.title,
                area_kind=f.area_kind,
                area_ref=f.area_ref,
                geom_wkb=geom,
                commune_code=f.area_ref if f.area_kind == "commune" else None,
                value=f.value,
                threshold=f.threshold,
                evidence={
                    "layer": spec.layer,
                    "feature_ids": f.evidence_ids,
                    "links": [
                        f"/ogc/collections/{spec.layer}/items/{i}" for i in f.evidence_ids[:20]
                    ],
                    **f.extra,
                },
                window_start=now - timedelta(seconds=spec.window_s),
                window_end=now,
            )
        )
    new, seen = adb.write_alerts(conn, writes)
    report.opened += new
    report.refreshed += seen
    if spec.auto_resolve:
        report.resolved += adb.resolve_missing(conn, int(row["id"]), [f.key for f in found])
    adb.mark_rule_evaluated(conn, int(row["id"]))
    report.evaluated += 1


def evaluate_all(
    engine: Engine, now: datetime | None = None, layers: Sequence[str] | None = None
) -> EvalReport:
    """Evaluate every enabled rule (or those on `layers`), each in its own transaction."""
    now = now or datetime.now(UTC)
    report = EvalReport()
    with engine.connect() as conn:
        rows = adb.list_rules(conn, enabled_only=True)
    for row in rows:
        if layers is not None and row["spec"].get("layer") not in layers:
            continue
        try:
            with engine.begin() as conn:
                evaluate_rule(conn, row, now, report)
        except IocError as exc:
            report.errors[row["slug"]] = exc.detail
            log.info("rule %s not evaluated: %s", row["slug"], exc.detail)
    return report
