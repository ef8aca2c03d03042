"""Sector indicators: definitions, values at any roll-up level, choropleths and dashboards."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Query

from analytics import dashboards
from analytics.forecast import linear_forecast
from geo_api.deps import ConnDep
from layers.errors import InvalidInputError
from layers.indicators import store as ind

router = APIRouter(tags=["indicators"])

Start = Annotated[date | None, Query(description="First period (YYYY-MM-DD, inclusive)")]
End = Annotated[date | None, Query(description="Last period (YYYY-MM-DD, inclusive)")]
Grain = Annotated[
    Literal["day", "month", "quarter", "year", "school_year"] | None,
    Query(description="Period grain (the indicator's frequency or coarser)"),
]
MIN_POINTS = 3
# Each forecast is an OLS fit with a prediction band: keep a request's count bounded.
MAX_FORECAST_SERIES = 200


def _trend(y: np.ndarray[Any, np.dtype[np.float64]]) -> tuple[int, int] | None:
    """First and last index of the finite part of a series, if it has enough points."""
    ok = np.flatnonzero(np.isfinite(y))
    if len(ok) < MIN_POINTS:
        return None
    return int(ok[0]), int(ok[-1])


def _series(vals: ind.IndicatorValues, horizon: int, running: date | None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    t_all = np.arange(len(vals.periods), dtype=np.float64)
    # A period still running (this month so far) would drag the trend down: fit without it.
    n_fit = sum(1 for p in vals.periods if running is None or p < running)
    for s, row in zip(vals.subjects, vals.values, strict=True):
        item: dict[str, Any] = {
            "subject": dashboards.subject_dict(s),
            "values": [float(v) if np.isfinite(v) else None for v in row],
            "trend": None,
        }
        span = _trend(row[:n_fit])
        if span is not None:
            a, b = span
            t, y = t_all[a : b + 1], row[a : b + 1]
            ok = np.isfinite(y)
            # Gaps inside the span are interpolated so the trend sees a regular series.
            y = np.interp(t, t[ok], y[ok])
            slope = float(np.polyfit(t, y, 1)[0])
            item["trend"] = {"slope": slope, "per": vals.grain}
            if horizon > 0:
                fc = linear_forecast(y, horizon=horizon)
                p = vals.periods[b]
                periods = []
                for _ in range(horizon):
                    p = ind.next_period(p, vals.grain)
                    periods.append(p)
                item["forecast"] = [
                    {
                        "period": pp.isoformat(),
                        "value": float(m),
                        "lower": float(lo),
                        "upper": float(hi),
                    }
                    for pp, m, lo, hi in zip(periods, fc.mean, fc.lower, fc.upper, strict=True)
                ]
        if horizon > 0:
            item.setdefault("forecast", [])
        out.append(item)
    return out


def _iso(d: date | None) -> str | None:
    return d.isoformat() if d else None


@router.get("/api/indicators", summary="Indicator definitions by sector")
def list_indicators(conn: ConnDep) -> dict[str, Any]:
    """Sectors with their indicator codes, and every definition with levels and latest period."""
    defs = ind.list_indicators(conn)
    latest = ind.latest_periods(conn)
    sectors = [
        {**s, "indicators": [d.code for d in defs if d.sector == s["code"]]} for s in ind.sectors()
    ]
    items = [
        {
            **d.model_dump(),
            "levels": ind.levels_for(d),
            "latest_period": _iso(latest[d.code]),
        }
        for d in defs
    ]
    return {"sectors": sectors, "indicators": items}


@router.get("/api/indicators/dashboards/{sector}", summary="A sector's KPIs as leaders track them")
def sector_dashboard(
    conn: ConnDep, sector: str, start: Start = None, end: End = None
) -> dict[str, Any]:
    """Latest and previous province values, series by period, and units ranked per KPI."""
    return dashboards.dashboard(conn, sector, start, end)


@router.get("/api/indicators/{code}", summary="Values of an indicator, ready for charts")
def indicator_values(
    conn: ConnDep,
    code: str,
    level: Literal["feature", "commune", "province"] = "commune",
    subject: Annotated[list[str] | None, Query(description="Subject keys (repeatable)")] = None,
    start: Start = None,
    end: End = None,
    grain: Grain = None,
    forecast: Annotated[int, Query(ge=0, le=36, description="Periods to forecast")] = 0,
) -> dict[str, Any]:
    """Series per subject at a roll-up level with trend, optional forecast and a summary."""
    vals = ind.indicator_values(
        conn, code, level=level, start=start, end=end, grain=grain, subjects=subject
    )
    if forecast and len(vals.subjects) > MAX_FORECAST_SERIES:
        raise InvalidInputError(
            f"forecasts are for at most {MAX_FORECAST_SERIES} series; "
            f"this request has {len(vals.subjects)}: pick subjects",
            i18n="err.indicators.forecasts_are_for_at_most",
            MAX_FORECAST_SERIES=MAX_FORECAST_SERIES,
            n=len(vals.subjects),
        )
    running = ind.in_progress_from(vals.indicator, vals.grain)
    return {
        "indicator": vals.indicator.model_dump(),
        "level": vals.level,
        "grain": vals.grain,
        "periods": [p.isoformat() for p in vals.periods],
        # First period still running today (values so far), or null: charts draw it apart.
        "in_progress": _iso(running) if running is not None and running in vals.periods else None,
        "series": _series(vals, forecast, running),
        "summary": dashboards.summary(conn, vals, filtered=subject is not None),
    }


@router.get("/api/indicators/{code}/choropleth", summary="An indicator by commune, for a map")
def indicator_choropleth(
    conn: ConnDep,
    code: str,
    period: Annotated[date | None, Query(description="Period start (default: latest)")] = None,
    grain: Grain = None,
) -> dict[str, Any]:
    """Commune values of one period with 5 quantile breaks (upper bounds of 5 classes)."""
    return dashboards.choropleth(conn, code, period, grain)
