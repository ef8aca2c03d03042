"""First paint of the web map in Debian's Chromium against a real server on the demo.

Measures, from navigation start: first contentful paint, the wards (basemap) drawn, and every
layer settled; plus the bundle sizes. The anchor is the browser's own first contentful paint of
the page shell. Last line: one JSON object.
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
WARDS_DRAWN = """(() => { const d = window.__iocmap && window.__iocmap.app.overlay && window.__iocmap.app.overlay._deck;
  if (!d || !d.layerManager) return false;
  const l = d.layerManager.getLayers().filter((x) => x.id.startsWith('layer-admin_communes'));
  return l.length > 0 && l.every((x) => x.isLoaded); })()"""


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
        fcp, wards, settled = [], [], []
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            for _ in range(args.runs):
                context = browser.new_context(viewport={"width": 1440, "height": 810})
                page = context.new_page()
                t0 = time.perf_counter()
                page.goto(f"{base}/?lang=vi", wait_until="commit")
                _poll(page, WARDS_DRAWN, 60)
                wards.append(time.perf_counter() - t0)
                page.evaluate("window.__iocmap.settled()")
                settled.append(time.perf_counter() - t0)
                paint = page.evaluate(
                    "performance.getEntriesByName('first-contentful-paint').map(e => e.startTime)[0] || 0"
                )
                fcp.append(paint / 1000)
                context.close()
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)
    assets = ROOT / "web_map" / "dist" / "assets"
    js = sum(p.stat().st_size for p in assets.glob("*.js"))
    css = sum(p.stat().st_size for p in assets.glob("*.css"))
    result = {
        "bench": "web_map",
        "runs": args.runs,
        "first_contentful_paint_s": round(statistics.median(fcp), 3),
        "wards_drawn_s": round(statistics.median(wards), 3),
        "all_layers_settled_s": round(statistics.median(settled), 3),
        "wards_vs_fcp": round(statistics.median(wards) / max(statistics.median(fcp), 1e-3), 2),
        "js_bytes": js,
        "css_bytes": css,
        "goal_first_paint_s": 2.0,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
