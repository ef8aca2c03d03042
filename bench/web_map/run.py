"""First paint and smoothness of the web map in Debian's Chromium against a real server.

Seeds (once; reused by name) a bench database with the demo and N land parcels
(`--parcels`, default 50,000), serves it with `iocmap serve`, and measures in headless Chromium
(software WebGL: this machine has no GPU):

- from navigation start: first contentful paint, the first map paint (province and ward
  boundaries drawn), and every layer settled; the bundle sizes;
- signed out (a new visitor): the first map paint and the app ready (`data-ready`), whose
  goals are 1.5 s and 2.5 s;
- pan/zoom smoothness over Vinh's land parcels, drawn through tiles, signed in as a planner
  (the parcels are a sensitive layer): frame times from requestAnimationFrame (fps is 1000 /
  the mean frame time), frames over 50 ms, the main thread's JavaScript per frame (maplibre's
  render, deck's overlay drawn within it), long tasks, and the tile requests made during the
  pan/zoom with their latency. Each renderer (`--renderers`, see RENDERERS: maplibre draws the
  tiled sector layers, parcels and points, with or without the reduced resolution while
  moving; or deck.gl MVTLayers, the previous way) is measured in alternation in the same run,
  so all see the same machine load; the load average is recorded with every figure.

The anchor is the browser's own first contentful paint of the page shell.

    .venv/bin/python bench/web_map/run.py                       # 50,000 parcels
    .venv/bin/python bench/web_map/run.py --parcels 1000000     # seeds 1M once (slow), reuses it
    .venv/bin/python bench/web_map/run.py --seed-only --parcels 1000000

Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
VIEWPORT = {"width": 1440, "height": 810}
# The basemap (province + wards) is drawn by maplibre; the page records when its first frame
# with both boundary sources loaded was rendered (performance.now(), from navigation start).
WARDS_DRAWN = "!!(window.__iocmap && window.__iocmap.basemapAt)"
VINH = [105.68, 18.68]
# Pans and zooms over Vinh's parcels, timing every frame with requestAnimationFrame, and the
# main thread's share of it: maplibre's render (which draws deck's overlay from its 'render'
# event) and the long tasks (> 50 ms; on a software renderer mostly the frame's commit waiting
# for the GPU process to rasterise and read the canvases back).
PAN_ZOOM = """async (vinh) => {
  const map = window.__iocmap.app.map;
  const deltas = [], renders = [], longTasks = [];
  const render = map._render;
  map._render = function (t) { const a = performance.now(); const r = render.call(this, t); renders.push(performance.now() - a); return r; };
  let observer = null;
  try {
    observer = new PerformanceObserver((l) => { for (const e of l.getEntries()) longTasks.push(e.duration); });
    observer.observe({ type: 'longtask' });
  } catch (e) { observer = null; }
  const ratios = {};
  const app = window.__iocmap.app;
  let last = performance.now(), run = true, ratio = null, changes = 0;
  const tick = (now) => {
    deltas.push(now - last); last = now;
    const r = app.motionRatio ? String(app.motionRatio()) : '1';
    ratios[r] = (ratios[r] || 0) + 1;
    if (ratio !== null && r !== ratio) changes += 1;
    ratio = r;
    if (run) requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
  const ease = (o) => new Promise((r) => { map.once('moveend', r); map.easeTo({ ...o, duration: 1500 }); });
  const d = 0.02;
  await ease({ center: [vinh[0] + d, vinh[1]], zoom: 14 });
  await ease({ center: [vinh[0] + d, vinh[1] + d], zoom: 14 });
  await ease({ center: [vinh[0], vinh[1]], zoom: 15.5 });
  await ease({ center: [vinh[0] - d, vinh[1]], zoom: 13.5 });
  await ease({ center: [vinh[0], vinh[1]], zoom: 14.5 });
  run = false;
  map._render = render;
  if (observer) observer.disconnect();
  return { frames: deltas.slice(1), renders, longTasks, ratios, changes };
}"""
BENCH_USER = "bench_web_planner"
# The ways of drawing the parcels compared, as page parameters: maplibre with a reduced pixel
# ratio while moving (what ships: it turns on by itself on a software renderer; dense polygon
# layers from PNG overview tiles below z15; the point layers as maplibre circles), the same with
# vector tiles only, maplibre at full resolution, and deck.gl MVTLayers for every tiled layer
# at full resolution (the previous way).
RENDERERS = {
    # the pixel ratio while moving chosen by the frame times (0.5, 0.42 or 0.35), as shipped
    "native-lowres": "",
    # the same at a fixed half ratio while moving (the previous setting)
    "native-lowres-fixed": "&lowres=0.5",
    # the same without the PNG overview tiles below z15: parcels as vector triangles throughout
    "native-lowres-vector": "&raster=0",
    "native": "&lowres=0",
    "deck": "&renderer=deck&lowres=0",
}


def log(msg: str) -> None:
    """Progress on stderr (stdout ends with the JSON line)."""
    print(msg, file=sys.stderr, flush=True)


def load_avg() -> float:
    """The 1-minute load average of this machine."""
    return round(os.getloadavg()[0], 2)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bench_database(parcels: int) -> tuple[str, Any]:
    """The bench database with `parcels` land parcels: created, migrated and seeded if needed.

    Named by the count, so later runs reuse it. Returns (SQLAlchemy URL, Settings).
    """
    import psycopg
    from psycopg import sql
    from sqlalchemy import text

    from layers import cluster, migrate
    from layers.db import make_engine
    from layers.settings import Settings

    base = Settings()
    name = f"iocmap_webmap_{parcels}"
    admin = cluster.libpq_url(cluster.database_url(base, "postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            log(f"created database {name}")
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
            log(f"seeding the demo with {parcels} parcels (had {have})…")
            seed_demo(engine, settings, progress=log)
            log(f"seeded {parcels} parcels in {time.perf_counter() - t0:.0f}s")
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE feature"))
    finally:
        engine.dispose()
    return url, settings


def planner_cookie(settings: Any, secret: str) -> str:
    """A session token of a planner (who may read the sensitive parcel layer)."""
    from pydantic import SecretStr

    from geo_api.security import issue_token
    from layers.auth import users
    from layers.db import make_engine
    from layers.errors import NotFoundError

    engine = make_engine(settings)
    try:
        with engine.begin() as conn:
            try:
                user = users.get_user(conn, BENCH_USER)
            except NotFoundError:
                user = users.create_user(conn, BENCH_USER, secrets.token_urlsafe(16), "planner")
    finally:
        engine.dispose()
    return issue_token(settings.model_copy(update={"secret_key": SecretStr(secret)}), user)


def _poll(page: Any, expression: str, timeout_s: float) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout_s:
        if page.evaluate(expression):
            return time.perf_counter() - start
        page.wait_for_timeout(20)
    raise TimeoutError(expression)


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return round(s[min(len(s) - 1, int(q * len(s)))], 1) if s else 0.0


def _context(browser: Any, base: str, cookie: tuple[str, str]) -> Any:
    context = browser.new_context(viewport=VIEWPORT)
    context.add_cookies([{"name": cookie[0], "value": cookie[1], "url": base}])
    return context


def pan_zoom(browser: Any, base: str, cookie: tuple[str, str], renderer: str) -> dict[str, Any]:
    """Frame times and tile requests while panning and zooming over Vinh's parcels."""
    context = _context(browser, base, cookie)
    page = context.new_page()
    tiles: list[dict[str, Any]] = []
    recording = [False]

    def done(req: Any) -> None:
        if recording[0] and "/tiles/" in req.url:
            timing = req.timing
            status = None
            try:
                resp = req.response()
                status = resp.status if resp else None
            except Exception:  # a request cut short by the page has no response
                status = None
            tiles.append({"url": req.url, "ms": timing.get("responseEnd", -1), "status": status})

    page.on("requestfinished", done)
    page.goto(f"{base}/?lang=vi{RENDERERS[renderer]}")
    _poll(page, "document.body.dataset.ready === '1'", 120)
    page.evaluate("c => window.__iocmap.jumpTo(c, 14)", VINH)
    settled = page.evaluate("window.__iocmap.settled()")
    drawn = page.evaluate(
        "(() => { const r = window.__iocmap.parcelsRenderer; return r ? r() : null; })()"
    )
    low_res = page.evaluate("!!window.__iocmap.app.lowResMotion")
    # the schools (a point layer over tiles): maplibre circles, or deck's MVTLayer
    points = page.evaluate(
        "(() => { const m = window.__iocmap.app.map;"
        " return m.getLayer('native-schools-circle') ? 'maplibre' : 'deck'; })()"
    )
    # deck's canvas is hidden while it has nothing to draw
    deck_canvas = page.evaluate(
        "(() => { const d = window.__iocmap.app.overlay._deck;"
        " return !!d.getCanvas() && d.getCanvas().style.visibility !== 'hidden'; })()"
    )
    load_before = load_avg()
    recording[0] = True
    timed: dict[str, list[float]] = page.evaluate(PAN_ZOOM, VINH)
    frames = timed["frames"]
    renders = timed["renders"]
    page.wait_for_timeout(300)
    recording[0] = False
    load_after = load_avg()
    context.close()
    parcel_tiles = [t for t in tiles if "/tiles/land_parcels/" in t["url"]]
    png_lat = [t["ms"] for t in parcel_tiles if ".png" in t["url"] and t["ms"] >= 0]
    lat = [t["ms"] for t in tiles if t["ms"] >= 0]
    return {
        "renderer": renderer,
        "settled": settled,
        "parcels_drawn_by": drawn,
        "low_res_while_moving": low_res,
        "points_drawn_by": points,
        "deck_canvas_shown": deck_canvas,
        "frames": len(frames),
        "fps": round(1000 / statistics.mean(frames), 1) if frames else 0.0,
        "frame_ms_median": _pct(frames, 0.5),
        "frame_ms_p95": _pct(frames, 0.95),
        "frame_ms_mean": round(statistics.mean(frames), 1) if frames else 0.0,
        "frames_gt_50ms": sum(1 for f in frames if f > 50),
        # main-thread JavaScript of a frame: maplibre's render, deck's overlay drawn within it
        "render_js_ms_median": _pct(renders, 0.5),
        "render_js_ms_p95": _pct(renders, 0.95),
        "long_tasks": len(timed["longTasks"]),
        # frames drawn at each pixel ratio (of the device's): 1 at rest, lower while moving
        "frames_by_ratio": timed["ratios"],
        # canvas resizes: each change of ratio (movement start and end included)
        "ratio_changes": timed["changes"],
        "tile_requests": len(tiles),
        "parcel_tile_requests": len(parcel_tiles),
        "parcel_png_requests": sum(1 for t in parcel_tiles if ".png" in t["url"]),
        "parcel_png_ms_p95": _pct(png_lat, 0.95) if png_lat else None,
        "tile_non_200": sum(1 for t in tiles if t["status"] not in (200, 204, None)),
        "tile_ms_median": _pct(lat, 0.5),
        "tile_ms_p95": _pct(lat, 0.95),
        "load_before": load_before,
        "load_after": load_after,
    }


# PNG overview tiles timed on their own, cold then warm: Vinh's parcels at the zooms drawn
# from them (min_zoom 12 to 14), a 3x3 block of tiles around the city centre at each.
PNG_ZOOMS = (12, 13, 14)


def png_tiles(base: str, cookie: tuple[str, str]) -> dict[str, Any]:
    """Server time and bytes of the parcels' PNG tiles over Vinh: cold (rendered), then warm."""
    import math

    out: dict[str, Any] = {}
    with httpx.Client(base_url=base, cookies={cookie[0]: cookie[1]}, timeout=120) as client:
        for z in PNG_ZOOMS:
            n = 1 << z
            cx = int((VINH[0] + 180) / 360 * n)
            cy = int((1 - math.asinh(math.tan(math.radians(VINH[1]))) / math.pi) / 2 * n)
            cold, warm, sizes = [], [], []
            for x in (cx - 1, cx, cx + 1):
                for y in (cy - 1, cy, cy + 1):
                    for times in (cold, warm):
                        t0 = time.perf_counter()
                        r = client.get(f"/tiles/land_parcels/{z}/{x}/{y}.png")
                        times.append((time.perf_counter() - t0) * 1000)
                    if r.status_code == 200:
                        sizes.append(len(r.content))
            out[f"z{z}"] = {
                "cold_ms_median": _pct(cold, 0.5),
                "cold_ms_max": round(max(cold), 1),
                "warm_ms_median": _pct(warm, 0.5),
                "bytes_median": int(statistics.median(sizes)) if sizes else 0,
                "tiles": len(sizes),
            }
    return out


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median of each figure over the runs of one renderer."""
    keys = [
        "fps",
        "frame_ms_median",
        "frame_ms_p95",
        "frame_ms_mean",
        "frames_gt_50ms",
        "render_js_ms_median",
        "long_tasks",
        "tile_requests",
        "parcel_png_requests",
        "tile_ms_p95",
        "load_before",
    ]
    out = {k: round(statistics.median(r[k] for r in runs), 2) for k in keys}
    out["runs"] = len(runs)
    return out


def main() -> None:
    """Seed if needed, serve, load the map, pan and zoom; print one JSON object."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--parcels", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3, help="page loads timed for first paint")
    parser.add_argument("--pan-runs", type=int, default=2, help="pan/zoom runs per renderer")
    parser.add_argument("--renderers", default=",".join(RENDERERS))
    parser.add_argument("--seed-only", action="store_true")
    args = parser.parse_args()
    url, settings = bench_database(args.parcels)
    if args.seed_only:
        print(json.dumps({"bench": "web_map", "parcels": args.parcels, "seeded": True}))
        return
    from playwright.sync_api import sync_playwright

    secret = secrets.token_urlsafe(32)
    cookie = (settings.session_cookie_name, planner_cookie(settings, secret))
    port = _free_port()
    iocmap = Path(sys.executable).with_name("iocmap")
    env = {
        **os.environ,
        "IOC_DATABASE_URL": url,
        "IOC_SECRET_KEY": secret,
        # the bench measures the map, not the scheduled jobs competing for the two cores
        "IOC_ANALYTICS_SCHEDULER": "false",
        "IOC_INGEST_SCHEDULER": "false",
    }
    server = subprocess.Popen(
        [str(iocmap), "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    renderers = [r for r in args.renderers.split(",") if r]
    pans: dict[str, list[dict[str, Any]]] = {r: [] for r in renderers}
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        png = png_tiles(base, cookie)
        log(json.dumps({"png_tiles": png}))
        fcp, wards, wards_page, settled = [], [], [], []
        out_paint, out_ready, out_paint_page = [], [], []
        load_start = load_avg()
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            for _ in range(args.runs):
                context = _context(browser, base, cookie)
                page = context.new_page()
                t0 = time.perf_counter()
                page.goto(f"{base}/?lang=vi", wait_until="commit")
                _poll(page, WARDS_DRAWN, 60)
                wards.append(time.perf_counter() - t0)
                wards_page.append(page.evaluate("window.__iocmap.basemapAt") / 1000)
                page.evaluate("window.__iocmap.settled()")
                settled.append(time.perf_counter() - t0)
                paint = page.evaluate(
                    "performance.getEntriesByName('first-contentful-paint')"
                    ".map(e => e.startTime)[0] || 0"
                )
                fcp.append(paint / 1000)
                context.close()
                # signed out (issue 18's goals): first map paint and the app ready, from navigation
                context = browser.new_context(viewport=VIEWPORT)
                page = context.new_page()
                t0 = time.perf_counter()
                page.goto(f"{base}/?lang=vi", wait_until="commit")
                _poll(page, WARDS_DRAWN, 60)
                out_paint.append(time.perf_counter() - t0)
                out_paint_page.append(page.evaluate("window.__iocmap.basemapAt") / 1000)
                _poll(page, "document.body.dataset.ready === '1'", 120)
                out_ready.append(time.perf_counter() - t0)
                context.close()
            # alternate the renderers, so both see the same machine load
            for _ in range(args.pan_runs):
                for r in renderers:
                    res = pan_zoom(browser, base, cookie, r)
                    log(json.dumps(res))
                    pans[r].append(res)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)
    assets = ROOT / "web_map" / "dist" / "assets"
    js = sum(p.stat().st_size for p in assets.glob("*.js"))
    css = sum(p.stat().st_size for p in assets.glob("*.css"))
    entry = sum(p.stat().st_size for p in assets.glob("app-*.js"))
    workers = sum(p.stat().st_size for p in assets.glob("*worker-*.js"))
    summary = {r: _summary(v) for r, v in pans.items() if v}
    result: dict[str, Any] = {
        "bench": "web_map",
        "parcels": args.parcels,
        "cores": os.cpu_count(),
        "runs": args.runs,
        "first_contentful_paint_s": round(statistics.median(fcp), 3),
        "wards_drawn_s": round(statistics.median(wards), 3),
        "wards_drawn_in_page_s": round(statistics.median(wards_page), 3),
        "all_layers_settled_s": round(statistics.median(settled), 3),
        "wards_vs_fcp": round(statistics.median(wards) / max(statistics.median(fcp), 1e-3), 2),
        "signed_out_first_map_paint_s": round(statistics.median(out_paint), 3),
        "signed_out_first_map_paint_in_page_s": round(statistics.median(out_paint_page), 3),
        "signed_out_app_ready_s": round(statistics.median(out_ready), 3),
        "goal_signed_out_first_map_paint_s": 1.5,
        "goal_signed_out_app_ready_s": 2.5,
        "load_avg_start": load_start,
        "js_bytes": js,
        "js_entry_bytes": entry,
        "js_worker_bytes": workers,
        "css_bytes": css,
        "pan_zoom": summary,
        "parcel_png_tiles": png,
        "goal_first_paint_s": 2.0,
        "load_avg_end": load_avg(),
    }
    for name in ("native-lowres", "native"):
        if name in summary and "deck" in summary:
            result[f"{name}_vs_deck_fps"] = round(
                summary[name]["fps"] / max(summary["deck"]["fps"], 1e-3), 2
            )
    if "native-lowres" in summary and "native-lowres-vector" in summary:
        result["png_overview_vs_vector_fps"] = round(
            summary["native-lowres"]["fps"] / max(summary["native-lowres-vector"]["fps"], 1e-3), 2
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
