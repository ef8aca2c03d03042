"""Zonal statistics exact over partial pixels (coverage fractions, as exactextract computes).

Pure functions over a numpy grid in a projected CRS plus shapely polygons in that CRS. The
fractions come from a coverage index (analytics.coverage) that a caller may keep and reuse
for every raster on the same grid. Areas come from a per-row cell area (WebMercator cells
shrink by cos²(latitude)), so they are in true square metres.
"""

from __future__ import annotations

import math
from typing import Any

import shapely
from pydantic import BaseModel, ConfigDict, Field, field_validator

from analytics import coverage
from layers.rasters.grid import Grid

BASIC_STATS = ("min", "max", "mean", "sum", "count", "area_km2")


class StatRequest(BaseModel):
    """Which statistics to compute: names from BASIC_STATS and area_km2_above thresholds."""

    model_config = ConfigDict(extra="forbid")

    basic: list[str] = Field(default_factory=lambda: ["min", "max", "mean", "count"])
    above: list[float] = Field(default_factory=list)

    @field_validator("basic")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        bad = [s for s in v if s not in BASIC_STATS]
        if bad:
            raise ValueError(
                f"unknown statistic {bad[0]!r}; use {', '.join(BASIC_STATS)} or"
                " {'area_km2_above': X}"
            )
        return v

    def columns(self) -> list[str]:
        """Output column names, in order."""
        return [*self.basic, *(above_column(x) for x in self.above)]


def above_column(x: float) -> str:
    """Column name of the area above a threshold, e.g. area_km2_above_5."""
    return f"area_km2_above_{x:g}".replace("-", "m").replace(".", "_")


def parse_stats(items: list[Any]) -> StatRequest:
    """["min", "mean", {"area_km2_above": 5}] into a StatRequest."""
    basic: list[str] = []
    above: list[float] = []
    for item in items:
        if isinstance(item, str):
            basic.append(item)
        elif isinstance(item, dict) and set(item) == {"area_km2_above"}:
            above.append(float(item["area_km2_above"]))
        else:
            raise ValueError(f"statistic not understood: {item!r}")
    return StatRequest(basic=basic, above=above)


def zonal(
    grid: Grid,
    polygons: list[shapely.Geometry],
    req: StatRequest,
    index: coverage.CoverageIndex | None = None,
) -> list[dict[str, Any]]:
    """One dict of statistics per polygon (in the grid's CRS), exact over partial pixels.

    min/max/mean/sum/count weigh each cell by the share of it inside the polygon (count is
    the covered cell count); area_km2 is the covered valid area; area_km2_above_X the covered
    area where the value exceeds X. Polygons without valid cells get None statistics.
    `index` is the polygons' coverage index on this grid, when the caller keeps one.
    """
    if not polygons:
        return []
    if index is None:
        index = coverage.build_index(grid.bounds, grid.shape, polygons)
    if index.shape != grid.shape or index.count != len(polygons):
        raise ValueError("the coverage index was built for another grid or other polygons")
    got = coverage.sums(
        index,
        grid.values,
        grid.valid(),
        grid.row_area_m2(),
        req.above,
        want_minmax=bool({"min", "max"} & set(req.basic)),
    )
    results: list[dict[str, Any]] = []
    for i in range(len(polygons)):
        row: dict[str, Any] = {}
        weight = float(got.weight[i])
        empty = float(got.area[i]) == 0.0 or weight == 0.0
        for s in req.basic:
            if s == "area_km2":
                row[s] = float(got.area[i]) / 1e6
            elif s == "count":
                row[s] = weight
            elif empty:
                row[s] = None
            elif s == "sum":
                row[s] = float(got.total[i])
            elif s == "mean":
                row[s] = float(got.total[i]) / weight
            elif s == "min":
                row[s] = _finite(got.minimum[i])
            else:
                row[s] = _finite(got.maximum[i])
        for j, x in enumerate(req.above):
            row[above_column(x)] = float(got.above[j][i]) / 1e6
        results.append(row)
    return results


def _finite(v: float) -> float | None:
    return None if math.isnan(v) else float(v)
