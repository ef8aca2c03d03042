"""Alert rules as data, and their pure evaluation over arrays."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, model_validator

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

Condition = Literal[">", ">=", "<", "<="]
Severity = Literal["info", "warning", "critical"]
IndicatorLevel = Literal["feature", "commune", "province"]
IndicatorMode = Literal["threshold", "percentile", "spike"]
IndicatorPeriod = Literal["current", "latest_complete", "latest"]
FLOOD_MEASURES = ("people_exposed", "flooded_km2", "communes_flooded")
# Indicator periods are the province's calendar days and months.
PERIOD_TZ = "Asia/Ho_Chi_Minh"


class RuleArea(BaseModel):
    """Where a rule groups what it counts: per H3 cell, per commune, inside one polygon, per feature."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["hex", "commune", "polygon", "feature"]
    res: int = Field(default=8, ge=5, le=10)
    geometry: dict[str, Any] | None = Field(
        default=None, description="GeoJSON polygon (WGS84) for kind 'polygon'"
    )

    @model_validator(mode="after")
    def _polygon_needs_geometry(self) -> RuleArea:
        if self.kind == "polygon" and not self.geometry:
            raise ValueError("area kind 'polygon' needs a geometry")
        return self


class RuleSpec(BaseModel):
    """One alert rule.

    kind:
    - count: features of `layer` (matching `where`) observed within `window_s`, counted per area;
    - value: latest numeric `property` per feature key (e.g. a sensor) within `window_s`;
    - duration: features matching `where` (e.g. status offline) for at least `threshold` seconds,
      since `since_property` (a date-time property) or the feature's last update;
    - percentile: a stored H3 measure per cell in the last complete hour above its
      `threshold`-th percentile for the same hour of the week over `history_weeks`.
    - indicator: a sector indicator (`indicator` code, read at `level`, optionally only for
      `subjects`) in one `period`: mode "threshold" compares the value with `threshold`;
      mode "percentile" compares it with its own `threshold`-th percentile over the `history`
      previous comparable periods (same weekday for daily indicators, same month of the year
      otherwise), once at least `min_history` of them have a value; mode "spike" compares it
      with `threshold` (a factor, at least 1) x the subject's baseline, the mean (+ `spike_std` x
      the standard deviation) of the `history` periods just before it, and needs `min_value`.
      `min_value` is a floor the value must reach in any mode; `min_excess` (percentile and
      spike) is how far past the percentile or baseline limit it must be, in the indicator's
      unit, so that a subject with a flat history (all zeros) does not fire on a single event.
      `layer` is unused.
    - flood_exposure (issue 20): the flood-depth raster `layer`; `measure` is people_exposed,
      flooded_km2 or communes_flooded, compared with `threshold` for the whole province, or
      per commune with area kind "commune" (communes_flooded then makes no sense).
    """

    model_config = ConfigDict(extra="forbid")

    slug: str = Field(pattern=r"^[a-z][a-z0-9_]{1,62}$")
    name: str = Field(min_length=1)
    severity: Severity = "warning"
    enabled: bool = True
    kind: Literal["count", "value", "duration", "percentile", "indicator", "flood_exposure"]
    layer: str = ""
    condition: Condition = ">"
    threshold: float
    window_s: int = Field(default=86400, gt=0)
    area: RuleArea = Field(default_factory=lambda: RuleArea(kind="feature"))
    property: str | None = None
    where: dict[str, str] = Field(default_factory=dict)
    key_property: str | None = Field(
        default=None, description="Property identifying a device; default the feature's source key"
    )
    since_property: str | None = None
    measure: str = "count"
    history_weeks: int = Field(default=8, ge=2, le=104)
    min_history_weeks: int = Field(default=3, ge=1)
    auto_resolve: bool = Field(
        default=False, description="Resolve open alerts by itself when the condition stops holding"
    )
    indicator: str | None = Field(default=None, description="Indicator code (kind 'indicator')")
    level: IndicatorLevel = "commune"
    subjects: list[str] | None = Field(
        default=None, description="Only these subjects of the level (default: all of them)"
    )
    mode: IndicatorMode = "threshold"
    period: IndicatorPeriod = Field(
        default="current",
        description="current: the period holding now; latest_complete: the one before it; "
        "latest: the last period with a value",
    )
    history: int = Field(default=8, ge=2, le=520)
    min_history: int = Field(default=3, ge=1)
    spike_std: float = Field(
        default=0.0, ge=0, description="spike: baseline = mean + spike_std x standard deviation"
    )
    # No default floor: indicators come in counts, rates and money, so no single value fits.
    min_value: float | None = Field(
        default=None, description="Fire only when the value is at least this (indicator unit)"
    )
    min_excess: float = Field(
        default=0.0,
        ge=0,
        description="percentile and spike: the value must pass the limit by at least this much",
    )

    @model_validator(mode="after")
    def _check_kind(self) -> RuleSpec:
        if self.kind != "indicator" and not self.layer:
            raise ValueError(f"a '{self.kind}' rule needs `layer`")
        if self.kind == "flood_exposure" and self.measure not in FLOOD_MEASURES:
            raise ValueError(
                f"a 'flood_exposure' rule needs `measure` in {', '.join(FLOOD_MEASURES)}"
            )
        if self.kind == "value" and not self.property:
            raise ValueError("a 'value' rule needs `property`")
        if self.kind == "percentile" and (self.area.kind != "hex" or not 0 < self.threshold < 100):
            raise ValueError("a 'percentile' rule needs a hex area and a threshold in (0, 100)")
        if self.kind == "indicator":
            if not self.indicator:
                raise ValueError("an 'indicator' rule needs `indicator` (an indicator code)")
            if self.mode == "percentile" and not 0 < self.threshold < 100:
                raise ValueError("an indicator percentile rule needs a threshold in (0, 100)")
            if self.mode == "spike":
                if self.threshold < 1:
                    raise ValueError("an indicator spike rule needs a threshold (factor) >= 1")
                if self.condition not in (">", ">="):
                    raise ValueError("an indicator spike rule needs condition '>' or '>='")
                if self.min_value is None:
                    raise ValueError(
                        "an indicator spike rule needs `min_value` (the smallest value worth "
                        "an alert): over a baseline of 0 any single item is a spike"
                    )
            if self.min_excess > 0 and self.mode == "threshold":
                raise ValueError(
                    "`min_excess` applies to percentile and spike rules; raise `threshold` instead"
                )
            if self.min_history > self.history:
                raise ValueError("`min_history` cannot exceed `history`")
            if self.subjects is not None and not self.subjects:
                raise ValueError("`subjects` must name at least one subject (or be left out)")
        return self


@dataclass
class Firing:
    """One area (or device) where a rule's condition holds now."""

    key: str
    value: float
    threshold: float
    title: str
    area_kind: str
    area_ref: str
    evidence_ids: list[int] = field(default_factory=list)
    lng: float | None = None
    lat: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


MAX_EVIDENCE = 200


def holds(cond: Condition, value: F64 | float, threshold: float) -> NDArray[np.bool_]:
    """Vectorised comparison `value <cond> threshold`."""
    v = np.asarray(value, dtype=np.float64)
    if cond == ">":
        return v > threshold
    if cond == ">=":
        return v >= threshold
    if cond == "<":
        return v < threshold
    return v <= threshold


def count_by_area(rule: RuleSpec, area_keys: Sequence[str], ids: I64) -> list[Firing]:
    """Count items per area key; one firing per area whose count meets the condition."""
    if len(area_keys) == 0:
        return []
    keys = np.asarray(area_keys, dtype=object)
    uk, inv = np.unique(keys.astype(str), return_inverse=True)
    counts = np.bincount(inv, minlength=len(uk)).astype(np.float64)
    hit = np.flatnonzero(holds(rule.condition, counts, rule.threshold))
    out = []
    order = np.argsort(inv, kind="stable")
    starts = np.searchsorted(inv[order], np.arange(len(uk)))
    for g in hit:
        members = ids[order[starts[g] : starts[g] + int(counts[g])]]
        out.append(
            Firing(
                key=str(uk[g]),
                value=float(counts[g]),
                threshold=rule.threshold,
                title=f"{rule.name}: {int(counts[g])} {rule.condition} {rule.threshold:g}",
                area_kind=rule.area.kind,
                area_ref=str(uk[g]),
                evidence_ids=[int(i) for i in members[:MAX_EVIDENCE]],
            )
        )
    return out


def latest_value(
    rule: RuleSpec, keys: Sequence[str], t: F64, values: F64, ids: I64, lng: F64, lat: F64
) -> list[Firing]:
    """Per device key, its latest value; a firing where it meets the condition."""
    if len(keys) == 0:
        return []
    k = np.asarray(keys, dtype=object).astype(str)
    ok = ~np.isnan(values)
    k, t, values, ids, lng, lat = k[ok], t[ok], values[ok], ids[ok], lng[ok], lat[ok]
    order = np.lexsort((np.nan_to_num(t, nan=-np.inf), k))
    k_sorted = k[order]
    last = order[np.r_[k_sorted[1:] != k_sorted[:-1], True]] if len(order) else order
    out = []
    for i in last[holds(rule.condition, values[last], rule.threshold)]:
        out.append(
            Firing(
                key=str(k[i]),
                value=float(values[i]),
                threshold=rule.threshold,
                title=f"{rule.name}: {k[i]} = {values[i]:g} {rule.condition} {rule.threshold:g}",
                area_kind="feature",
                area_ref=str(k[i]),
                evidence_ids=[int(ids[i])],
                lng=float(lng[i]),
                lat=float(lat[i]),
            )
        )
    return out


def state_duration(
    rule: RuleSpec, keys: Sequence[str], since: F64, now: float, ids: I64, lng: F64, lat: F64
) -> list[Firing]:
    """Devices that have been in the matching state for `threshold` seconds (or more)."""
    if len(keys) == 0:
        return []
    dur = now - np.asarray(since, dtype=np.float64)
    out = []
    for i in (int(x) for x in np.flatnonzero(holds(rule.condition, dur, rule.threshold))):
        out.append(
            Firing(
                key=str(keys[i]),
                value=float(dur[i]),
                threshold=rule.threshold,
                title=f"{rule.name}: {keys[i]} for {int(dur[i] // 60)} min",
                area_kind="feature",
                area_ref=str(keys[i]),
                evidence_ids=[int(ids[i])],
                lng=float(lng[i]),
                lat=float(lat[i]),
            )
        )
    return out


def above_percentile(
    rule: RuleSpec,
    cells_now: NDArray[np.uint64],
    values_now: F64,
    hist_cells: NDArray[np.uint64],
    hist_week: I64,
    hist_values: F64,
    n_weeks: int,
) -> list[Firing]:
    """Cells whose current value exceeds the q-th percentile of the same hour in past weeks.

    Weeks without a stored value count as 0 (no vehicles seen), so a cell needs real history
    to have a high percentile.
    """
    if len(cells_now) == 0 or n_weeks < rule.min_history_weeks:
        return []
    cells = np.union1d(cells_now, hist_cells)
    grid = np.zeros((len(cells), n_weeks))
    np.add.at(grid, (np.searchsorted(cells, hist_cells), hist_week), hist_values)
    pct = np.percentile(grid, rule.threshold, axis=1)
    idx = np.searchsorted(cells, cells_now)
    p_now = pct[idx]
    out = []
    for j in np.flatnonzero(holds(rule.condition, values_now, 0.0) & (values_now > p_now)):
        out.append(
            Firing(
                key=str(int(cells_now[j])),
                value=float(values_now[j]),
                threshold=float(p_now[j]),
                title=(
                    f"{rule.name}: {values_now[j]:g} > p{rule.threshold:g} {p_now[j]:g}"
                    " for this hour of the week"
                ),
                area_kind="hex",
                area_ref=str(int(cells_now[j])),
            )
        )
    return out


def _num(v: float) -> str:
    return f"{round(float(v), 2):g}"


def comparable_columns(periods: Sequence[date], j: int, frequency: str, history: int) -> list[int]:
    """Up to `history` earlier columns comparable with column j, oldest first.

    Daily data compares the same weekday; coarser data the same month of the year (the same
    month, quarter, year or school year in earlier years).
    """
    target = periods[j]
    if frequency == "day":
        same = [c for c in range(j) if (target - periods[c]).days % 7 == 0]
    else:
        same = [
            c for c in range(j) if periods[c].month == target.month and periods[c].day == target.day
        ]
    return same[-history:]


def indicator_target(
    rule: RuleSpec, periods: Sequence[date], values: F64, current: date, previous: date
) -> int | None:
    """Column of the period the rule looks at, or None when it is not in the data."""
    if rule.period == "latest":
        upto = [c for c, p in enumerate(periods) if p <= current]
        have = [c for c in upto if values.shape[0] and np.isfinite(values[:, c]).any()]
        return have[-1] if have else None
    want = current if rule.period == "current" else previous
    return next((c for c, p in enumerate(periods) if p == want), None)


_PERIOD_DAYS = {"day": 1, "month": 31, "quarter": 92, "year": 366, "school_year": 366}


def indicator_history_start(rule: RuleSpec, current: date, previous: date, frequency: str) -> date:
    """First day worth reading for the rule's target period and its history (a little more)."""
    days = _PERIOD_DAYS.get(frequency, 366)
    if rule.period == "current":
        first = current
    elif rule.period == "latest_complete":
        first = previous
    else:  # the last period with data, looked for up to `history` periods back
        first = current - timedelta(days=days * rule.history)
    if rule.mode == "percentile":
        first -= timedelta(days=7 * rule.history if frequency == "day" else 366 * rule.history)
    elif rule.mode == "spike":
        # the baseline's periods, and as many again to see where a subject's reports begin
        first -= timedelta(days=days * 2 * rule.history)
    return first


def fill_count_gaps(values: F64, *, from_first_value: bool) -> F64:
    """A copy of subjects x periods `values` with the gaps that mean "no events" set to 0.

    Count indicators store nothing for a period without events (the news counts only write
    days with items), so treating every gap as missing would build a baseline from busy days
    alone and hide spikes, while treating every gap as 0 would count an outage of the feed,
    or the time before it existed, as calm. So a gap is 0 only with evidence that the source
    was reporting: the subject has values on both sides of it, or some other subject has a
    value in that period. With `from_first_value` (reporting units such as hospitals, which
    join a system one by one) the latter also needs the subject's own first value before
    the gap. Communes and the province are roll-ups of everything the source sent, so any
    period the source reported is theirs too.
    """
    out = np.array(values, dtype=np.float64, copy=True)
    have = np.isfinite(out)
    started = np.cumsum(have, axis=1) > 0
    until_last = np.cumsum(have[:, ::-1], axis=1)[:, ::-1] > 0
    reported: NDArray[np.bool_] = np.asarray(have.any(axis=0))[None, :]  # per period
    if from_first_value:
        reported = reported & started
    out[~have & ((started & until_last) | reported)] = 0.0
    return out


def spike_baseline(hist: F64, spike_std: float, min_history: int) -> tuple[F64, F64, I64]:
    """Per subject: baseline (mean + spike_std x std of its finite history), std, and count.

    The baseline is NaN where fewer than `min_history` periods have a value.
    """
    n = np.isfinite(hist).sum(axis=1).astype(np.int64)
    enough = n >= min_history
    mean = np.full(hist.shape[0], np.nan)
    std = np.full(hist.shape[0], np.nan)
    if enough.any():
        mean[enough] = np.nanmean(hist[enough], axis=1)
        std[enough] = np.nanstd(hist[enough], axis=1)
    return mean + spike_std * std, std, n


def _compare(cond: Condition, a: F64, b: F64, where: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """`a <cond> b` where `where` holds, False elsewhere (no warnings on NaN)."""
    out = np.zeros(len(a), dtype=bool)
    if cond == ">":
        np.greater(a, b, out=out, where=where)
    elif cond == ">=":
        np.greater_equal(a, b, out=out, where=where)
    elif cond == "<":
        np.less(a, b, out=out, where=where)
    else:
        np.less_equal(a, b, out=out, where=where)
    return out & where


def indicator_firings(
    rule: RuleSpec,
    periods: Sequence[date],
    values: F64,
    keys: Sequence[str],
    names: Sequence[str],
    lng: Sequence[float | None],
    lat: Sequence[float | None],
    *,
    current: date,
    previous: date,
    frequency: str,
    unit: str = "",
    zero_fill: bool = False,
) -> list[Firing]:
    """Subjects whose value in the rule's period meets its threshold, percentile or spike limit.

    `values` is subjects x periods (NaN where missing); `current` and `previous` are the starts
    of the period holding now and of the one before it. `zero_fill` (a summed count) lets a
    spike baseline read gaps as 0 (see fill_count_gaps).
    """
    if values.size == 0 or not periods:
        return []
    j = indicator_target(rule, periods, values, current, previous)
    if j is None:
        return []
    now_v = values[:, j]
    have = np.isfinite(now_v)
    n = len(keys)
    base, std = np.full(n, np.nan), np.full(n, np.nan)
    if rule.mode == "threshold":
        limit = np.full(n, rule.threshold)
        ok = have
        n_hist = np.zeros(n, dtype=np.int64)
    elif rule.mode == "percentile":
        cols = comparable_columns(periods, j, frequency, rule.history)
        hist = values[:, cols] if cols else np.empty((n, 0))
        n_hist = np.isfinite(hist).sum(axis=1)
        enough = n_hist >= rule.min_history
        limit = np.full(n, np.nan)
        if enough.any():
            limit[enough] = np.nanpercentile(hist[enough], rule.threshold, axis=1)
        ok = have & enough
    else:
        # the `history` periods just before the target (the columns are consecutive periods)
        upto = values[:, : j + 1]
        if zero_fill:
            upto = fill_count_gaps(upto, from_first_value=rule.level == "feature")
        hist = upto[:, max(0, j - rule.history) : j]
        base, std, n_hist = spike_baseline(hist, rule.spike_std, rule.min_history)
        limit = rule.threshold * base
        ok = have & (n_hist >= rule.min_history)
    hit = _compare(rule.condition, now_v, limit, ok)
    if rule.min_value is not None:
        hit &= _compare(">=", now_v, np.full(n, rule.min_value), ok)
    if rule.min_excess > 0:
        up = rule.condition in (">", ">=")
        hit &= _compare(
            ">=", now_v - limit if up else limit - now_v, np.full(n, rule.min_excess), ok
        )
    period = periods[j]
    suffix = unit if unit == "%" else f" {unit}" if unit else ""
    if rule.mode == "threshold":
        what = f"{rule.condition} {_num(rule.threshold)}{suffix}"
    elif rule.mode == "spike":
        span = {"day": "ngày", "month": "tháng"}.get(frequency, "kỳ")
        what = (
            f"{rule.condition} {{lim}} (gấp {rule.threshold:g} lần mức nền {{base}} "
            f"của {{n}} {span} trước)"
        )
    elif frequency == "day":
        what = f"{rule.condition} p{rule.threshold:g} ({{lim}}) của cùng thứ trong tuần"
    else:
        what = f"{rule.condition} p{rule.threshold:g} ({{lim}}) của cùng kỳ các năm trước"
    out = []
    for i in (int(x) for x in np.flatnonzero(hit)):
        v, lim, x, y = float(now_v[i]), float(limit[i]), lng[i], lat[i]
        out.append(
            Firing(
                key=f"{keys[i]}@{period.isoformat()}",
                value=v,
                threshold=lim,
                title=(
                    f"{rule.name}: {names[i]} {_num(v)}{suffix} "
                    f"{what.format(lim=_num(lim), base=_num(base[i]), n=int(n_hist[i]))}, "
                    f"{period.isoformat()}"
                ),
                area_kind=rule.level,
                area_ref=str(keys[i]),
                lng=None if x is None else float(x),
                lat=None if y is None else float(y),
                extra={
                    "indicator": rule.indicator,
                    "level": rule.level,
                    "period": period.isoformat(),
                    "mode": rule.mode,
                    "history_periods": int(n_hist[i]),
                    "subject": {"key": str(keys[i]), "name": names[i]},
                    **(
                        {
                            "baseline": round(float(base[i]), 4),
                            "baseline_std": round(float(std[i]), 4),
                            "factor": rule.threshold,
                        }
                        if rule.mode == "spike"
                        else {}
                    ),
                },
            )
        )
    return out


EXAMPLE_RULES: tuple[RuleSpec, ...] = (
    RuleSpec(
        slug="field_reports_hex_24h",
        name="Nhiều phản ánh trong một ô (24 giờ)",
        severity="warning",
        kind="count",
        layer="field_reports",
        threshold=20,
        window_s=86400,
        area=RuleArea(kind="hex", res=8),
    ),
    RuleSpec(
        slug="camera_offline_10min",
        name="Camera mất kết nối quá 10 phút",
        severity="critical",
        kind="duration",
        layer="cameras",
        where={"status": "offline"},
        key_property="camera_id",
        condition=">=",
        threshold=600,
        auto_resolve=True,
    ),
    RuleSpec(
        slug="traffic_hex_p95",
        name="Lưu lượng xe vượt phân vị 95 theo giờ trong tuần",
        severity="warning",
        kind="percentile",
        layer="traffic_density",
        measure="sum:vehicles",
        threshold=95,
        area=RuleArea(kind="hex", res=8),
        auto_resolve=True,
    ),
    RuleSpec(
        slug="water_level_high",
        name="Mực nước vượt ngưỡng báo động",
        severity="critical",
        kind="value",
        layer="water_level_sensors",
        property="water_level_m",
        key_property="sensor_id",
        threshold=3.0,
        window_s=3600,
        auto_resolve=True,
    ),
    RuleSpec(
        slug="hcc_late_rate_commune",
        name="Tỷ lệ hồ sơ trễ hạn trong tháng vượt 5%",
        severity="warning",
        kind="indicator",
        indicator="hcc_late_rate",
        level="commune",
        condition=">",
        threshold=5,
        period="current",
        auto_resolve=True,
    ),
    RuleSpec(
        slug="yt_emergencies_hospital_p95",
        name="Ca cấp cứu vượt phân vị 95 của cùng thứ trong tuần",
        severity="warning",
        kind="indicator",
        indicator="yt_emergencies",
        level="feature",
        mode="percentile",
        threshold=95,
        period="latest_complete",  # a day's figures arrive the next morning
        history=8,
        min_history=4,
        # Most units see 0 or 1 emergencies a day, so p95 is often 0 or a fraction and a
        # single case "exceeds" it: ask for a real surge, 3 cases and 2 over the p95.
        min_value=3,
        min_excess=2,
        auto_resolve=True,
    ),
    RuleSpec(
        slug="news_negative_spike_commune",
        name="Tin tiêu cực tăng đột biến tại một xã",
        severity="warning",
        kind="indicator",
        indicator="tt_news_negative",
        level="commune",
        mode="spike",
        threshold=3,  # three times the commune's daily mean over the four weeks before
        history=28,
        min_history=14,
        min_value=5,  # a handful of items a day is ordinary news, whatever the baseline
        # Today as items arrive (the derived counts are refreshed before the rules run),
        # yesterday until today has any item. A spike is an event to acknowledge, and the
        # day looked at moves on, so its alert stays open rather than resolving at midnight.
        period="latest",
        auto_resolve=False,
    ),
)
