"""In-process scheduler: H3 refresh and alert rules on a timer and soon after layer changes.

Hook it into the API lifespan::

    task = analytics.scheduler.start(app.state.engine, settings)
    ...
    await analytics.scheduler.stop(task)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from analytics import alerting, h3jobs, kpi_jobs
from layers.cluster import database_url, libpq_url
from layers.registry import wake_on_layer_change
from layers.settings import Settings

log = logging.getLogger(__name__)
# Imports and event batches come in bursts: wait this long after a change before running.
DEBOUNCE_S = 2.0


def run_once(engine: Engine) -> None:
    """Refresh stale H3 aggregates and derived indicators, then evaluate every rule (blocking)."""
    for rep in h3jobs.refresh_all(engine):
        if rep.mode != "up_to_date":
            log.info("h3 %s: %s (%d changed)", rep.layer, rep.mode, rep.changed)
    try:
        # Before the rules, so indicator rules see today's derived counts.
        kpi_jobs.refresh_derived(engine)
    except Exception:  # a bad source row must not stop the alert rules
        log.exception("derived indicator refresh failed")
    res = alerting.evaluate_all(engine)
    if res.opened:
        log.info("alerts opened: %s", res.opened)


async def run(engine: Engine, settings: Settings) -> None:
    """Loop forever: run after each interval, or shortly after a layer-changed NOTIFY."""
    wake = asyncio.Event()
    listener = asyncio.create_task(wake_on_layer_change(libpq_url(database_url(settings)), wake))
    try:
        while True:
            try:
                await run_in_threadpool(run_once, engine)
            except Exception:  # the scheduler must survive a bad rule or a DB blip
                log.exception("scheduled analytics run failed")
            wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=settings.analytics_interval_s)
                await asyncio.sleep(DEBOUNCE_S)
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener


def enabled(settings: Settings) -> bool:
    """Whether the scheduler runs: explicitly set, else everywhere but the test environment."""
    if settings.analytics_scheduler is None:
        return settings.environment != "test"
    return settings.analytics_scheduler


def start(engine: Engine, settings: Settings) -> asyncio.Task[None] | None:
    """Start the scheduler task (None when disabled: IOC_ANALYTICS_SCHEDULER=false, or in tests)."""
    if not enabled(settings):
        return None
    return asyncio.create_task(run(engine, settings), name="iocmap-analytics")


async def stop(task: asyncio.Task[None] | None) -> None:
    """Cancel the scheduler task and wait for it."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
