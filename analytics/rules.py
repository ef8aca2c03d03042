"""Alert rules as data, and their pure evaluation over arrays."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, model_validator

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

Condition = Literal[">", ">=", "<", "<="]
Severity = Literal["info", "warning", "critical"]


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
    """

    model_config = ConfigDict(extra="forbid")

    slug: str = Field(pattern=r"^[a-z][a-z0-9_]{1,62}$")
    name: str = Field(min_length=1)
    severity: Severity = "warning"
    enabled: bool = True
    kind: Literal["count", "value", "duration", "percentile"]
    layer: str
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

    @model_validator(mode="after")
    def _check_kind(self) -> RuleSpec:
        if self.kind == "value" and not self.property:
            raise ValueError("a 'value' rule needs `property`")
        if self.kind == "percentile" and (self.area.kind != "hex" or not 0 < self.threshold < 100):
            raise ValueError("a 'percentile' rule needs a hex area and a threshold in (0, 100)")
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
)
