"""Shared helpers of the benchmarks: interleaved repeats, medians, ranges and load averages."""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable, Sequence
from typing import Any


def load1() -> float:
    """The machine's 1-minute load average, rounded."""
    return round(os.getloadavg()[0], 2)


def rotations(sides: Sequence[str], repeats: int) -> list[list[str]]:
    """The order of the sides in each repeat: rotated, so no side always runs first."""
    n = len(sides)
    return [[sides[(r + i) % n] for i in range(n)] for r in range(repeats)]


def summary(values: Sequence[float | None], digits: int = 2) -> dict[str, Any]:
    """Median and [min, max] of repeated measurements (None values are skipped)."""
    vals = [v for v in values if v is not None]
    if not vals:
        return {"median": None, "range": None}
    return {
        "median": round(statistics.median(vals), digits),
        "range": [round(min(vals), digits), round(max(vals), digits)],
    }


def paired_ratios(
    a: Sequence[float | None], b: Sequence[float | None], digits: int = 2
) -> dict[str, Any]:
    """a/b per repeat (both measured in the same round), as median and range."""
    return summary([x / y if x and y else None for x, y in zip(a, b, strict=True)], digits)


def interleave(
    sides: Sequence[str], repeats: int, run: Callable[[str, int], dict[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """Run every side `repeats` times in rotating order; each result gets load before/after."""
    out: dict[str, list[dict[str, Any]]] = {s: [] for s in sides}
    for r, order in enumerate(rotations(sides, repeats)):
        for side in order:
            before = load1()
            res = run(side, r)
            res["load"] = [before, load1()]
            out[side].append(res)
    return out
