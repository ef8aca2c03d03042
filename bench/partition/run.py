"""Measure LIST-partitioned `feature` (one partition per layer) against one flat table.

Seeds the demo with many parcels into a throwaway database, copies `feature` into an
unpartitioned `feature_flat` with the same indexes, and times the same small-layer and
large-layer queries on both. Last line: one JSON object with the figures and ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import psycopg

from layers import cluster, migrate, testing
from layers.db import make_engine
from layers.demo.seed import seed_demo
from layers.settings import Settings

QUERIES = {
    # 151 hospitals in a Vinh-sized box: the small layer next to a million parcels.
    "hospitals_bbox": (
        "SELECT count(*) FROM {t} WHERE layer_id = %(hosp)s "
        "AND geom && ST_MakeEnvelope(105.60, 18.60, 105.78, 18.76, 4326)"
    ),
    "hospitals_knn": (
        "SELECT id FROM {t} WHERE layer_id = %(hosp)s "
        "ORDER BY geom <-> ST_SetSRID(ST_MakePoint(105.68, 18.67), 4326) LIMIT 5"
    ),
    # A z15 tile's worth of parcels in central Vinh.
    "parcels_tile_z15": (
        "SELECT count(*) FROM {t} WHERE layer_id = %(parc)s "
        "AND geom && ST_MakeEnvelope(105.670, 18.665, 105.681, 18.676, 4326)"
    ),
    "schools_all": "SELECT count(*) FROM {t} WHERE layer_id = %(sch)s",
}


def _time(conn: psycopg.Connection, query: str, params: dict[str, int], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        conn.execute(query, params).fetchall()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> None:
    """Run the comparison and print the JSON line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--parcels", type=int, default=300_000)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()

    base = Settings()
    cluster.ensure_running(base)
    name = testing.create_database(base, "iocmap_bench_part")
    try:
        settings = base.model_copy(
            update={"database_url": cluster.database_url(base, name), "demo_parcels": args.parcels}
        )
        engine = make_engine(settings)
        migrate.upgrade(engine)
        t0 = time.perf_counter()
        seed_demo(engine, settings)
        seed_s = time.perf_counter() - t0
        engine.dispose()
        with psycopg.connect(
            cluster.libpq_url(settings.database_url or ""), autocommit=True
        ) as conn:
            conn.execute("CREATE TABLE feature_flat AS SELECT * FROM feature")
            conn.execute("CREATE INDEX ON feature_flat USING gist (geom)")
            conn.execute("CREATE INDEX ON feature_flat (layer_id)")
            conn.execute("ANALYZE feature_flat")
            conn.execute("ANALYZE feature")
            ids = dict(conn.execute("SELECT slug, id FROM layer").fetchall())
            params = {"hosp": ids["hospitals"], "parc": ids["land_parcels"], "sch": ids["schools"]}
            results: dict[str, dict[str, float]] = {}
            for label, template in QUERIES.items():
                row = {}
                for table in ("feature", "feature_flat"):
                    query = template.replace("{t}", table)
                    _time(conn, query, params, 5)  # warm the cache
                    samples = _time(conn, query, params, args.repeat)
                    row[table] = statistics.median(samples)
                row["speedup"] = row["feature_flat"] / row["feature"] if row["feature"] else 0.0
                results[label] = row
                print(
                    f"{label:18s} partitioned {row['feature']:8.3f} ms   flat {row['feature_flat']:8.3f} ms   x{row['speedup']:.2f}"
                )
    finally:
        testing.drop_database(base, name)
    print(
        json.dumps(
            {
                "bench": "partition",
                "parcels": args.parcels,
                "seed_s": round(seed_s, 1),
                "median_ms": {
                    k: {t: round(v, 3) for t, v in r.items()} for k, r in results.items()
                },
            }
        )
    )


if __name__ == "__main__":
    main()
