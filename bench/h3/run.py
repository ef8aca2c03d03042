"""H3 benchmark: points to res-9 counts (ours vs an h3-py loop vs bare h3ronpy), and GET /api/h3.

1. N points (default 10,000,000) uniformly over Nghệ An to res-9 counts with
   analytics.h3bin.count_points, against a plain h3-py per-point loop with a Counter
   (run on --loop-points points and compared by throughput) and bare h3ronpy
   (coordinates_to_cells + pyarrow value_counts), all in this run.
2. A throwaway database with a point layer of --api-points features over 30 days, refreshed,
   then GET /api/h3/<layer>?res=7 over the 30-day window for the whole province: p50/p95.

Last line: one JSON object with the figures and ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import h3
import h3ronpy.vector as h3v
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from analytics import h3bin, h3jobs
from bench.common import load1, paired_ratios, rotations, summary
from layers import cluster, migrate, testing
from layers.db import make_engine
from layers.features.bulk import FeatureRow, upsert_features
from layers.features.registry import LayerSpec, create_or_update_layer
from layers.settings import Settings

BBOX = (103.87, 18.55, 105.80, 20.00)  # Nghệ An, roughly


def _points(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(BBOX[0], BBOX[2], n), rng.uniform(BBOX[1], BBOX[3], n)


def _loop(lng: np.ndarray, lat: np.ndarray) -> Counter[str]:
    counts: Counter[str] = Counter()
    for x, y in zip(lng.tolist(), lat.tolist(), strict=True):
        counts[h3.latlng_to_cell(y, x, 9)] += 1
    return counts


def _bare_h3ronpy(lng: np.ndarray, lat: np.ndarray) -> pa.StructArray:
    return pc.value_counts(pa.array(h3v.coordinates_to_cells(lat, lng, 9)))


def binning(n: int, loop_n: int, rounds: int) -> dict[str, object]:
    """Throughput of the three ways to count points per res-9 cell, interleaved.

    Each round runs the sides in rotating order; each run records wall and CPU time (this
    process's, so other agents' load on the shared cores does not count against a side)
    and the load average before and after. Rates are points per second; the loop runs on
    its subset of `loop_n` points and is compared by rate.
    """
    lng, lat = _points(n)
    ref = _loop(lng[:1000], lat[:1000])  # warm-up that touches real data: every side once
    h3bin.count_points(lng[:1_000_000], lat[:1_000_000], 9)
    _bare_h3ronpy(lng[:1_000_000], lat[:1_000_000])
    sides = {
        "ours": (n, lambda: h3bin.count_points(lng, lat, 9)),
        "h3ronpy": (n, lambda: _bare_h3ronpy(lng, lat)),
        "loop": (loop_n, lambda: _loop(lng[:loop_n], lat[:loop_n])),
    }
    runs: dict[str, list[dict[str, object]]] = {k: [] for k in sides}
    last: dict[str, object] = {}
    for order in rotations(list(sides), rounds):
        for side in order:
            pts, fn = sides[side]
            before = load1()
            c0, t0 = time.process_time(), time.perf_counter()
            last[side] = fn()
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            runs[side].append(
                {
                    "wall_s": round(wall, 3),
                    "cpu_s": round(cpu, 3),
                    "mpts_s_cpu": pts / cpu / 1e6,
                    "mpts_s_wall": pts / wall / 1e6,
                    "load": [before, load1()],
                }
            )
    cells, counts = last["ours"]  # type: ignore[misc]
    vc = last["h3ronpy"]
    assert int(counts.sum()) == n and len(cells) == len(vc)  # type: ignore[arg-type]
    # same answer as the loop on a subset
    sub_cells, sub_counts = h3bin.count_points(lng[:1000], lat[:1000], 9)
    assert dict(zip(h3bin.cells_to_strings(sub_cells), sub_counts.tolist(), strict=True)) == ref

    def rates(side: str, kind: str) -> list[float]:
        return [float(r[f"mpts_s_{kind}"]) for r in runs[side]]  # type: ignore[arg-type]

    return {
        "points": n,
        "loop_points": loop_n,
        "cells": len(cells),
        "mpts_s_cpu": {s: summary(rates(s, "cpu"), 3) for s in sides},
        "mpts_s_wall": {s: summary(rates(s, "wall"), 3) for s in sides},
        "ratio_vs_h3ronpy_cpu": paired_ratios(rates("ours", "cpu"), rates("h3ronpy", "cpu")),
        "ratio_vs_h3ronpy_wall": paired_ratios(rates("ours", "wall"), rates("h3ronpy", "wall")),
        "ratio_vs_loop_cpu": paired_ratios(rates("ours", "cpu"), rates("loop", "cpu")),
        "ratio_vs_loop_wall": paired_ratios(rates("ours", "wall"), rates("loop", "wall")),
        "runs": {
            s: [{k: v for k, v in r.items() if not k.startswith("mpts")} for r in rs]
            for s, rs in runs.items()
        },
    }


def api(n: int, repeat: int) -> dict[str, float]:
    """p50/p95 of GET /api/h3 for the whole province at res 7 over 30 days."""
    from fastapi.testclient import TestClient

    from geo_api.main import create_app

    base = Settings()
    cluster.ensure_running(base)
    name = testing.create_database(base, "iocmap_bench_h3")
    try:
        settings = base.model_copy(
            update={"database_url": cluster.database_url(base, name), "analytics_scheduler": False}
        )
        engine = make_engine(settings)
        migrate.upgrade(engine)
        end = datetime(2026, 11, 1, tzinfo=UTC)
        start = end - timedelta(days=30)
        lng, lat = _points(n, seed=1)
        secs = np.random.default_rng(2).uniform(0, 30 * 86400, n)
        spec = LayerSpec(
            slug="bench_reports",
            title_vi="bench",
            title_en="bench",
            sector="feedback",
            geometry_type="Point",
            property_schema={"type": "object", "properties": {"value": {"type": "number"}}},
            time_field="t",
        )
        rows = [
            FeatureRow(f"b{i}", shapely.Point(x, y), {"value": 1}, start + timedelta(seconds=s))
            for i, (x, y, s) in enumerate(
                zip(lng.tolist(), lat.tolist(), secs.tolist(), strict=True)
            )
        ]
        with engine.begin() as conn:
            lid = create_or_update_layer(conn, spec)
            upsert_features(conn, lid, rows)
        t0 = time.perf_counter()
        h3jobs.refresh_layer(engine, "bench_reports", full=True)
        refresh_s = time.perf_counter() - t0
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE h3_agg")
        engine.dispose()
        params = {"res": 7, "from": start.isoformat(), "to": end.isoformat()}
        times = []
        with TestClient(create_app(settings)) as client:
            body = client.get("/api/h3/bench_reports", params=params).json()
            assert round(sum(body["values"])) == n, "window must hold every point"
            for _ in range(repeat):
                t0 = time.perf_counter()
                r = client.get("/api/h3/bench_reports", params=params)
                times.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200
        times.sort()
        return {
            "api_points": n,
            "api_cells": len(body["cells"]),
            "refresh_full_s": round(refresh_s, 2),
            "api_p50_ms": round(statistics.median(times), 1),
            "api_p95_ms": round(times[int(0.95 * (len(times) - 1))], 1),
        }
    finally:
        testing.drop_database(base, name)


def main() -> None:
    """Run both parts and print the JSON line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=10_000_000)
    parser.add_argument("--loop-points", type=int, default=2_000_000)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved repeats (>= 3)")
    parser.add_argument("--api-points", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="1M points, 20k API points")
    args = parser.parse_args()
    if args.quick:
        args.points, args.loop_points, args.api_points, args.repeat = 1_000_000, 300_000, 20_000, 40
    out: dict[str, object] = {"bench": "h3", "load_start": load1()}
    out.update(binning(args.points, min(args.loop_points, args.points), args.rounds))
    print(json.dumps(out), file=sys.stderr, flush=True)
    out.update(api(args.api_points, args.repeat))
    cpu_ratio = out["ratio_vs_h3ronpy_cpu"]["median"]  # type: ignore[index]
    out["goals"] = {"ratio_vs_h3ronpy": ">= 1.0", "ratio_vs_loop": ">= 2.5", "api_p95_ms": "< 100"}
    out["goal_vs_h3ronpy_met_cpu"] = cpu_ratio is not None and cpu_ratio >= 1.0
    out["load_end"] = load1()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
