"""First paint and smoothness of the web map in Debian's Chromium against a real server on the demo.

Measures, from navigation start: first contentful paint, the first map paint (province and ward
boundaries drawn), and every layer settled; the bundle sizes (the entry that paints the basemap,
and all JavaScript); and pan/zoom smoothness over the land-parcel layer through tiles (frame
times from requestAnimationFrame while the map pans and zooms over Vinh). The anchor is the
browser's own first contentful paint of the page shell. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# The basemap (province + wards) is drawn by maplibre; the page records when its first frame
# with both boundary sources loaded was rendered (performance.now(), from navigation start).
WARDS_DRAWN = "!!(window.__iocmap && window.__iocmap.basemapAt)"
VINH = [105.68, 18.68]
# Pans and zooms over Vinh's parcels, timing every frame with requestAnimationFrame.
PAN_ZOOM = """async (vinh) => {
  const map = window.__iocmap.app.map;
  const deltas = [];
  let last = performance.now(), run = true;
  const tick = (now) => { deltas.push(now - last); last = now; if (run) requestAnimationFrame(tick); };
  requestAnimationFrame(tick);
  const ease = (o) => new Promise((r) => { map.once('moveend', r); map.easeTo({ ...o, duration: 1500 }); });
  const d = 0.02;
  await ease({ center: [vinh[0] + d, vinh[1]], zoom: 14 });
  await ease({ center: [vinh[0] + d, vinh[1] + d], zoom: 14 });
  await ease({ center: [vinh[0], vinh[1]], zoom: 15.5 });
  await ease({ center: [vinh[0] - d, vinh[1]], zoom: 13.5 });
  await ease({ center: [vinh[0], vinh[1]], zoom: 14.5 });
  run = false;
  return deltas.slice(1);
}"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _poll(page: object, expression: str, timeout_s: float) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout_s:
        if page.evaluate(expression):  # type: ignore[attr-defined]
            return time.perf_counter() - start
        page.wait_for_timeout(20)  # type: ignore[attr-defined]
    raise TimeoutError(expression)


def _pan_zoom(browser: object, base: str) -> list[float]:
    """Frame times (ms) while panning and zooming over Vinh's parcels, after they settled."""
    context = browser.new_context(viewport={"width": 1440, "height": 810})  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(f"{base}/?lang=vi")
    _poll(page, "document.body.dataset.ready === '1'", 90)
    page.evaluate("c => window.__iocmap.jumpTo(c, 14)", VINH)
    page.evaluate("window.__iocmap.settled()")
    frames: list[float] = page.evaluate(PAN_ZOOM, VINH)
    context.close()
    return frames


def main() -> None:
    """Serve the demo, load the map N times, print medians as JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    port = _free_port()
    iocmap = Path(sys.executable).with_name("iocmap")
    server = subprocess.Popen(
        [str(iocmap), "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        fcp, wards, wards_page, settled = [], [], [], []
        frames: list[float] = []
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            for _ in range(args.runs):
                context = browser.new_context(viewport={"width": 1440, "height": 810})
                page = context.new_page()
                t0 = time.perf_counter()
                page.goto(f"{base}/?lang=vi", wait_until="commit")
                _poll(page, WARDS_DRAWN, 60)
                wards.append(time.perf_counter() - t0)
                wards_page.append(page.evaluate("window.__iocmap.basemapAt") / 1000)
                page.evaluate("window.__iocmap.settled()")
                settled.append(time.perf_counter() - t0)
                paint = page.evaluate(
                    "performance.getEntriesByName('first-contentful-paint').map(e => e.startTime)[0] || 0"
                )
                fcp.append(paint / 1000)
                context.close()
            frames = _pan_zoom(browser, base)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)
    assets = ROOT / "web_map" / "dist" / "assets"
    js = sum(p.stat().st_size for p in assets.glob("*.js"))
    css = sum(p.stat().st_size for p in assets.glob("*.css"))
    entry = sum(p.stat().st_size for p in assets.glob("app-*.js"))
    workers = sum(p.stat().st_size for p in assets.glob("*worker-*.js"))
    frames.sort()

    def pct(q: float) -> float:
        return round(frames[min(len(frames) - 1, int(q * len(frames)))], 1) if frames else 0.0

    result = {
        "bench": "web_map",
        "runs": args.runs,
        "first_contentful_paint_s": round(statistics.median(fcp), 3),
        "wards_drawn_s": round(statistics.median(wards), 3),
        "wards_drawn_in_page_s": round(statistics.median(wards_page), 3),
        "all_layers_settled_s": round(statistics.median(settled), 3),
        "wards_vs_fcp": round(statistics.median(wards) / max(statistics.median(fcp), 1e-3), 2),
        "js_bytes": js,
        "js_entry_bytes": entry,
        "js_worker_bytes": workers,
        "css_bytes": css,
        "pan_zoom_frames": len(frames),
        "pan_zoom_frame_ms_median": pct(0.5),
        "pan_zoom_frame_ms_p95": pct(0.95),
        "pan_zoom_fps": round(1000 / statistics.mean(frames), 1) if frames else 0.0,
        "pan_zoom_long_frames_gt_50ms": sum(1 for f in frames if f > 50),
        "goal_first_paint_s": 2.0,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
