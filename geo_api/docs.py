"""/docs (Swagger UI) and /redoc served with no internet: their scripts come from installed packages.

The web map's build copies Swagger UI (npm `swagger-ui-dist`) and ReDoc's standalone bundle
(npm `redoc`) into web_map/dist/vendor; no fonts or scripts are fetched from a CDN.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

SWAGGER_PREFIX = "/docs-assets/swagger"
REDOC_PREFIX = "/docs-assets/redoc"
MISSING = """<!doctype html><html lang="vi"><meta charset="utf-8"><title>API docs</title>
<body style="font-family:sans-serif;padding:2em"><h1>Tài liệu API chưa được build</h1>
<p>The API docs' scripts are copied into web_map/dist by <code>npm run build</code> in
<code>web_map/</code> (<code>./scripts/setup</code> runs it); the schema is at
<a href="/openapi.json">/openapi.json</a>.</p></body></html>"""


def install_docs(app: FastAPI, dist: Path) -> None:
    """Add /docs, /docs/oauth2-redirect and /redoc with their assets served by the app."""
    swagger_dir = dist / "vendor" / "swagger"
    redoc_dir = dist / "vendor" / "redoc"
    # Mounted even before a build, so the routes (and the access policy) do not depend on it.
    app.mount(
        SWAGGER_PREFIX, StaticFiles(directory=swagger_dir, check_dir=False), name="swagger-assets"
    )
    app.mount(REDOC_PREFIX, StaticFiles(directory=redoc_dir, check_dir=False), name="redoc-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    def swagger() -> HTMLResponse:
        """Swagger UI from local files."""
        if not (swagger_dir / "swagger-ui-bundle.js").exists():
            return HTMLResponse(MISSING, status_code=503)
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} — Swagger UI",
            oauth2_redirect_url="/docs/oauth2-redirect",
            swagger_js_url=f"{SWAGGER_PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER_PREFIX}/swagger-ui.css",
            swagger_favicon_url=f"{SWAGGER_PREFIX}/favicon-32x32.png",
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    def oauth2_redirect() -> HTMLResponse:
        """Swagger UI's OAuth2 return page."""
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        """ReDoc from the local bundle, without web fonts."""
        if not (redoc_dir / "redoc.standalone.js").exists():
            return HTMLResponse(MISSING, status_code=503)
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} — ReDoc",
            redoc_js_url=f"{REDOC_PREFIX}/redoc.standalone.js",
            redoc_favicon_url=f"{SWAGGER_PREFIX}/favicon-32x32.png",
            with_google_fonts=False,
        )
