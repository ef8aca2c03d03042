"""Getis-Ord Gi* hot and cold spots on H3 cells, and change per cell between two periods."""

from __future__ import annotations

from dataclasses import dataclass

import h3ronpy
import numpy as np
import pyarrow as pa
from numpy.typing import NDArray
from scipy.stats import norm

F64 = NDArray[np.float64]
U64 = NDArray[np.uint64]
I64 = NDArray[np.int64]


@dataclass(frozen=True)
class HotSpots:
    """Gi* per cell: z-score, two-sided p-value and class (1 hot, -1 cold, 0 not significant)."""

    cell: U64
    value: F64
    z: F64
    p: F64
    spot: NDArray[np.int8]


def ring_neighbours(study: U64, k: int) -> tuple[I64, I64]:
    """Pairs (i, j) of positions in the sorted `study` cells within k rings (i == j included)."""
    owner, neigh = _disk(study, k)
    idx = np.searchsorted(study, neigh)
    idx[idx >= len(study)] = 0
    found = study[idx] == neigh
    return owner[found], idx[found]


def _disk(cells: U64, k: int) -> tuple[I64, U64]:
    arr = pa.array(h3ronpy.grid_disk(np.asarray(cells, dtype=np.uint64), k))
    offsets = np.asarray(arr.offsets, dtype=np.int64)
    neigh = np.asarray(arr.values, dtype=np.uint64)
    owner = np.repeat(np.arange(len(cells), dtype=np.int64), np.diff(offsets))
    return owner, neigh


def gi_star(
    cells: U64, values: F64, k: int = 1, alpha: float = 0.05, fill_neighbors: bool = True
) -> HotSpots:
    """Getis-Ord Gi* with binary k-ring weights (self included).

    With `fill_neighbors`, cells next to the data with no value count as 0, so an isolated
    cluster stands out against its empty surroundings rather than only against other data.
    """
    cells = np.asarray(cells, dtype=np.uint64)
    values = np.asarray(values, dtype=np.float64)
    if fill_neighbors and len(cells):
        _, ring = _disk(cells, k)
        study = np.union1d(cells, ring)
    else:
        study = np.unique(cells)
    x = np.zeros(len(study), dtype=np.float64)
    pos = np.searchsorted(study, cells)
    np.add.at(x, pos, values)
    n = len(study)
    if n < 3:
        z0 = np.zeros(n)
        return HotSpots(study, x, z0, np.ones(n), np.zeros(n, dtype=np.int8))
    owner, other = ring_neighbours(study, k)
    w_sum = np.bincount(owner, minlength=n).astype(np.float64)
    wx = np.bincount(owner, weights=x[other], minlength=n)
    xbar = x.mean()
    s = np.sqrt(max((x * x).mean() - xbar * xbar, 0.0))
    denom = s * np.sqrt(np.maximum(n * w_sum - w_sum * w_sum, 0.0) / (n - 1))
    z = np.divide(wx - xbar * w_sum, denom, out=np.zeros(n), where=denom > 0)
    p = 2.0 * norm.sf(np.abs(z))
    spot = np.where(p < alpha, np.sign(z), 0).astype(np.int8)
    return HotSpots(study, x, z, p, spot)


@dataclass(frozen=True)
class Change:
    """Value per cell in periods A and B, their difference and relative change (NaN if A is 0)."""

    cell: U64
    a: F64
    b: F64
    delta: F64
    pct: F64


def change(cells_a: U64, values_a: F64, cells_b: U64, values_b: F64) -> Change:
    """Per-cell change from period A to period B over the union of their cells."""
    ca = np.asarray(cells_a, dtype=np.uint64)
    cb = np.asarray(cells_b, dtype=np.uint64)
    cells = np.union1d(ca, cb)
    a = np.zeros(len(cells))
    b = np.zeros(len(cells))
    np.add.at(a, np.searchsorted(cells, ca), np.asarray(values_a, dtype=np.float64))
    np.add.at(b, np.searchsorted(cells, cb), np.asarray(values_b, dtype=np.float64))
    delta = b - a
    pct = np.divide(delta * 100.0, a, out=np.full(len(a), np.nan), where=a != 0)
    return Change(cells, a, b, delta, pct)
