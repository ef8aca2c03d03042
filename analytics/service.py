"""Thin read jobs behind the H3 and analytics API: stored aggregates in, compact results out."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import Connection

from analytics import forecast, h3bin, hotspots, indicators
from analytics.h3jobs import AggTarget, target_for
from layers.analytics import h3 as h3db
from layers.errors import InvalidInputError, NotFoundError
from layers.features.items import BBox
from layers.features.registry import get_layer
from layers.indicators.store import PERIOD_TZ


def _epoch(dt: datetime | None) -> float | None:
    return None if dt is None else dt.timestamp()


Segment = tuple[int, datetime | None, datetime | None]


def choose_window(
    t_from: datetime | None, t_to: datetime | None, widths: Sequence[int]
) -> tuple[int, datetime | None, datetime | None]:
    """Coarsest stored bucket width aligned with the window, snapping outward if none is."""
    if tuple(widths) == (0,):
        return 0, None, None
    if t_from is not None and t_to is not None and t_to <= t_from:
        raise InvalidInputError(
            "'to' must be after 'from'",
            param="to",
            i18n="err.analytics_service.to_must_be_after_from",
        )
    for w in sorted(widths, reverse=True):
        if all(e is None or e % w == 0 for e in (_epoch(t_from), _epoch(t_to))):
            return w, t_from, t_to
    w = min(widths)
    f = None if t_from is None else datetime.fromtimestamp(t_from.timestamp() // w * w, tz=UTC)
    t = None if t_to is None else datetime.fromtimestamp(-(-t_to.timestamp() // w) * w, tz=UTC)
    return w, f, t


def plan_segments(
    t_from: datetime | None, t_to: datetime | None, widths: Sequence[int]
) -> tuple[int, datetime | None, datetime | None, list[Segment]]:
    """Cover the window with as few stored buckets as possible: big ones inside, small at the edges.

    Returns the finest width used for alignment, the (snapped) window and the segments
    (width, start, end) whose buckets exactly tile it.
    """
    finest, f, t = choose_window(t_from, t_to, widths)
    if finest == 0:
        return 0, None, None, [(0, None, None)]
    usable = sorted((w for w in widths if w >= finest), reverse=True)
    segs: list[tuple[int, float, float]] = []

    def cover(a: float, b: float, ws: list[int]) -> None:
        if a >= b or not ws:
            return
        w, rest = ws[0], ws[1:]
        lo = a if a == -math.inf else math.ceil(a / w) * w
        hi = b if b == math.inf else math.floor(b / w) * w
        if lo < hi:
            segs.append((w, lo, hi))
            cover(a, lo, rest)
            cover(hi, b, rest)
        else:
            cover(a, b, rest)

    a = -math.inf if f is None else f.timestamp()
    b = math.inf if t is None else t.timestamp()
    cover(a, b, usable)

    def dt(x: float) -> datetime | None:
        return None if math.isinf(x) else datetime.fromtimestamp(x, tz=UTC)

    return finest, f, t, [(w, dt(lo), dt(hi)) for w, lo, hi in segs]


def _target(conn: Connection, slug: str) -> AggTarget:
    target = target_for(conn, get_layer(conn, slug))
    if target is None:
        raise NotFoundError(
            f"layer '{slug}' has no H3 aggregates",
            slug=slug,
            i18n="err.analytics_service.layer_has_no_h3_aggregates",
        )
    return target


def _check_res(target: AggTarget, res: int) -> None:
    if res not in target.resolutions:
        raise InvalidInputError(
            f"res must be one of {', '.join(map(str, target.resolutions))}; got {res}",
            param="res",
            i18n="err.analytics_service.res_must_be_one_got",
            items=", ".join(map(str, target.resolutions)),
            res=res,
        )


def _cells(
    conn: Connection,
    target: AggTarget,
    res: int,
    t_from: datetime | None,
    t_to: datetime | None,
    measure: str,
    state: h3db.H3State | None = None,
) -> tuple[h3bin.U64, h3bin.F64, int, datetime | None, datetime | None, list[str]]:
    _check_res(target, res)
    state = state or h3db.read_state(conn, target.layer_id)
    measures = state.measures if state else list(target.measures)
    kind, mi = h3db.parse_measure(measure, measures)
    width, f, t, segments = plan_segments(t_from, t_to, target.widths)
    cells, values = h3db.query_cells(conn, target.layer_id, res, segments, kind, mi)
    return cells, values, width, f, t, measures


def _bbox_mask(cells: h3bin.U64, bbox: BBox | None) -> np.ndarray:
    if bbox is None:
        return np.ones(len(cells), dtype=bool)
    lng, lat = h3bin.cells_to_lnglat(cells)
    return (lng >= bbox[0]) & (lng <= bbox[2]) & (lat >= bbox[1]) & (lat <= bbox[3])


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.isoformat()


def _clean(values: h3bin.F64) -> list[float | None]:
    """JSON-ready values: rounded, integral ones as ints (shorter), NaN as null."""
    v = np.round(np.asarray(values, dtype=np.float64), 6)
    nan = np.isnan(v)
    if not nan.any() and np.all(v == np.floor(v)) and np.all(np.abs(v) < 2**53):
        ints: list[float | None] = v.astype(np.int64).tolist()
        return ints
    out: list[float | None] = v.tolist()
    if nan.any():
        for i in np.flatnonzero(nan).tolist():
            out[i] = None
    return out


def h3_cells(
    conn: Connection,
    slug: str,
    res: int,
    bbox: BBox | None,
    t_from: datetime | None,
    t_to: datetime | None,
    measure: str,
) -> dict[str, Any]:
    """Cells (hex strings) and values of a measure, columnar, for deck.gl's H3HexagonLayer."""
    target = _target(conn, slug)
    state = h3db.read_state(conn, target.layer_id)
    cells, values, width, f, t, _ = _cells(conn, target, res, t_from, t_to, measure, state)
    keep = _bbox_mask(cells, bbox)
    cells, values = cells[keep], values[keep]
    versions = h3db.layer_versions(conn, [s.layer_id for s in target.sources])
    return {
        "layer": slug,
        "res": res,
        "measure": measure,
        "bucket_s": width,
        "from": _iso(f),
        "to": _iso(t),
        "stale": state is None or state.source_versions != versions,
        "refreshed_at": _iso(state.refreshed_at) if state else None,
        "count": len(cells),
        "cells": h3bin.cells_to_strings(cells),
        "values": _clean(values),
    }


def commune_aggregates(
    conn: Connection,
    slug: str,
    t_from: datetime | None,
    t_to: datetime | None,
    measure: str,
) -> dict[str, Any]:
    """The same measures per current commune (features joined to admin units by location)."""
    info = get_layer(conn, slug)
    nums = h3db.numeric_properties(info)
    kind, mi = h3db.parse_measure(measure, nums)
    prop = nums[mi - 1] if mi is not None else None
    rows = h3db.commune_measures(conn, info.id, prop, t_from, t_to)
    out = []
    for code, name, n, s, k in rows:
        if kind == "count":
            v: float | None = float(n)
        elif kind == "sum":
            v = float(s) if s is not None else 0.0
        else:
            v = float(s) / k if s is not None and k else None
        out.append({"code": code, "name": name, "value": v})
    return {
        "layer": slug,
        "measure": measure,
        "from": _iso(t_from),
        "to": _iso(t_to),
        "communes": out,
    }


def hot_spots(
    conn: Connection,
    slug: str,
    res: int,
    t_from: datetime | None,
    t_to: datetime | None,
    measure: str,
    k: int,
    alpha: float,
) -> dict[str, Any]:
    """Getis-Ord Gi* per cell: z, p and class (1 hot, -1 cold, 0 not significant)."""
    target = _target(conn, slug)
    cells, values, width, f, t, _ = _cells(conn, target, res, t_from, t_to, measure)
    ok = ~np.isnan(values)
    hs = hotspots.gi_star(cells[ok], values[ok], k=k, alpha=alpha)
    return {
        "layer": slug,
        "res": res,
        "measure": measure,
        "bucket_s": width,
        "from": _iso(f),
        "to": _iso(t),
        "alpha": alpha,
        "k": k,
        "cells": h3bin.cells_to_strings(hs.cell),
        "values": _clean(hs.value),
        "z": _clean(hs.z),
        "p": _clean(hs.p),
        "spot": hs.spot.astype(int).tolist(),
        "hot": int((hs.spot == 1).sum()),
        "cold": int((hs.spot == -1).sum()),
    }


def change_between(
    conn: Connection,
    slug: str,
    res: int,
    measure: str,
    a: tuple[datetime, datetime],
    b: tuple[datetime, datetime],
) -> dict[str, Any]:
    """Per-cell value in periods A and B, difference and percent change."""
    target = _target(conn, slug)
    if target.widths == (0,):
        raise InvalidInputError(
            f"layer '{slug}' has no time; change needs periods",
            slug=slug,
            i18n="err.analytics_service.layer_has_no_time_change",
        )
    ca, va, *_ = _cells(conn, target, res, a[0], a[1], measure)
    cb, vb, *_ = _cells(conn, target, res, b[0], b[1], measure)
    ch = hotspots.change(ca, np.nan_to_num(va), cb, np.nan_to_num(vb))
    return {
        "layer": slug,
        "res": res,
        "measure": measure,
        "a": [_iso(a[0]), _iso(a[1])],
        "b": [_iso(b[0]), _iso(b[1])],
        "cells": h3bin.cells_to_strings(ch.cell),
        "a_values": _clean(ch.a),
        "b_values": _clean(ch.b),
        "delta": _clean(ch.delta),
        "pct": _clean(ch.pct),
    }


FREQ_SECONDS = {"day": 86400, "week": 7 * 86400}
# Weeks start on Monday: the Unix epoch was a Thursday.
_WEEK_OFFSET = 4 * 86400


def kpi_forecast(
    conn: Connection,
    slug: str,
    measure: str,
    freq: Literal["day", "week"],
    periods: int,
    horizon: int,
    commune: str | None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Series of a layer's count (or sum) per day or week, its trend and forecast band."""
    info = get_layer(conn, slug)
    if info.time_field is None:
        raise InvalidInputError(
            f"layer '{slug}' has no time field",
            slug=slug,
            i18n="err.analytics_service.layer_has_no_time_field",
        )
    nums = h3db.numeric_properties(info)
    kind, mi = h3db.parse_measure(measure, nums)
    if kind == "mean":
        raise InvalidInputError(
            "forecast supports count or sum:<property>",
            param="measure",
            i18n="err.analytics_service.forecast_supports_count_or_sum",
        )
    w = FREQ_SECONDS[freq]
    off = _WEEK_OFFSET if freq == "week" else 0
    end_epoch = (now or datetime.now(UTC)).timestamp()
    end = (end_epoch - off) // w * w + off  # start of the current (incomplete) period
    start = end - periods * w
    b, n, s = h3db.feature_series(
        conn,
        info.id,
        86400,
        datetime.fromtimestamp(start, tz=UTC),
        datetime.fromtimestamp(end, tz=UTC),
        nums[mi - 1] if mi else None,
        commune,
    )
    y = np.zeros(periods)
    idx = ((b - start) // w).astype(np.int64)
    np.add.at(y, idx, n if kind == "count" else np.nan_to_num(s))
    fc = forecast.linear_forecast(y, horizon=horizon)
    starts = [datetime.fromtimestamp(start + i * w, tz=UTC) for i in range(periods + horizon)]
    return {
        "layer": slug,
        "measure": measure,
        "freq": freq,
        "commune": commune,
        "periods": [p.isoformat() for p in starts[:periods]],
        "values": y.tolist(),
        "fitted": _clean(fc.fitted),
        "forecast_periods": [p.isoformat() for p in starts[periods:]],
        "forecast": _clean(fc.mean),
        "lower": _clean(fc.lower),
        "upper": _clean(fc.upper),
        "level": fc.level,
        "slope_per_period": round(fc.slope, 6),
        "slope_p": round(fc.slope_p, 6),
    }


def _codes(col: list[Any]) -> list[str]:
    return ["" if v is None else str(v) for v in col]


def commune_indicators(conn: Connection) -> list[dict[str, Any]]:
    """Indicators per current commune from admin units, schools, hospitals and field reports."""
    communes = h3db.commune_table(conn)
    (school,) = h3db.layer_property_columns(conn, "schools", ["commune_code"])
    (hospital,) = h3db.layer_property_columns(conn, "hospitals", ["commune_code"])
    rc, status, on_time = h3db.layer_property_columns(
        conn, "field_reports", ["commune_code", "status", "on_time"]
    )
    return indicators.commune_indicators(
        indicators.CommuneInputs(
            codes=[c[0] for c in communes],
            names=[c[1] for c in communes],
            population=np.asarray([c[2] for c in communes], dtype=np.float64),
            area_km2=np.asarray([c[3] for c in communes], dtype=np.float64),
            school_codes=_codes(school),
            hospital_codes=_codes(hospital),
            report_codes=_codes(rc),
            report_resolved=np.asarray([s == "resolved" for s in status], dtype=bool),
            report_on_time=np.asarray(
                [np.nan if v is None else float(bool(v)) for v in on_time], dtype=np.float64
            ),
        )
    )


def default_window(days: int = 30) -> tuple[datetime, datetime]:
    """The last `days` whole Vietnam days up to the next midnight in Vietnam."""
    local = ZoneInfo(PERIOD_TZ)
    now = datetime.now(local)
    end = datetime(now.year, now.month, now.day, tzinfo=local) + timedelta(days=1)
    return end - timedelta(days=days), end
