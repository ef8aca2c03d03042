"""Reading land parcels as an analyst would: our client (GeoParquet) against OGC API - Features.

Three ways to get the same layer into a GeoDataFrame or a file, against one `iocmap serve`
on one bench database of its own (a unique name from layers.testing, seeded with N parcels and
dropped afterwards unless --keep-db):

- ours: `IocMap(...).features("land_parcels")`: one GeoParquet download;
- geopandas: `geopandas.read_file("OAPIF:…/ogc", layer="land_parcels")`, as a geopandas user
  writes it (pyogrio's own GDAL, which reads the page size the server advertises);
- ogr2ogr: `ogr2ogr -f GPKG out.gpkg OAPIF:…/ogc land_parcels -oo PAGE_SIZE=10000`, Debian's
  GDAL as GIS staff run it (GDAL < 3.8 needs PAGE_SIZE, or it pages 10 at a time).

Every side sends the same bearer token (the parcels are restricted). Sides alternate in rotating
order, each measurement is repeated, medians and ranges are printed with the load average
before and after each one. A fourth side, `ogr2ogr_50k`, is the GDAL paging goal of issue 22:
the first 50,000 parcels through OAPIF with `-oo PAGE_SIZE=10000` (goal: ≤ 5 s). One JSON line.

    .venv/bin/python bench/client/run.py --parcels 200000
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]


def _web_map_bench() -> Any:
    # The database seeding and planner token live in the web map bench; reuse them.
    spec = importlib.util.spec_from_file_location("bench_web_map", ROOT / "bench/web_map/run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bench_database(parcels: int, keep: str | None) -> tuple[str, Any, str]:
    """A database of this bench alone (unique name), migrated and seeded with `parcels`.

    Returns (URL, Settings, name); `keep` names an existing one to reuse (--keep-db).
    """
    from sqlalchemy import text

    from layers import cluster, migrate
    from layers.db import make_engine
    from layers.settings import Settings
    from layers.testing import create_database

    base = Settings()
    name = keep or create_database(base, "iocmap_bench_client")
    url = cluster.database_url(base, name)
    settings = base.model_copy(update={"database_url": url, "demo_parcels": parcels})
    engine = make_engine(settings)
    try:
        migrate.upgrade(engine)
        with engine.connect() as conn:
            have = conn.execute(
                text(
                    "SELECT count(*) FROM feature f JOIN layer l ON l.id = f.layer_id"
                    " WHERE l.slug = 'land_parcels'"
                )
            ).scalar_one()
        if have != parcels:
            from layers.demo.seed import seed_demo

            t0 = time.perf_counter()
            print(f"seeding {name} with {parcels} parcels…", file=sys.stderr, flush=True)
            seed_demo(engine, settings)
            print(f"seeded in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE feature"))
    finally:
        engine.dispose()
    return url, settings, name


def main() -> None:
    """Seed a database of its own, serve, read the parcels three ways; print one JSON line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--parcels", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--keep-db",
        nargs="?",
        const="",
        default=None,
        help="keep the bench database (or reuse the one named) instead of dropping it",
    )
    args = parser.parse_args()
    web = _web_map_bench()
    url, settings, db_name = bench_database(args.parcels, args.keep_db or None)
    secret = secrets.token_urlsafe(32)
    token = web.planner_cookie(settings, secret)
    port = web._free_port()
    env = {
        **os.environ,
        "IOC_DATABASE_URL": url,
        "IOC_SECRET_KEY": secret,
        "IOC_ANALYTICS_SCHEDULER": "false",
        "IOC_INGEST_SCHEDULER": "false",
    }
    iocmap = Path(sys.executable).with_name("iocmap")
    server = subprocess.Popen(
        [str(iocmap), "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    header = f"Authorization: Bearer {token}"
    gdal_env = {**os.environ, "GDAL_HTTP_HEADERS": header}
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        from geo_api.client import IocMap

        def ours() -> int:
            with IocMap(base, token=token, timeout=600) as ioc:
                return len(ioc.features("land_parcels"))

        def geopandas_oapif() -> int:
            import geopandas as gpd
            import pyogrio

            # pyogrio's own GDAL (3.12) takes its configuration through pyogrio, and its OAPIF
            # driver sends a token with GDAL_HTTP_AUTH=BEARER (it drops GDAL_HTTP_HEADERS).
            pyogrio.set_gdal_config_options({"GDAL_HTTP_AUTH": "BEARER", "GDAL_HTTP_BEARER": token})
            try:
                return len(gpd.read_file(f"OAPIF:{base}/ogc", layer="land_parcels"))
            finally:
                pyogrio.set_gdal_config_options({"GDAL_HTTP_AUTH": None, "GDAL_HTTP_BEARER": None})

        def ogr2ogr_oapif() -> int:
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "parcels.gpkg"
                subprocess.run(
                    ["ogr2ogr", "-f", "GPKG", str(out), f"OAPIF:{base}/ogc", "land_parcels"]
                    + ["-oo", "PAGE_SIZE=10000"],
                    check=True,
                    env=gdal_env,
                    capture_output=True,
                )
                import pyogrio

                return int(pyogrio.read_info(out)["features"])

        def ogr2ogr_50k() -> int:
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "parcels.gpkg"
                subprocess.run(
                    ["ogr2ogr", "-f", "GPKG", str(out), f"OAPIF:{base}/ogc", "land_parcels"]
                    + ["-oo", "PAGE_SIZE=10000", "-limit", "50000"],
                    check=True,
                    env=gdal_env,
                    capture_output=True,
                )
                import pyogrio

                return int(pyogrio.read_info(out)["features"])

        sides: dict[str, Callable[[], int]] = {
            "ours": ours,
            "geopandas_oapif": geopandas_oapif,
            "ogr2ogr_oapif": ogr2ogr_oapif,
            "ogr2ogr_50k": ogr2ogr_50k,
        }
        times: dict[str, list[float]] = {name: [] for name in sides}
        rows: dict[str, int] = {}
        loads: list[tuple[float, float]] = []
        order = list(sides)
        ours()  # warm the server and the page cache for every side alike
        for rep in range(args.repeat):
            for name in order[rep % len(order) :] + order[: rep % len(order)]:
                before = os.getloadavg()[0]
                start = time.perf_counter()
                rows[name] = sides[name]()
                times[name].append(time.perf_counter() - start)
                loads.append((before, os.getloadavg()[0]))
        med = {name: statistics.median(t) for name, t in times.items()}
        out: dict[str, Any] = {
            "bench": "client",
            "parcels": args.parcels,
            "rows": rows,
            **{
                f"{name}_s": {
                    "median": round(med[name], 3),
                    "range": [round(min(t), 3), round(max(t), 3)],
                }
                for name, t in times.items()
            },
            "ratio_vs_geopandas_oapif": round(med["geopandas_oapif"] / med["ours"], 2),
            "ratio_vs_ogr2ogr_oapif": round(med["ogr2ogr_oapif"] / med["ours"], 2),
            "goal_ratio_vs_oapif": 10,
            "gdal_version": subprocess.run(
                ["ogrinfo", "--version"], capture_output=True, text=True, check=False
            ).stdout.strip(),
            "pyogrio_gdal": _pyogrio_gdal(),
            "goal_ogr2ogr_50k_s": 5,
            "load_average_1m": {
                "min": round(min(min(p) for p in loads), 2),
                "max": round(max(max(p) for p in loads), 2),
            },
        }
        print(json.dumps(out))
    finally:
        server.terminate()
        server.wait(timeout=30)
        if args.keep_db is None:
            from layers.testing import drop_database

            drop_database(settings, db_name)
        else:
            print(f"kept database {db_name}", file=sys.stderr)


def _pyogrio_gdal() -> str:
    import pyogrio

    return str(pyogrio.__gdal_version_string__)


if __name__ == "__main__":
    main()
