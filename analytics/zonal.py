"""Zonal statistics exact over partial pixels (coverage fractions, via exactextract).

Pure functions over a numpy grid in a projected CRS plus shapely polygons in that CRS. Areas
come from a per-row cell area (WebMercator cells shrink by cos²(latitude)), passed in as a
zero-copy broadcast weight grid, so areas are in true square metres.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from exactextract import Operation, exact_extract
from exactextract.raster import NumPyRasterSource
from pydantic import BaseModel, ConfigDict, Field, field_validator

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


def _source(grid: Grid, mat: npt.NDArray[Any], name: str, nodata: float | None) -> Any:
    xmin, ymin, xmax, ymax = grid.bounds
    return NumPyRasterSource(mat, xmin, ymin, xmax, ymax, nodata=nodata, name=name)


def zonal(grid: Grid, polygons: list[shapely.Geometry], req: StatRequest) -> list[dict[str, Any]]:
    """One dict of statistics per polygon (in the grid's CRS), exact over partial pixels.

    min/max/mean/sum/count weigh each cell by the share of it inside the polygon (count is
    the covered cell count); area_km2 is the covered valid area; area_km2_above_X the covered
    area where the value exceeds X. Polygons without valid cells get None statistics.
    """
    if not polygons:
        return []
    rows, cols = grid.shape
    weights = np.broadcast_to(grid.row_area_m2()[:, None], (rows, cols))
    valid = grid.valid()
    src = _source(grid, grid.values, "v", grid.nodata)
    w_src = _source(grid, weights, "w", None)
    ops = []
    for s in req.basic:
        if s in ("min", "max", "mean", "sum", "count"):
            ops.append(Operation(s, s, src, None))
    ind_sources = [_source(grid, valid.view(np.uint8), "valid", None)]
    ops.append(Operation("weighted_sum", "_valid_m2", ind_sources[0], w_src))
    for i, x in enumerate(req.above):
        with np.errstate(invalid="ignore"):
            above = (valid & (grid.values > x)).view(np.uint8)
        s_above = _source(grid, above, f"above{i}", None)
        ind_sources.append(s_above)
        ops.append(Operation("weighted_sum", f"_above{i}", s_above, w_src))
    feats = [
        {"type": "Feature", "properties": {"_i": i}, "geometry": shapely.geometry.mapping(g)}
        for i, g in enumerate(polygons)
    ]
    out = exact_extract(
        [src, *ind_sources], feats, ops, weights=w_src, include_cols=["_i"], output="geojson"
    )
    results: list[dict[str, Any]] = [{} for _ in polygons]
    for f in out:
        p = f["properties"]
        i = int(p["_i"])
        row: dict[str, Any] = {}
        count = p.get("count")
        empty = p.get("_valid_m2", 0.0) == 0.0
        for s in req.basic:
            if s == "area_km2":
                row[s] = p["_valid_m2"] / 1e6
            elif s == "count":
                row[s] = float(count or 0.0)
            else:
                v = p.get(s)
                row[s] = (
                    None
                    if empty or v is None or (isinstance(v, float) and math.isnan(v))
                    else float(v)
                )
        for j, x in enumerate(req.above):
            row[above_column(x)] = p[f"_above{j}"] / 1e6
        results[i] = row
    return results
