"""Benchmark: load synthetic cadastral parcels (GeoPackage, EPSG:9208) into PostGIS three ways.

Our importer (pyogrio Arrow -> validate -> binary COPY -> partition swap) vs
`ogr2ogr -f PostgreSQL` (PG_USE_COPY=YES) vs `geopandas.to_postgis`, in one run, into a
throwaway database. The last line is one JSON object with rows/s and ratios.

    .venv/bin/python bench/import/run.py            # 1,000,000 parcels
    .venv/bin/python bench/import/run.py --rows 100000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

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
    """Run the three loads and print the JSON summary."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100,000 rows")
    parser.add_argument("--skip-geopandas", action="store_true")
    args = parser.parse_args()
    rows = 100_000 if args.quick else args.rows

    import psycopg
    from psycopg import sql
    from sqlalchemy import create_engine, text

    from ingest.pipeline import ImportOptions, run_import
    from layers import cluster, migrate
    from layers.db import make_engine
    from layers.settings import Settings

    t = time.perf_counter()
    path = make_parcels(rows)
    print(f"data: {path} ({time.perf_counter() - t:.1f}s)", file=sys.stderr)

    base = Settings()
    cluster.ensure_running(base)
    name = f"iocmap_bench_{uuid.uuid4().hex[:8]}"
    admin = cluster.libpq_url(cluster.database_url(base, "postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = cluster.database_url(base, name)
    settings = base.model_copy(update={"database_url": url})
    results: dict[str, float] = {}
    stages: dict[str, float] = {}
    try:
        engine = make_engine(settings)
        migrate.upgrade(engine)

        t = time.perf_counter()
        report = run_import(
            engine, settings, ImportOptions(path=path, layer="bench_parcels", mode="replace")
        )
        results["iocmap"] = time.perf_counter() - t
        stages = report.timings
        assert report.rows_valid == rows, report.rejects_by_reason
        print(
            f"iocmap: {results['iocmap']:.1f}s crs={report.crs['srid']} strategy={report.strategy} stages={report.timings}",
            file=sys.stderr,
        )
        engine.dispose()

        pg = cluster.libpq_url(url)
        env = {**os.environ, "PG_USE_COPY": "YES"}
        for label, extra in (("ogr2ogr", ["-t_srs", "EPSG:4326"]), ("ogr2ogr_no_reproject", [])):
            t = time.perf_counter()
            subprocess.run(
                [
                    "ogr2ogr", "-f", "PostgreSQL", f"PG:{pg}", str(path), "thua_dat",
                    "-nln", f"bench_{label}", "-lco", "GEOMETRY_NAME=geom",
                    "-lco", "SPATIAL_INDEX=GIST", "-gt", "65536", *extra,
                ],
                check=True,
                env=env,
            )  # fmt: skip
            results[label] = time.perf_counter() - t
            print(f"{label}: {results[label]:.1f}s", file=sys.stderr)

        if not args.skip_geopandas:
            import geopandas as gpd

            eng = create_engine(url)
            t = time.perf_counter()
            gdf = gpd.read_file(path, engine="pyogrio", use_arrow=True).to_crs(4326)
            gdf.to_postgis("bench_geopandas", eng, if_exists="replace", chunksize=50_000)
            results["geopandas"] = time.perf_counter() - t
            print(f"geopandas: {results['geopandas']:.1f}s", file=sys.stderr)
            with eng.connect() as conn:
                n = conn.execute(text("SELECT count(*) FROM bench_geopandas")).scalar_one()
            assert n == rows
            eng.dispose()
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    rps = {k: round(rows / v) for k, v in results.items()}
    out: dict[str, object] = {
        "bench": "import",
        "rows": rows,
        "seconds": {k: round(v, 2) for k, v in results.items()},
        "rows_per_s": rps,
        "ratio_vs_ogr2ogr": round(results["ogr2ogr"] / results["iocmap"], 2),
        "ratio_vs_ogr2ogr_no_reproject": round(
            results["ogr2ogr_no_reproject"] / results["iocmap"], 2
        ),
        "iocmap_stages_s": stages,
        "goal_vs_ogr2ogr": 1.3,
        "goal_vs_geopandas": 6.0,
    }
    if "geopandas" in results:
        out["ratio_vs_geopandas"] = round(results["geopandas"] / results["iocmap"], 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
