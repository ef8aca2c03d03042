"""The FastAPI application factory: create_app(settings), with one lifespan and no module state.

The lifespan below is the only place background work starts and stops; routers declare none.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError, ProgrammingError
from starlette.concurrency import run_in_threadpool

from analytics import scheduler
from geo_api import layer_state, security
from geo_api.docs import install_docs
from geo_api.errors import install_error_handlers
from geo_api.load import LoadShedMiddleware
from geo_api.routers import (
    alerts,
    audit,
    auth,
    cameras,
    events,
    export,
    h3,
    health,
    imports,
    incident_tasks,
    incidents,
    indicators,
    jobs,
    layers,
    mapviews,
    ogc,
    ogc_tiles,
    qgis,
    query,
    rasters,
    reports,
    search,
    sops,
    styles,
    tiles,
)
from geo_api.web import mount_web_map
from ingest.connectors.scheduler import start_scheduler
from layers.auth.signing import ensure_shared_signing_key
from layers.db import make_engine, make_read_engine
from layers.settings import Settings
from vision import broker

log = logging.getLogger(__name__)

ROUTERS = (
    qgis,
    health,
    layers,
    ogc,
    ogc_tiles,
    styles,
    tiles,
    query,
    imports,
    h3,
    alerts,
    cameras,
    events,
    reports,
    auth,
    audit,
    indicators,
    jobs,  # issue 14
    rasters,
    incidents,
    incident_tasks,
    sops,
    search,
    mapviews,
    export,
)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the IOC Map API for the given settings (read from IOC_* when omitted)."""
    settings = settings or Settings()
    security.check_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        """Start every background part in this order; stop them in the reverse one."""
        async with AsyncExitStack() as stack:
            # 1. The database engine every request and job uses.
            app.state.settings = settings
            app.state.engine = make_engine(settings)
            stack.callback(app.state.engine.dispose)
            #    The signing key every replica shares (the database's, issue 23), and the
            #    standbys' engine for reads when IOC_DATABASE_READ_URLS is set (else None).
            await run_in_threadpool(_settle_signing_key, app.state.engine, settings)
            app.state.read_engine = make_read_engine(settings)
            if app.state.read_engine is not None:
                stack.callback(app.state.read_engine.dispose)
            # 2. Connectors on their schedule (None unless configured).
            connectors = start_scheduler(app.state.engine, settings)
            if connectors is not None:
                stack.callback(connectors.stop)
            # 3. Hot reads: the async version pool (tiles, OGC items) and the tile caches.
            stack.push_async_callback(layer_state.close_read_pool, app)
            await tiles.start_tile_state(app)
            stack.push_async_callback(tiles.stop_tile_state, app)
            # 4. Analytics: H3 refresh, derived indicators, alert rules, incident escalation
            #    (None in tests); each job's last run and error show in /health and /api/jobs.
            app.state.jobs = scheduler.JobBoard(
                settings.analytics_retry_base_s, settings.analytics_retry_max_s
            )
            app.state.analytics_task = scheduler.start(app.state.engine, settings, app.state.jobs)
            stack.push_async_callback(_stop_analytics, app)
            # 5. Field-report SLA: the overdue check.
            stack.push_async_callback(_cancel, reports.start_overdue_checks(app))
            # 6. Detection events from the broker (IOC_BROKER_URL; issue 23), else nothing.
            if settings.broker_url:
                stop_writer = asyncio.Event()
                writer = asyncio.create_task(
                    broker.run_writer(app.state.engine, settings, stop_writer),
                    name="iocmap-broker-writer",
                )
                stack.push_async_callback(_stop_writer, stop_writer, writer)
            yield

    app = FastAPI(
        title="IOC Map API",
        summary="Bản đồ điều hành thông minh — geospatial API of the provincial IOC",
        version="0.1.0",
        lifespan=lifespan,
        # /docs and /redoc are served from local assets by geo_api.docs (no CDN)
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    install_error_handlers(app)
    # Level 5 compresses JSON/MVT nearly as well as 9 at a fraction of the CPU per response.
    app.add_middleware(GZipMiddleware, minimum_size=2048, compresslevel=5)
    # Warm tile hits answered before routing; inside CORS and security (added after it).
    app.add_middleware(tiles.WarmTileMiddleware)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
        )
    security.install(app, settings)
    # Outermost: a request waits for a slot before anything (auth included) holds a connection.
    app.add_middleware(LoadShedMiddleware, settings=settings)
    for module in ROUTERS:
        app.include_router(module.router)
    install_docs(app, web_dist_dir(settings))
    mount_web_map(app, web_dist_dir(settings))
    return app


def _settle_signing_key(engine: Engine, settings: Settings) -> None:
    try:
        ensure_shared_signing_key(engine, settings)
    except (OperationalError, ProgrammingError):
        # The database is away (or not migrated) at start: the state directory's key (created if missing)
        # signs until then; replicas may disagree on it, hence the warning.
        log.warning("database unreachable at start: signing key from the state directory only")
        settings.signing_key()


async def _stop_writer(stop: asyncio.Event, task: asyncio.Task[None]) -> None:
    stop.set()
    try:
        await asyncio.wait_for(task, timeout=5)
    except TimeoutError:
        await _cancel(task)


async def _stop_analytics(app: FastAPI) -> None:
    await scheduler.stop(app.state.analytics_task)
    app.state.analytics_task = None


async def _cancel(task: asyncio.Task[None] | None) -> None:
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def web_dist_dir(settings: Settings) -> Path:
    """Where the built web map lives."""
    return settings.web_dist_dir or Path(__file__).resolve().parent.parent / "web_map" / "dist"
