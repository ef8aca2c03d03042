"""Benchmark: load synthetic cadastral parcels (GeoPackage, EPSG:9208) into PostGIS, and its floor.

Sides, in one run, into a throwaway database, on the same file:

* `iocmap`: our importer (pyogrio Arrow -> transform to EPSG:4326 -> validation -> binary COPY
  -> indexes -> partition swap, ANALYZE), with its stage breakdown;
* `ogr2ogr_no_reproject`: `ogr2ogr -f PostgreSQL` as GIS staff run it (PG_USE_COPY=YES, GiST
  index, 65,536-row transactions), loading EPSG:9208 as is: the goal's anchor;
* `ogr2ogr`: the same with `-t_srs EPSG:4326`, the same job as ours;
* `floor`: binary COPY of exactly the rows our importer stored (geometry, properties,
  source_key) into a plain table, then its GiST index: what the database alone costs;
* `geopandas` (optional): `read_file(...).to_crs(4326).to_postgis(...)`.

An untimed warm-up round runs every side once (file in the page cache, PROJ grids, the
floor's payload read back from our first import). Then `--repeat` rounds run the sides in
rotating order, with the 1-minute load average before and after each run; medians and
[min, max] ranges are reported, ratios paired per round. The last line is one JSON object.

    .venv/bin/python bench/import/run.py --rows 200000 --repeat 3
    .venv/bin/python bench/import/run.py --rows 1000000 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

DATA = ROOT / "bench" / ".data"


def make_parcels(rows: int) -> Path:
    """A GeoPackage of `rows` non-overlapping parcel polygons in EPSG:9208 (generated once)."""
    import geopandas as gpd
    import shapely
    from pyproj import Transformer

    path = DATA / f"parcels_{rows}.gpkg"
    if path.exists():
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(42)
    cx, cy = Transformer.from_crs(4326, 9208, always_xy=True).transform(105.40, 18.95)
    side = int(np.ceil(np.sqrt(rows)))
    i = np.arange(rows)
    w, h = 20.0, 30.0
    x0 = cx - side * w / 2 + (i % side) * w
    y0 = cy - side * h / 2 + (i // side) * h
    jitter = rng.uniform(0.5, 2.0, (rows, 2))
    coords = np.stack(
        [
            np.column_stack([x0, y0]),
            np.column_stack([x0 + w - jitter[:, 0], y0]),
            np.column_stack([x0 + w - jitter[:, 0], y0 + h - jitter[:, 1]]),
            np.column_stack([x0 + w / 2, y0 + h - jitter[:, 1] / 2]),
            np.column_stack([x0, y0 + h - jitter[:, 1]]),
            np.column_stack([x0, y0]),
        ],
        axis=1,
    )
    geoms = shapely.polygons(coords)
    uses = np.array(["ODT", "ONT", "LUC", "CLN", "TMD", "DGT"])
    gdf = gpd.GeoDataFrame(
        {
            "MaXa": np.char.add("174", (i // 50_000 % 100).astype(str)),
            "SoHieuToBanDo": (i // 1000 + 1).astype(np.int32),
            "SoThuTuThua": (i % 1000 + 1).astype(np.int32),
            "DienTich": np.round(shapely.area(geoms), 1),
            "KyHieuMucDichSuDung": uses[rng.integers(0, len(uses), rows)],
        },
        geometry=geoms,
        crs=9208,
    )
    tmp = path.with_suffix(".tmp.gpkg")
    gdf.to_file(tmp, layer="thua_dat", engine="pyogrio", use_arrow=True)
    tmp.rename(path)
    return path


def main() -> None:
    """Run the loads in rotating order and print the JSON summary."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100,000 rows")
    parser.add_argument("--geopandas", action="store_true", help="also time geopandas.to_postgis")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; medians are reported")
    parser.add_argument(
        "--no-reproject-anchor",
        action="store_true",
        help="skip `ogr2ogr -t_srs EPSG:4326` (slow at 1M rows; not the goal's anchor)",
    )
    args = parser.parse_args()
    rows = 100_000 if args.quick else args.rows

    import psycopg
    from sqlalchemy import create_engine, text

    from bench.common import load1, paired_ratios, rotations, summary
    from ingest.pipeline import ImportOptions, run_import
    from layers import cluster, migrate, testing
    from layers.db import make_engine
    from layers.settings import Settings

    load_start = load1()
    t = time.perf_counter()
    path = make_parcels(rows)
    print(f"data: {path} ({time.perf_counter() - t:.1f}s)", file=sys.stderr)

    base = Settings()
    cluster.ensure_running(base)
    name = testing.create_database(base, "iocmap_bench")
    url = cluster.database_url(base, name)
    settings = base.model_copy(update={"database_url": url})
    pg = cluster.libpq_url(url)
    env = {**os.environ, "PG_USE_COPY": "YES"}
    sides = ["iocmap", "ogr2ogr_no_reproject", "ogr2ogr", "floor"]
    if args.no_reproject_anchor:
        sides.remove("ogr2ogr")
    if args.geopandas:
        sides.append("geopandas")
    runs: dict[str, list[dict[str, Any]]] = {s: [] for s in sides}
    stages: list[dict[str, float]] = []
    payload = b""
    try:
        engine = make_engine(settings)
        migrate.upgrade(engine)

        def drop(conn_sql: str) -> None:
            with psycopg.connect(pg, autocommit=True) as conn:
                conn.execute(conn_sql)  # type: ignore[arg-type]

        def run(side: str, tag: str) -> float:
            nonlocal payload
            if side == "iocmap":
                t0 = time.perf_counter()
                report = run_import(
                    engine,
                    settings,
                    ImportOptions(path=path, layer=f"bench_parcels_{tag}", mode="replace"),
                )
                took = time.perf_counter() - t0
                assert report.rows_valid == rows, report.rejects_by_reason
                if tag != "warm":
                    stages.append(dict(report.timings))
                if not payload:
                    # The floor loads exactly the rows our importer stored.
                    with psycopg.connect(pg) as conn, conn.cursor() as cur:
                        buf = bytearray()
                        with cur.copy(
                            "COPY (SELECT f.source_key, f.properties, f.geom FROM feature f"
                            " JOIN layer l ON l.id = f.layer_id WHERE l.slug = %s)"
                            " TO STDOUT (FORMAT binary)",
                            (f"bench_parcels_{tag}",),
                        ) as copy:
                            for chunk in copy:
                                buf += chunk
                        payload = bytes(buf)
                return took
            if side == "floor":
                table = f"floor_{tag}"
                t0 = time.perf_counter()
                with psycopg.connect(pg, autocommit=True) as conn:
                    conn.execute(
                        f"CREATE TABLE {table} (source_key text, properties jsonb,"  # type: ignore[arg-type]
                        " geom geometry(Polygon, 4326))"
                    )
                    with (
                        conn.cursor() as cur,
                        cur.copy(
                            f"COPY {table} FROM STDIN (FORMAT binary)"  # type: ignore[arg-type]
                        ) as copy,
                    ):
                        view = memoryview(payload)
                        for i in range(0, len(view), 1 << 20):
                            copy.write(view[i : i + (1 << 20)])
                    conn.execute(f"CREATE INDEX ON {table} USING gist (geom)")  # type: ignore[arg-type]
                took = time.perf_counter() - t0
                drop(f"DROP TABLE {table}")
                return took
            if side.startswith("ogr2ogr"):
                extra = ["-t_srs", "EPSG:4326"] if side == "ogr2ogr" else []
                table = f"bench_{side}_{tag}"
                t0 = time.perf_counter()
                subprocess.run(
                    [
                        "ogr2ogr", "-f", "PostgreSQL", f"PG:{pg}", str(path), "thua_dat",
                        "-nln", table, "-lco", "GEOMETRY_NAME=geom",
                        "-lco", "SPATIAL_INDEX=GIST", "-gt", "65536", *extra,
                    ],
                    check=True,
                    env=env,
                )  # fmt: skip
                took = time.perf_counter() - t0
                drop(f"DROP TABLE {table}")
                return took
            import geopandas as gpd

            eng = create_engine(url)
            table = f"bench_geopandas_{tag}"
            t0 = time.perf_counter()
            gdf = gpd.read_file(path, engine="pyogrio", use_arrow=True).to_crs(4326)
            gdf.to_postgis(table, eng, if_exists="replace", chunksize=50_000)
            took = time.perf_counter() - t0
            del gdf
            with eng.connect() as conn:
                assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == rows
            eng.dispose()
            drop(f"DROP TABLE {table}")
            return took

        # Warm-up: every side once, untimed (iocmap first: the floor's payload comes from it).
        for side in sides:
            print(f"warm-up {side}: {run(side, 'warm'):.2f}s", file=sys.stderr)
        for r, order in enumerate(rotations(sides, args.repeat)):
            for side in order:
                before = load1()
                took = run(side, str(r))
                runs[side].append({"s": round(took, 3), "load": [before, load1()]})
                print(f"round {r} {side}: {took:.2f}s load {before}", file=sys.stderr)
        engine.dispose()
    finally:
        testing.drop_database(base, name)

    secs = {s: [x["s"] for x in v] for s, v in runs.items()}
    stage_names = list(dict.fromkeys(k for st in stages for k in st))
    out: dict[str, object] = {
        "bench": "import",
        "rows": rows,
        "repeat": args.repeat,
        "seconds": {s: summary(v) for s, v in secs.items()},
        "rows_per_s": {s: round(rows / summary(v)["median"]) for s, v in secs.items()},
        # > 1: ours is faster by that factor (paired per round).
        "speedup_vs_ogr2ogr_no_reproject": paired_ratios(
            secs["ogr2ogr_no_reproject"], secs["iocmap"]
        ),
        # Our time over the floor's (goal <= 2.5).
        "ours_over_floor": paired_ratios(secs["iocmap"], secs["floor"]),
        "goals": {"speedup_vs_ogr2ogr_no_reproject": ">= 1.3", "ours_over_floor": "<= 2.5"},
        "iocmap_stages_s": {
            k: summary([st[k] for st in stages if k in st], 3) for k in stage_names
        },
        "runs": runs,
        "load": {"start": load_start, "end": load1()},
    }
    if "ogr2ogr" in secs:
        out["speedup_vs_ogr2ogr_to_4326"] = paired_ratios(secs["ogr2ogr"], secs["iocmap"])
    if args.geopandas:
        out["speedup_vs_geopandas"] = paired_ratios(secs["geopandas"], secs["iocmap"])
    print(json.dumps(out))


if __name__ == "__main__":
    main()
