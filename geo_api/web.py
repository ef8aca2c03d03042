"""Serve the built deck.gl web map (web_map/dist) at / with long-lived caching of hashed assets."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

MISSING_BUILD = """<!doctype html><html lang="vi"><meta charset="utf-8"><title>IOC Map</title>
<body style="font-family:sans-serif;padding:2em"><h1>Bản đồ IOC chưa được build</h1>
<p>The web map has not been built. Run <code>./scripts/setup</code> (it runs
<code>npm ci &amp;&amp; npm run build</code> in <code>web_map/</code>).</p></body></html>"""


def mount_web_map(app: FastAPI, dist: Path) -> None:
    """Mount index.html at / and the bundle under /assets."""
    assets = dist / "assets"
    if assets.is_dir():
        app.mount("/assets", CachedStatic(directory=assets), name="assets")

    @app.get("/", include_in_schema=False, response_model=None)
    def index() -> Response:
        """The web map's entry page."""
        page = dist / "index.html"
        if not page.exists():
            return HTMLResponse(MISSING_BUILD, status_code=503)
        return FileResponse(page, media_type="text/html", headers={"Cache-Control": "no-cache"})


class CachedStatic(StaticFiles):
    """Static files whose names carry a content hash, so browsers may cache them for a year."""

    def file_response(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        """Add an immutable Cache-Control to every asset response."""
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response
