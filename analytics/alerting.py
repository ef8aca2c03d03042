"""Rule evaluation jobs: read each rule's inputs through layers, evaluate purely, write alerts."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import shapely
from sqlalchemy import Connection, Engine

from analytics import dashboards, h3bin, rules
from analytics.h3jobs import target_for
from layers.analytics import alerts as adb
from layers.analytics import h3 as h3db
from layers.errors import IocError
from layers.features.gazetteer import current_units
from layers.features.registry import get_layer, property_names
from layers.indicators import store as ind
from layers.settings import Settings

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


def firings(
    conn: Connection, spec: rules.RuleSpec, now: datetime, settings: Settings | None = None
) -> list[rules.Firing]:
    """Where the rule's condition holds at `now` (pure evaluation over inputs read here)."""
    if spec.kind == "flood_exposure":  # issue 20
        from analytics.raster_jobs import flood_firings

        return flood_firings(conn, spec, settings)
    if spec.kind == "indicator":
        return _indicator(conn, spec, now)
    info = get_layer(conn, spec.layer)
    t_from = now - timedelta(seconds=spec.window_s) if info.time_field else None
    t_to = now if info.time_field else None
    if spec.kind == "percentile":
        return _percentile(conn, spec, now)
    # Per commune: the feature's own commune_code where the layer has one (a point jittered
    # around a commune's centroid may fall outside it), else the commune under the feature.
    by_code = (
        spec.kind == "count"
        and spec.area.kind == "commune"
        and "commune_code" in property_names(info)
    )
    inp = adb.load_rule_input(
        conn,
        spec.layer,
        where=spec.where,
        t_from=t_from if spec.kind != "duration" else None,
        t_to=t_to if spec.kind != "duration" else None,
        value_property=spec.property if spec.kind == "value" else None,
        key_property="commune_code" if by_code else spec.key_property,
        since_property=spec.since_property,
        with_commune=spec.kind == "count" and spec.area.kind == "commune",
        polygon_geojson=spec.area.geometry if spec.area.kind == "polygon" else None,
    )
    if spec.kind == "count":
        if spec.area.kind == "hex":
            cells = h3bin.points_to_cells(inp.lng, inp.lat, spec.area.res)
            keys = [str(int(c)) for c in cells.tolist()]
        elif spec.area.kind == "commune":
            keys = (
                [k or c for k, c in zip(inp.keys, inp.commune, strict=True)]
                if by_code
                else inp.commune
            )
        elif spec.area.kind == "polygon":
            keys = ["polygon"] * len(inp.ids)
        else:
            keys = inp.keys
        ok = [i for i, k in enumerate(keys) if k]
        out = rules.count_by_area(spec, [keys[i] for i in ok], inp.ids[ok])
        for f in out:
            if spec.area.kind == "hex":
                f.area_ref = h3bin.cells_to_strings(np.asarray([int(f.key)], dtype=np.uint64))[0]
        if spec.area.kind == "commune" and out:
            # Operators read the title in the alert list: name the commune, not only its code.
            names = {code: name for code, name, _ in current_units(conn)}
            for f in out:
                if f.area_ref in names:
                    f.title = (
                        f"{spec.name}: {names[f.area_ref]} ({f.area_ref}) "
                        f"{int(f.value)} {spec.condition} {spec.threshold:g}"
                    )
        return out
    if spec.kind == "value":
        return rules.latest_value(spec, inp.keys, inp.t, inp.values, inp.ids, inp.lng, inp.lat)
    return rules.state_duration(
        spec, inp.keys, inp.since, now.timestamp(), inp.ids, inp.lng, inp.lat
    )


def _percentile(conn: Connection, spec: rules.RuleSpec, now: datetime) -> list[rules.Firing]:
    target = target_for(conn, get_layer(conn, spec.layer))
    if target is None or 3600 not in target.widths:
        raise IocError(
            f"layer '{spec.layer}' has no hourly H3 aggregates",
            i18n="err.alerting.layer_has_no_hourly_h3",
            layer=spec.layer,
        )
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


def period_bounds(frequency: str, now: datetime) -> tuple[date, date]:
    """Starts of the indicator period holding `now` (the province's calendar) and the one before."""
    today = now.astimezone(ZoneInfo(rules.PERIOD_TZ)).date()
    current = ind.period_floor(today, frequency)
    return current, ind.period_floor(current - timedelta(days=1), frequency)


def _indicator(conn: Connection, spec: rules.RuleSpec, now: datetime) -> list[rules.Firing]:
    assert spec.indicator is not None  # the spec validator guarantees it
    defn = ind.get_indicator(spec.indicator)  # NotFoundError for an unknown code
    current, previous = period_bounds(defn.frequency, now)
    vals = ind.indicator_values(
        conn,
        defn.code,
        level=spec.level,
        start=rules.indicator_history_start(spec, current, previous, defn.frequency),
        end=current,
        subjects=spec.subjects,
    )
    subs = vals.subjects
    out = rules.indicator_firings(
        spec,
        vals.periods,
        vals.values,
        [s.key for s in subs],
        [s.name for s in subs],
        [s.lng for s in subs],
        [s.lat for s in subs],
        current=current,
        previous=previous,
        frequency=defn.frequency,
        unit=defn.unit,
        # counts of events, whose empty periods are often not stored at all
        zero_fill=defn.rollup == "sum" and not ind.is_stock(defn.code),
    )
    by_key = {s.key: s for s in subs}
    for f in out:
        s = by_key[f.area_ref]
        f.extra["subject"] = dashboards.subject_dict(s)
        f.extra["unit"] = defn.unit
        f.extra["links"] = [f"/api/indicators/{defn.code}?level={spec.level}&subject={s.key}"]
    return out


def _local_midnight(d: date) -> datetime:
    return datetime.combine(d, time(0), tzinfo=ZoneInfo(rules.PERIOD_TZ))


def _window(spec: rules.RuleSpec, f: rules.Firing, now: datetime) -> tuple[datetime, datetime]:
    """The period an indicator firing is about; the rule's time window otherwise."""
    if spec.kind == "indicator" and spec.indicator:
        start = date.fromisoformat(str(f.extra["period"]))
        freq = ind.get_indicator(spec.indicator).frequency
        return _local_midnight(start), _local_midnight(ind.next_period(start, freq))
    return now - timedelta(seconds=spec.window_s), now


@dataclass
class EvalReport:
    """Outcome of evaluating rules."""

    evaluated: int = 0
    opened: list[int] = field(default_factory=list)
    refreshed: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


def _evidence(spec: rules.RuleSpec, f: rules.Firing) -> dict[str, Any]:
    if spec.kind == "indicator":
        return {"feature_ids": f.evidence_ids, **f.extra}
    return {
        "layer": spec.layer,
        "feature_ids": f.evidence_ids,
        "links": [f"/ogc/collections/{spec.layer}/items/{i}" for i in f.evidence_ids[:20]],
        **f.extra,
    }


def evaluate_rule(
    conn: Connection,
    row: dict[str, Any],
    now: datetime,
    report: EvalReport,
    settings: Settings | None = None,
) -> None:
    """Evaluate one stored rule and write its alerts (deduplicated while open)."""
    spec = rules.RuleSpec.model_validate(row["spec"])
    found = firings(conn, spec, now, settings)
    writes = []
    for f in found:
        window = _window(spec, f, now)
        if f.area_kind == "hex":
            geom: bytes | None = _hex_wkb(int(f.key))
        elif f.area_kind == "commune":
            geom = None  # the commune's polygon, looked up when the alert is written
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
                evidence=_evidence(spec, f),
                window_start=window[0],
                window_end=window[1],
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
    engine: Engine,
    now: datetime | None = None,
    layers: Sequence[str] | None = None,
    indicators: Sequence[str] | None = None,
    settings: Settings | None = None,
) -> EvalReport:
    """Evaluate enabled rules (all, or those on `layers`/`indicators`), one transaction each."""
    now = now or datetime.now(UTC)
    report = EvalReport()
    with engine.connect() as conn:
        rows = adb.list_rules(conn, enabled_only=True)
    if indicators is not None:
        # new figures for a rate's parts change the rate too
        changed = set(indicators)
        indicators = [
            d.code
            for d in ind.catalog().values()
            if d.code in changed or {d.numerator, d.denominator} & changed
        ] + [c for c in changed if c not in ind.catalog()]
    for row in rows:
        if layers is not None or indicators is not None:
            spec = row["spec"]
            on_layer = layers is not None and spec.get("layer") in layers
            on_indicator = indicators is not None and spec.get("indicator") in indicators
            if not (on_layer or on_indicator):
                continue
        try:
            with engine.begin() as conn:
                evaluate_rule(conn, row, now, report, settings)
        except IocError as exc:
            # a missing layer or indicator, a property the layer lacks: reported, not raised
            report.errors[row["slug"]] = exc.detail
            log.info("rule %s not evaluated: %s", row["slug"], exc.detail)
        except Exception as exc:  # one broken rule must not stop the others
            report.errors[row["slug"]] = f"internal error: {type(exc).__name__}: {exc}"
            log.exception("rule %s failed", row["slug"])
    return report
