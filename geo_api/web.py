"""Serve the built deck.gl web map (web_map/dist) at / with long-lived caching of hashed assets."""

from __future__ import annotations

import mimetypes
import os
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import Headers
from starlette.staticfiles import NotModifiedResponse
from starlette.types import Scope

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
    """Static files whose names carry a content hash, so browsers may cache them for a year.

    The build writes a gzip copy (`name.gz`) of every script and style sheet: a browser that
    accepts gzip gets it as it is, so the server never compresses the same megabytes of
    JavaScript again on every page load (the GZip middleware leaves encoded responses alone).
    """

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        """The asset (its gzip copy when the browser takes it), with an immutable Cache-Control."""
        request = Headers(scope=scope)
        packed = Path(f"{full_path}.gz")
        response: Response
        if (
            "gzip" in request.get("accept-encoding", "")
            and "range" not in request
            and packed.is_file()
        ):
            response = FileResponse(
                packed,
                status_code=status_code,
                media_type=mimetypes.guess_type(str(full_path))[0] or "text/plain",
                headers={"Content-Encoding": "gzip", "Vary": "Accept-Encoding"},
            )
            if self.is_not_modified(response.headers, request):
                response = NotModifiedResponse(response.headers)
        else:
            response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response
