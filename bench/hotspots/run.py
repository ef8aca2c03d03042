"""Gi* hot spots at the province's size: ours (numpy) against esda.G_Local(star=True).

Both sides get the same H3 cells and values, the same binary k-ring weights with the cell
itself included, and no permutation test (esda's permutations=0; ours has none). esda's time
includes building its libpysal W from the same neighbour pairs, as an analyst would have to.
Sides alternate in rotating order; medians and ranges of the repeats; one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import h3
import numpy as np

from analytics import hotspots


def sample(res: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Cells covering Nghệ An's extent at `res` (about the province's count) with skewed counts."""
    rng = np.random.default_rng(seed)
    poly = h3.LatLngPoly([(18.55, 103.9), (20.0, 104.3), (19.9, 105.8), (18.6, 105.8)])
    cells = np.array(sorted(h3.str_to_int(c) for c in h3.polygon_to_cells(poly, res)), np.uint64)
    values = rng.negative_binomial(1, 0.3, len(cells)).astype(np.float64)
    return cells, values


def ours(cells: np.ndarray, values: np.ndarray, k: int) -> np.ndarray:
    """Our Gi* z-scores."""
    return hotspots.gi_star(cells, values, k=k, fill_neighbors=False).z


def theirs(cells: np.ndarray, values: np.ndarray, k: int) -> np.ndarray:
    """esda's Gi* z-scores on a W built from the same k-ring pairs."""
    import esda
    import libpysal

    study = np.unique(cells)
    owner, other = hotspots.ring_neighbours(study, k)
    neighbours: dict[int, list[int]] = {i: [] for i in range(len(study))}
    for i, j in zip(owner.tolist(), other.tolist(), strict=True):
        if i != j:
            neighbours[i].append(j)
    w = libpysal.weights.W(neighbours, silence_warnings=True)
    g = esda.G_Local(values, w, transform="B", star=True, permutations=0)
    return np.asarray(g.Zs, dtype=np.float64)


def main() -> None:
    """Time both sides and print one JSON line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--res", type=int, default=8)
    parser.add_argument("--k", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    cells, values = sample(args.res, 1)
    sides = {"ours": ours, "esda": theirs}
    times: dict[str, list[float]] = {name: [] for name in sides}
    loads = [os.getloadavg()[0]]
    results: dict[str, np.ndarray] = {}
    order = list(sides)
    for rep in range(args.repeat):
        for name in order[rep % 2 :] + order[: rep % 2]:
            start = time.perf_counter()
            results[name] = sides[name](cells, values, args.k)
            times[name].append(time.perf_counter() - start)
            loads.append(os.getloadavg()[0])
    med = {name: statistics.median(t) for name, t in times.items()}
    print(
        json.dumps(
            {
                "bench": "hotspots",
                "cells": len(cells),
                "res": args.res,
                "k": args.k,
                "ours_s": {
                    "median": round(med["ours"], 4),
                    "range": [min(times["ours"]), max(times["ours"])],
                },
                "esda_s": {
                    "median": round(med["esda"], 4),
                    "range": [min(times["esda"]), max(times["esda"])],
                },
                "ratio_vs_esda": round(med["esda"] / med["ours"], 2),
                "max_abs_z_difference": float(np.max(np.abs(results["ours"] - results["esda"]))),
                "load_average_1m": {"min": min(loads), "max": max(loads)},
            }
        )
    )


if __name__ == "__main__":
    main()
