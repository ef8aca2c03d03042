"""Benchmark: raster tiles vs titiler, zonal statistics vs rasterstats and exactextract, and
flood exposure end to end, on the synthetic province DEM (~30 m) in one run.

A throwaway database gets the 130 communes, the synthetic point layers and the demo's 50,000
land parcels (restricted: the flood runs are a signed-in leader's, who sees them); the demo rasters
are generated and imported as COGs. Our API and titiler each run in one uvicorn worker and
are asked the same tiles (z8-14 over the province), interleaved: our cold cache, titiler (no
cache: every request is cold), then our warm cache. Zonal statistics of the 130 communes over
the whole DEM: ours (API, exact coverage fractions), rasterstats (centre-of-pixel) and
exactextract directly on the COG. Flood exposure: a water-level preview (the map's slider),
the full-resolution DEM + level, and the 1-in-100-year depth raster.

    .venv/bin/python bench/rasters/run.py            # 30 m DEM
    .venv/bin/python bench/rasters/run.py --res 60   # quicker

The last line printed is one JSON object with every figure and the ratios.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from layers import cluster, migrate  # noqa: E402
from layers.db import make_engine  # noqa: E402
from layers.settings import Settings  # noqa: E402
from layers.testing import create_database, drop_database  # noqa: E402

ZOOMS = range(8, 15)
RESCALE = "0,2500"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(cmd: list[str], env: dict[str, str], url: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        cmd, env=env, cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"server exited: {' '.join(cmd)}\n{err[-2000:]}")
        try:
            if httpx.get(url, timeout=5).status_code < 500:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.terminate()
    raise RuntimeError(f"server did not come up: {url}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def seed(settings: Settings) -> None:
    """Communes, hospitals, schools, tourism sites and land parcels, then the demo rasters."""
    from ingest.demo_rasters import seed_demo_rasters
    from layers.demo import specs, synthetic
    from layers.demo.boundaries import load_wards
    from layers.demo.seed import _ward_feature
    from layers.features.bulk import FeatureRow, upsert_features
    from layers.features.registry import create_or_update_layer

    engine = make_engine(settings)
    migrate.upgrade(engine)
    wards = list(load_wards())
    with engine.begin() as conn:
        for spec, rows in (
            (specs.ADMIN_COMMUNES, [_ward_feature(w) for w in wards]),
            (specs.HOSPITALS, synthetic.hospitals(wards)),
            (specs.SCHOOLS, synthetic.schools(wards)),
            (specs.TOURISM, synthetic.tourism_sites(wards)),
            # The map's own demo: 50,000 parcels (a leader sees them under the water too).
            (specs.LAND_PARCELS, synthetic.land_parcels(wards, settings.demo_parcels)),
        ):
            lid = create_or_update_layer(conn, spec)
            upsert_features(
                conn, lid, (FeatureRow(r.source_key, r.geometry, r.properties) for r in rows)
            )
    t0 = time.perf_counter()
    seed_demo_rasters(engine, settings, log)
    log(f"demo rasters generated and imported in {time.perf_counter() - t0:.1f} s")
    engine.dispose()


def tile_list(
    bounds: tuple[float, float, float, float], per_zoom: int, rng: random.Random
) -> list[tuple[int, int, int]]:
    """Tiles z8-14 whose centres fall inside the DEM's extent, sampled the same for both."""
    out = []
    for z in ZOOMS:
        n = 2**z

        def tx(lon: float, n: int = n) -> int:
            return int((lon + 180) / 360 * n)

        def ty(lat: float, n: int = n) -> int:
            r = math.radians(lat)
            return int((1 - math.log(math.tan(r) + 1 / math.cos(r)) / math.pi) / 2 * n)

        xs = range(tx(bounds[0]), tx(bounds[2]) + 1)
        ys = range(ty(bounds[3]), ty(bounds[1]) + 1)
        cells = [(z, x, y) for x in xs for y in ys]
        rng.shuffle(cells)
        out += cells[:per_zoom]
    return out


def timed_get(client: httpx.Client, url: str) -> tuple[float, int, int]:
    t0 = time.perf_counter()
    r = client.get(url)
    return (time.perf_counter() - t0) * 1000, r.status_code, len(r.content)


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return round(s[min(len(s) - 1, int(q * len(s)))], 2)


def spread(xs: list[float]) -> list[float]:
    """[min, median, max] of timings, in seconds."""
    return [round(min(xs), 3), round(statistics.median(xs), 3), round(max(xs), 3)]


def leader_token(engine: Any, settings: Settings) -> str:
    """A session token of a leader (who may read every layer, parcels included)."""
    from geo_api.security import issue_token
    from layers.auth import users

    with engine.begin() as conn:
        user = users.create_user(conn, "bench_leader", "bench leader password", "leader")
    return issue_token(settings, user)


def browser_slider(
    base: str, token: str, settings: Settings, levels: list[float]
) -> dict[str, Any] | None:
    """The map's flood slider in Chromium: from the slider's input event to the redrawn extent
    and exposure table (the page marks the level once both are drawn), per level."""
    chromium = Path("/usr/bin/chromium")
    if not chromium.exists() or not (ROOT / "web_map" / "dist" / "index.html").exists():
        log("no Chromium or no web_map/dist: slider redraw not measured")
        return None
    from playwright.sync_api import sync_playwright

    times: list[float] = []
    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=str(chromium), args=["--no-sandbox", "--disable-gpu"]
        )
        ctx = b.new_context(viewport={"width": 1600, "height": 900})
        ctx.add_cookies([{"name": settings.session_cookie_name, "value": token, "url": base}])
        page = ctx.new_page()
        page.goto(f"{base}/?lang=en")

        def wait_until(expr: str) -> None:
            # Polled from outside: the page's CSP forbids the eval that wait_for_function uses.
            deadline = time.monotonic() + 120
            while not page.evaluate(expr):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"timed out waiting for {expr}")
                page.wait_for_timeout(100)

        wait_until("document.body.dataset.ready === '1'")
        page.locator("#flood-toggle").click()
        wait_until("!!document.querySelector('#flood-table')")
        for level in [*levels[1:], levels[0]]:
            ms = page.evaluate(
                """(level) => new Promise((done) => {
                     const s = document.getElementById('flood-level');
                     const t0 = performance.now();
                     s.value = String(level);
                     s.dispatchEvent(new Event('input', {bubbles: true}));
                     const want = String(Number(s.value));
                     const tick = () => document.body.dataset.floodLevel === want
                       ? requestAnimationFrame(() => done(performance.now() - t0))
                       : requestAnimationFrame(tick);
                     tick();
                   })""",
                level,
            )
            times.append(ms / 1000)
        b.close()
    return {"redraw": spread(times), "levels": len(times)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--res", type=float, default=30.0, help="DEM resolution (m)")
    ap.add_argument("--per-zoom", type=int, default=30, help="tiles per zoom level (z8-14)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of the zonal/flood timings")
    ap.add_argument(
        "--no-browser",
        dest="browser",
        action="store_false",
        help="skip the slider redraw in Chromium (needs /usr/bin/chromium and web_map/dist)",
    )
    args = ap.parse_args()

    base = Settings()
    cluster.ensure_running(base)
    db = create_database(base, "iocmap_bench_r")
    url = cluster.database_url(base, db)
    secret = uuid.uuid4().hex * 2
    state = Path(f"/tmp/{db}-state")
    settings = base.model_copy(
        update={
            "database_url": url,
            "secret_key": SecretStr(secret),
            "state_dir": state,
            "raster_demo_res_m": args.res,
        }
    )
    procs: list[subprocess.Popen[bytes]] = []
    try:
        seed(settings)
        engine = make_engine(settings)
        from layers.rasters.store import get_raster

        with engine.connect() as conn:
            dem = get_raster(conn, "dem_nghe_an")
        cog = dem.file(settings)
        log(
            f"DEM {dem.meta.width}x{dem.meta.height} px ({dem.meta.resolution_m:.1f} m), {cog.stat().st_size / 1e6:.0f} MB"
        )

        env = {k: v for k, v in os.environ.items() if not k.startswith("IOC_")}
        venv_bin = Path(sys.executable).parent
        ours_port, ti_port = free_port(), free_port()
        ours_env = {
            **env,
            "IOC_DATABASE_URL": url,
            "IOC_SECRET_KEY": secret,
            "IOC_STATE_DIR": str(state),
            "IOC_ANALYTICS_SCHEDULER": "false",
            "IOC_REPORT_OVERDUE_INTERVAL_S": "0",
            "IOC_INGEST_SCHEDULER": "false",
            "IOC_WEB_DIST_DIR": str(ROOT / "web_map" / "dist"),
            "PYTHONPATH": str(ROOT),
        }
        common = [
            "--host",
            "127.0.0.1",
            "--workers",
            "1",
            "--log-level",
            "warning",
            "--no-access-log",
        ]
        ours = f"http://127.0.0.1:{ours_port}"
        ti = f"http://127.0.0.1:{ti_port}"
        procs.append(
            start(
                [
                    str(venv_bin / "uvicorn"),
                    "geo_api.main:create_app",
                    "--factory",
                    "--port",
                    str(ours_port),
                    *common,
                ],
                ours_env,
                f"{ours}/health",
            )
        )
        procs.append(
            start(
                [
                    str(venv_bin / "uvicorn"),
                    "bench.rasters.titiler_app:app",
                    "--port",
                    str(ti_port),
                    *common,
                ],
                {**env, "PYTHONPATH": str(ROOT), "GDAL_CACHEMAX": "64"},
                f"{ti}/docs",
            )
        )
        rng = random.Random(20)
        tiles = tile_list(dem.meta.bounds, args.per_zoom, rng)
        log(f"{len(tiles)} tiles z8-14")
        client = httpx.Client(timeout=60)
        # One warm-up request each (imports, first open of the file), not measured.
        z, x, y = tiles[0]
        client.get(f"{ours}/tiles/dem_nghe_an/{z}/{x}/{y}.png?colormap=terrain&rescale={RESCALE}")
        client.get(
            f"{ti}/tiles/WebMercatorQuad/{z}/{x}/{y}.png?url={cog}&colormap_name=terrain&rescale={RESCALE}&tilesize=256"
        )
        ours_cold: list[float] = []
        titiler: list[float] = []
        sizes = {"ours": 0, "titiler": 0}
        for z, x, y in tiles[1:]:
            ms, st, n = timed_get(
                client,
                f"{ours}/tiles/dem_nghe_an/{z}/{x}/{y}.png?colormap=terrain&rescale={RESCALE}",
            )
            assert st in (200, 204), st
            ours_cold.append(ms)
            sizes["ours"] += n
            ms, st, n = timed_get(
                client,
                f"{ti}/tiles/WebMercatorQuad/{z}/{x}/{y}.png?url={cog}&colormap_name=terrain&rescale={RESCALE}&tilesize=256",
            )
            assert st in (200, 204, 404), st
            titiler.append(ms)
            sizes["titiler"] += n
        ours_warm = [
            timed_get(
                client,
                f"{ours}/tiles/dem_nghe_an/{z}/{x}/{y}.png?colormap=terrain&rescale={RESCALE}",
            )[0]
            for z, x, y in tiles[1:]
        ]

        # Zonal statistics: 130 communes over the whole DEM.
        import numpy as np
        import rasterstats
        import shapely
        from exactextract import exact_extract

        from layers.demo.boundaries import load_wards
        from layers.rasters.read import to_mercator

        geoms = [to_mercator(w.geometry) for w in load_wards()]
        feats = [
            {"type": "Feature", "properties": {"i": i}, "geometry": shapely.geometry.mapping(g)}
            for i, g in enumerate(geoms)
        ]
        body = {
            "raster": "dem_nghe_an",
            "units": "admin_communes",
            "stats": ["min", "max", "mean", "count", {"area_km2_above": 500}],
        }
        t_ours: list[float] = []
        t_cold: list[float] = []
        t_rs: list[float] = []
        t_ee: list[float] = []
        ours_rows = rs_rows = ee_rows = None
        from analytics import raster_jobs
        from analytics.zonal import parse_stats
        from layers.rasters.cache import RasterCache

        req = parse_stats(list(body["stats"]))
        for _ in range(args.rounds):
            # Ours through the API: the first call is cold (reads the COG, builds the coverage
            # index), the next ones warm (both kept in the server's raster cache).
            t0 = time.perf_counter()
            r = client.post(f"{ours}/api/query/zonal", json=body)
            t_ours.append(time.perf_counter() - t0)
            assert r.status_code == 200, r.text
            ours_rows = [f["properties"] for f in r.json()["features"]]
            # Ours cold every round: the same job in this process with an empty cache.
            t0 = time.perf_counter()
            with engine.connect() as conn:
                raster_jobs.zonal_query(
                    conn, settings, "dem_nghe_an", "admin_communes", req, 1, RasterCache(2**31)
                )
            t_cold.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            rs_rows = rasterstats.zonal_stats(
                geoms, str(cog), stats=["min", "max", "mean", "count"]
            )
            t_rs.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            ee_rows = exact_extract(
                str(cog), feats, ["min", "max", "mean", "count"], output="geojson"
            )
            t_ee.append(time.perf_counter() - t0)
        assert ours_rows and rs_rows and ee_rows
        ee_mean = np.array([f["properties"]["mean"] for f in ee_rows])
        rs_mean = np.array([r["mean"] if r["mean"] is not None else np.nan for r in rs_rows])
        codes = [w.code for w in load_wards()]
        by_code = {r["code"]: r for r in ours_rows}
        our_mean = np.array([by_code[c]["mean"] for c in codes], dtype=float)
        # Flood exposure end to end (API): the slider's preview, the full DEM + level, the 1% flood.
        from layers.demo.rasters import CA_RIVER_LONLAT

        seed_line = {"type": "LineString", "coordinates": [list(p) for p in CA_RIVER_LONLAT]}
        token = leader_token(engine, settings)
        leader = {"Authorization": f"Bearer {token}"}
        flood: dict[str, list[float]] = {"preview": [], "full": [], "depth": []}
        people = {}
        levels = [6.0, 8.0, 10.0, 12.0, 14.0, 16.0][: max(3, 2 * args.rounds)]
        for i, level in enumerate(levels):
            for kind, payload in (
                (
                    "preview",
                    {
                        "dem": "dem_nghe_an",
                        "level_m": level,
                        "seed": seed_line,
                        "preview": True,
                        "write_layer": None,
                    },
                ),
                (
                    "full",
                    {
                        "dem": "dem_nghe_an",
                        "level_m": level,
                        "seed": seed_line,
                        "write_layer": None,
                    },
                ),
                ("depth", {"depth": "flood_depth_ca_100y", "write_layer": None}),
            ):
                if kind != "preview" and i >= args.rounds:
                    continue
                t0 = time.perf_counter()
                r = client.post(f"{ours}/api/query/flood-exposure", json=payload, headers=leader)
                flood[kind].append(time.perf_counter() - t0)
                assert r.status_code == 200, r.text
                people[kind] = r.json()["totals"]["people_exposed"]
        slider = None
        if args.browser:
            try:
                slider = browser_slider(ours, token, settings, levels)
            except Exception as exc:  # the other figures still count
                log(f"slider in Chromium failed: {exc}")
        load = os.getloadavg()
        med = statistics.median
        figures: dict[str, Any] = {
            "bench": "rasters",
            "dem": {
                "width": dem.meta.width,
                "height": dem.meta.height,
                "resolution_m": round(dem.meta.resolution_m, 1),
                "cog_mb": round(cog.stat().st_size / 1e6, 1),
            },
            "tiles": {
                "count": len(ours_cold),
                "ours_cold_ms_p50": pct(ours_cold, 0.5),
                "ours_cold_ms_p95": pct(ours_cold, 0.95),
                "titiler_ms_p50": pct(titiler, 0.5),
                "titiler_ms_p95": pct(titiler, 0.95),
                "ours_warm_ms_p50": pct(ours_warm, 0.5),
                "cold_vs_titiler": round(sum(titiler) / sum(ours_cold), 2),
                "warm_vs_our_cold": round(sum(ours_cold) / sum(ours_warm), 1),
                "bytes": sizes,
            },
            # [min, median, max] over the rounds
            "zonal_130_communes_s": {
                "ours_api_first_call_cold": round(t_ours[0], 3),
                "ours_api_warm": spread(t_ours[1:]),
                "ours_cold_in_process": spread(t_cold),
                "rasterstats": spread(t_rs),
                "exactextract": spread(t_ee),
            },
            "zonal_ratios": {
                "rasterstats_vs_ours_warm": round(med(t_rs) / med(t_ours[1:]), 1),
                "rasterstats_vs_ours_cold": round(med(t_rs) / med(t_cold), 1),
                "exactextract_vs_ours_warm": round(med(t_ee) / med(t_ours[1:]), 2),
                "exactextract_vs_ours_cold": round(med(t_ee) / med(t_cold), 2),
            },
            "zonal_mean_max_abs_diff_m": {
                "vs_exactextract": round(float(np.nanmax(np.abs(our_mean - ee_mean))), 3),
                "vs_rasterstats": round(float(np.nanmax(np.abs(our_mean - rs_mean))), 3),
            },
            "flood_exposure_s": {
                "preview_first_call_cold": round(flood["preview"][0], 3),
                "preview_warm": spread(flood["preview"][1:]),
                "full": spread(flood["full"]),
                "depth": spread(flood["depth"]),
            },
            "slider_redraw_in_browser_s": slider,
            "people_exposed": people,
            "loadavg": [round(v, 2) for v in load],
        }
        slider_s = slider["redraw"][1] if slider else med(flood["preview"][1:])
        goals = (
            figures["tiles"]["cold_vs_titiler"] >= 1.0,
            figures["tiles"]["warm_vs_our_cold"] >= 10,
            med(t_ours[1:]) <= 2.0,
            med(t_cold) <= 2.0,
            figures["zonal_ratios"]["rasterstats_vs_ours_warm"] >= 5,
            figures["zonal_ratios"]["rasterstats_vs_ours_cold"] >= 5,
            slider_s < 1.0,
        )
        figures["goals_met"] = dict(
            zip(
                [
                    "cold_ge_titiler",
                    "warm_ge_10x_cold",
                    "zonal_warm_le_2s",
                    "zonal_cold_le_2s",
                    "zonal_warm_ge_5x_rasterstats",
                    "zonal_cold_ge_5x_rasterstats",
                    "slider_lt_1s",
                ],
                goals,
                strict=True,
            )
        )
        print(json.dumps(figures))
    finally:
        for p in procs:
            stop(p)
        drop_database(base, db)
        import shutil

        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
