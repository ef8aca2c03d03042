"""Reading land parcels as an analyst would: our client (GeoParquet) against OGC API - Features.

Three ways to get the same layer into a GeoDataFrame or a file, against one `iocmap serve`
on the same bench database (seeded once with N parcels, reused by name):

- ours: `IocMap(...).features("land_parcels")`: one GeoParquet download;
- geopandas: `geopandas.read_file("OAPIF:…/ogc", layer="land_parcels")`, as a geopandas user
  writes it (pyogrio's own GDAL, which reads the page size the server advertises);
- ogr2ogr: `ogr2ogr -f GPKG out.gpkg OAPIF:…/ogc land_parcels -oo PAGE_SIZE=10000`, Debian's
  GDAL as GIS staff run it (GDAL < 3.8 needs PAGE_SIZE, or it pages 10 at a time).

Every side sends the same bearer token (the parcels are restricted). Sides alternate in rotating
order, each measurement is repeated, medians and ranges are printed with the load average
before and after each one. One JSON line.

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


def main() -> None:
    """Seed if needed, serve, read the parcels three ways; print one JSON line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--parcels", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    web = _web_map_bench()
    url, settings = web.bench_database(args.parcels)
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

            os.environ["GDAL_HTTP_HEADERS"] = header
            try:
                return len(gpd.read_file(f"OAPIF:{base}/ogc", layer="land_parcels"))
            finally:
                os.environ.pop("GDAL_HTTP_HEADERS", None)

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

        sides: dict[str, Callable[[], int]] = {
            "ours": ours,
            "geopandas_oapif": geopandas_oapif,
            "ogr2ogr_oapif": ogr2ogr_oapif,
        }
        times: dict[str, list[float]] = {name: [] for name in sides}
        rows: dict[str, int] = {}
        loads: list[tuple[float, float]] = []
        order = list(sides)
        ours()  # warm the server and the page cache for every side alike
        for rep in range(args.repeat):
            for name in order[rep % 3 :] + order[: rep % 3]:
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
            "load_average_1m": {
                "min": round(min(min(p) for p in loads), 2),
                "max": round(max(max(p) for p in loads), 2),
            },
        }
        print(json.dumps(out))
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
