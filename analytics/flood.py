"""Flood extent and exposure: pure array functions (water level on a DEM, depths, exposure)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

# 4-connectivity: water only passes through cell edges, so a hollow touching the river
# at one corner (a single-pixel diagonal) stays dry, which is the conservative reading.
_FOUR = ndimage.generate_binary_structure(2, 1)


def flood_from_level(
    dem: npt.NDArray[Any],
    valid: npt.NDArray[np.bool_],
    level_m: float,
    seed: npt.NDArray[np.bool_],
) -> npt.NDArray[np.float32]:
    """Water depth (m) of a water level on a DEM, flooding only cells connected to the seed.

    Cells at or below the level form candidate water; of those, only the connected regions
    that contain a seed cell (the river or the breach point) are flooded. Returns depth > 0
    where flooded, 0 elsewhere (also where the DEM has no value).
    """
    below = valid & (dem <= level_m)
    labels, n = ndimage.label(below, structure=_FOUR)
    if n == 0:
        return np.zeros(dem.shape, np.float32)
    seeded = np.unique(labels[seed & below])
    seeded = seeded[seeded > 0]
    keep = np.zeros(n + 1, bool)
    keep[seeded] = True
    flooded = keep[labels]
    depth = np.zeros(dem.shape, np.float32)
    depth[flooded] = (level_m - dem[flooded]).astype(np.float32)
    # A cell exactly at the level is wet but 0 m deep; count it with a hair of water.
    depth[flooded & (depth <= 0)] = np.float32(1e-3)
    return depth


def depth_from_raster(
    values: npt.NDArray[Any], valid: npt.NDArray[np.bool_], min_depth_m: float
) -> npt.NDArray[np.float32]:
    """Depths of a flood-depth raster, zero where dry (below min_depth_m) or without value."""
    depth = np.where(valid, values, 0).astype(np.float32)
    depth[depth < min_depth_m] = 0.0
    return depth


def people_exposed(population: float | None, flooded_km2: float, area_km2: float) -> float | None:
    """Population times the flooded share of the unit's area (None without a population)."""
    if population is None or area_km2 <= 0:
        return None
    return float(population) * min(1.0, flooded_km2 / area_km2)


def exposure_passes(
    summary: dict[str, float], thresholds: dict[str, float]
) -> list[tuple[str, float, float]]:
    """Which thresholds (people_exposed, flooded_km2, communes_flooded…) the summary reaches."""
    return [
        (k, float(summary.get(k, 0.0)), float(v))
        for k, v in thresholds.items()
        if float(summary.get(k, 0.0)) >= float(v)
    ]
