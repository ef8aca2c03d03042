"""Per-commune indicators: density, services per population, field-report rates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]


@dataclass(frozen=True)
class CommuneInputs:
    """Communes and the commune code of each school, hospital and field report."""

    codes: Sequence[str]
    names: Sequence[str]
    population: F64
    area_km2: F64
    school_codes: Sequence[str]
    hospital_codes: Sequence[str]
    report_codes: Sequence[str]
    report_resolved: NDArray[np.bool_]
    # 1 on time, 0 late, NaN not decided yet
    report_on_time: F64


def _count_by(
    codes: Sequence[str], index: dict[str, int], n: int, weights: F64 | None = None
) -> F64:
    pos = np.fromiter((index.get(c, -1) for c in codes), dtype=np.int64, count=len(codes))
    ok = pos >= 0
    w = None if weights is None else weights[ok]
    return np.bincount(pos[ok], weights=w, minlength=n).astype(np.float64)


def _rate(num: F64, den: F64, scale: float = 1.0) -> F64:
    out: F64 = np.divide(num * scale, den, out=np.full(len(num), np.nan), where=den > 0)
    return out


def commune_indicators(inp: CommuneInputs) -> list[dict[str, Any]]:
    """One row per commune: density, schools/hospitals per 10,000, reports per 1,000, rates."""
    n = len(inp.codes)
    index = {c: i for i, c in enumerate(inp.codes)}
    pop = np.asarray(inp.population, dtype=np.float64)
    area = np.asarray(inp.area_km2, dtype=np.float64)
    schools = _count_by(inp.school_codes, index, n)
    hospitals = _count_by(inp.hospital_codes, index, n)
    reports = _count_by(inp.report_codes, index, n)
    resolved = _count_by(inp.report_codes, index, n, inp.report_resolved.astype(np.float64))
    decided_mask = ~np.isnan(inp.report_on_time)
    decided = _count_by(inp.report_codes, index, n, decided_mask.astype(np.float64))
    on_time = _count_by(inp.report_codes, index, n, np.where(decided_mask, inp.report_on_time, 0.0))
    cols = {
        "population_density": _rate(pop, area),
        "schools": schools,
        "schools_per_10k": _rate(schools, pop, 10_000.0),
        "hospitals": hospitals,
        "hospitals_per_10k": _rate(hospitals, pop, 10_000.0),
        "field_reports": reports,
        "field_reports_per_1k": _rate(reports, pop, 1_000.0),
        "resolution_rate": _rate(resolved, reports),
        "on_time_rate": _rate(on_time, decided),
    }
    rows: list[dict[str, Any]] = []
    for i in range(n):
        row: dict[str, Any] = {
            "code": inp.codes[i],
            "name": inp.names[i],
            "population": None if np.isnan(pop[i]) else int(pop[i]),
            "area_km2": None if np.isnan(area[i]) else float(area[i]),
        }
        for k, v in cols.items():
            x = float(v[i])
            row[k] = None if np.isnan(x) else x
        rows.append(row)
    return rows
