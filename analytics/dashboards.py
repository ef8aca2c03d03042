"""Indicator dashboards and roll-ups: the views leaders read (a sector's KPIs, a choropleth,
rankings), built on the storage reads of layers.indicators.store.

The rules live here: which period is the headline (the last complete one), how long a
dashboard window is, which indicators are tracked by month, how units are ranked.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import numpy as np
from sqlalchemy import Connection

from layers.errors import InvalidInputError, NotFoundError
from layers.indicators import store as ind
from layers.indicators.store import (
    Frequency,
    IndicatorDef,
    IndicatorValues,
    Level,
    Subject,
    catalog,
    get_indicator,
    in_progress_from,
    indicator_values,
    latest_periods,
    period_floor,
    resolve_grain,
    sectors,
    shift_period,
)


def _finite(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


def latest_column(vals: IndicatorValues) -> int | None:
    """Index of the last period holding any value, or None."""
    if not vals.values.size:
        return None
    cols = np.flatnonzero(np.isfinite(vals.values).any(axis=0))
    return int(cols[-1]) if len(cols) else None


def ranked(
    vals: IndicatorValues,
    col: int,
    n: int,
    *,
    top: bool,
    exclude: Sequence[dict[str, Any]] = (),
) -> list[dict[str, Any]]:
    """The n subjects with the highest (top) or lowest values in a column, minus `exclude`."""
    v = vals.values[:, col]
    # a unit already listed as a top unit is not also a bottom one (few units, or many ties)
    skip = {e["key"] for e in exclude}
    idx = [
        i
        for i in np.argsort(v, kind="stable")
        if np.isfinite(v[i]) and vals.subjects[i].key not in skip
    ]
    if top:
        idx = sorted(idx, key=lambda i: -v[i])
    return [
        {"key": vals.subjects[i].key, "name": vals.subjects[i].name, "value": float(v[i])}
        for i in idx[:n]
    ]


def choropleth(
    conn: Connection, code: str, period: date | None = None, grain: str | None = None
) -> dict[str, Any]:
    """Commune values of one period (default: the latest) with 5 quantile class breaks."""
    defn = get_indicator(code)
    g = resolve_grain(defn, grain)
    p: date | None
    if period is not None:
        p = period_floor(period, g)
        vals = indicator_values(conn, code, level="commune", start=p, end=p, grain=g)
        col: int | None = 0 if vals.periods else None
    else:
        vals = indicator_values(conn, code, level="commune", grain=g)
        col = latest_column(vals)
        p = vals.periods[col] if col is not None else None
    values: dict[str, float] = {}
    if col is not None:
        for s, v in zip(vals.subjects, vals.values[:, col], strict=True):
            if np.isfinite(v):
                values[s.key] = float(v)
    arr = np.array(list(values.values()), dtype=np.float64)
    breaks = [float(b) for b in np.quantile(arr, [0.2, 0.4, 0.6, 0.8, 1.0])] if arr.size else []
    running = in_progress_from(defn, g)
    return {
        "indicator": defn.model_dump(),
        "period": p.isoformat() if p else None,
        "grain": g,
        # The period is still running (a month so far): its values are not final.
        "in_progress": p is not None and running is not None and p >= running,
        "values": values,
        "breaks": breaks,
        "higher_is_better": defn.higher_is_better,
    }


DASHBOARD_WINDOW = {"day": 30, "month": 12, "quarter": 8, "year": 5, "school_year": 5}
# Daily indicators too sparse for a daily dashboard (a few citizen reports a day across the
# province): leaders track them by month, as the feedback office reports them.
DASHBOARD_GRAIN: dict[str, Frequency] = {
    "pa_received": "month",
    "pa_resolved": "month",
    "pa_on_time": "month",
    "pa_on_time_rate": "month",
}


def _kpi(
    conn: Connection,
    defn: IndicatorDef,
    start: date | None,
    end: date | None,
    today: date,
    grain: Frequency,
) -> dict[str, Any]:
    prov = indicator_values(conn, defn.code, level="province", start=start, end=end, grain=grain)
    series = prov.values[0] if prov.subjects else np.array([])
    have = [int(c) for c in np.flatnonzero(np.isfinite(series))]
    running = in_progress_from(defn, prov.grain, today)
    # The headline is the last complete period: comparing a month so far with a whole month
    # would show a fall every time. The running period is reported beside it as `current`.
    done = [c for c in have if running is None or prov.periods[c] < running]
    col: int | None = done[-1] if done else (have[-1] if have else None)
    last = have[-1] if have else len(prov.periods) - 1
    by_period = [
        {
            "period": prov.periods[j].isoformat(),
            "value": _finite(series[j]),
            "partial": running is not None and prov.periods[j] >= running,
        }
        for j in range(0, last + 1)
    ]
    current = None
    if have and col is not None and have[-1] > col:
        current = {
            "period": prov.periods[have[-1]].isoformat(),
            "value": _finite(series[have[-1]]),
            "partial": True,
        }
    latest = _finite(series[col]) if col is not None else None
    previous = _finite(series[col - 1]) if col is not None and col > 0 else None
    change = (
        (latest - previous) / abs(previous) * 100.0
        if latest is not None and previous not in (None, 0.0)
        else None
    )
    unit_level: Level = "feature" if defn.subject_layer else "commune"
    by_unit: list[dict[str, Any]] = []
    top: list[dict[str, Any]] = []
    bottom: list[dict[str, Any]] = []
    if col is not None:
        p = prov.periods[col]
        units = indicator_values(
            conn, defn.code, level=unit_level, start=p, end=p, grain=prov.grain
        )
        if units.periods:
            by_unit = ranked(units, 0, 10, top=True)
            top = ranked(units, 0, 5, top=True)
            bottom = ranked(units, 0, 5, top=False, exclude=top)
    return {
        "indicator": defn.model_dump(),
        "grain": prov.grain,
        "latest_period": prov.periods[col].isoformat() if col is not None else None,
        "latest": latest,
        "latest_partial": col is not None and running is not None and prov.periods[col] >= running,
        "previous": previous,
        "change_pct": change,
        "current": current,
        "by_period": by_period,
        "unit_level": unit_level,
        "by_unit": by_unit,
        "top": top,
        "bottom": bottom,
    }


def dashboard(
    conn: Connection,
    sector: str,
    start: date | None = None,
    end: date | None = None,
    today: date | None = None,
) -> dict[str, Any]:
    """A sector's KPIs: last complete and previous province values, series, units ranked.

    A period still running `today` (a month so far) is not the headline: it comes as
    `current` and is flagged `partial` in `by_period`.
    """
    today = today or ind.today_local()  # looked up on the module: tests set the date there
    sec = next((s for s in sectors() if s["code"] == sector), None)
    if sec is None:
        known = ", ".join(s["code"] for s in sectors())
        raise NotFoundError(
            f"unknown sector '{sector}'; known: {known}",
            sector=sector,
            i18n="err.dashboards.unknown_sector_known",
            known=known,
        )
    if start and end and end < start:
        raise InvalidInputError(
            f"end {end} is before start {start}",
            i18n="err.dashboards.end_before_start",
            end=end,
            start=start,
        )
    defs = [d for d in catalog().values() if d.sector == sector]
    latest = latest_periods(conn) if start is None else {}
    kpis = []
    for d in defs:
        first = start
        grain = DASHBOARD_GRAIN.get(d.code, d.frequency)
        if start is None and latest.get(d.code) is not None:
            # Default window: the last few periods up to the latest one with data (read
            # only those, so a long daily history does not slow the dashboard down).
            top = latest[d.code]
            assert top is not None
            first = shift_period(
                period_floor(min(top, end) if end else top, grain),
                grain,
                1 - DASHBOARD_WINDOW[grain],
            )
        kpis.append(_kpi(conn, d, first, end, today, grain))
    return {"sector": sec, "kpis": kpis}


def subject_dict(s: Subject) -> dict[str, Any]:
    """A Subject as JSON."""
    return {
        "key": s.key,
        "name": s.name,
        "level": s.level,
        "layer": s.layer,
        "commune_code": s.commune_code,
        "lng": s.lng,
        "lat": s.lat,
    }


def summary(conn: Connection, vals: IndicatorValues, *, filtered: bool) -> dict[str, Any]:
    """Latest period, its province-wide total, and top/bottom subjects of the level."""
    full = vals
    if filtered and vals.periods:
        # Rank over every subject of the level, not only the requested ones.
        full = indicator_values(
            conn,
            vals.indicator.code,
            level=vals.level,
            start=vals.periods[0],
            end=vals.periods[-1],
            grain=vals.grain,
        )
    col = latest_column(full)
    if col is None:
        return {"latest_period": None, "total": None, "top": [], "bottom": []}
    p = full.periods[col]
    prov = indicator_values(
        conn, vals.indicator.code, level="province", start=p, end=p, grain=vals.grain
    )
    total = _finite(prov.values[0, 0]) if prov.values.size else None
    top = ranked(full, col, 5, top=True)
    return {
        "latest_period": p.isoformat(),
        "total": total,
        "top": top,
        "bottom": ranked(full, col, 5, top=False, exclude=top),
    }
