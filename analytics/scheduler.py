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
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from analytics import alerting, h3jobs, incident_ops, kpi_jobs
from layers.db import conninfo
from layers.features.registry import wake_on_layer_change
from layers.leases import Lease
from layers.settings import Settings

log = logging.getLogger(__name__)
# Imports and event batches come in bursts: wait this long after a change before running.
DEBOUNCE_S = 2.0
# A replica that does not hold the jobs' lease asks again this often (takeover delay when the
# leader dies); the leader keeps the lease until its connection goes.
LEASE_RETRY_S = 5.0
LEASE_NAME = "analytics"
ERROR_CHARS = 500


def _h3(engine: Engine, settings: Settings | None) -> None:
    for rep in h3jobs.refresh_all(engine):
        if rep.mode != "up_to_date":
            log.info("h3 %s: %s (%d changed)", rep.layer, rep.mode, rep.changed)


def _derived(engine: Engine, settings: Settings | None) -> None:
    kpi_jobs.refresh_derived(engine)


def _alerts(engine: Engine, settings: Settings | None) -> None:
    # issue 21 first: overdue tasks escalate, and the incident KPIs are fresh when the
    # indicator rules read them (they alert like the other sector indicators)
    try:
        incident_ops.run_jobs(engine)
    except Exception:
        log.exception("incident jobs failed")
    # settings give rules that read rasters (flood exposure) their state directory
    res = alerting.evaluate_all(engine, settings=settings)
    if res.opened:
        log.info("alerts opened: %s", res.opened)


# In this order: indicator rules must see today's derived counts. Each job fails alone.
JOBS: tuple[tuple[str, Callable[[Engine, Settings | None], Any]], ...] = (
    ("h3_refresh", _h3),
    ("derived_indicators", _derived),
    ("alert_rules", _alerts),
)


@dataclass
class JobStatus:
    """What the last runs of one scheduled job did (shown by /health and GET /api/jobs)."""

    name: str
    runs: int = 0
    last_started_at: datetime | None = None
    last_finished_at: datetime | None = None
    last_ok_at: datetime | None = None
    last_error: str | None = None
    failures: int = 0  # in a row; 0 once it succeeds again
    retry_at: datetime | None = None  # a failed job waits until then (exponential backoff)

    def as_json(self) -> dict[str, Any]:
        """The status as JSON-ready values."""
        return {
            k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(self).items()
        }


class JobBoard:
    """The status of every scheduled job in this process (one per app, on app.state.jobs)."""

    def __init__(self, retry_base_s: float = 10.0, retry_max_s: float = 900.0) -> None:
        self.retry_base_s = retry_base_s
        self.retry_max_s = retry_max_s
        self.jobs = {name: JobStatus(name) for name, _ in JOBS}
        # Whether this replica holds the jobs' lease (only the holder runs them).
        self.leader = False

    def backoff(self, failures: int) -> timedelta:
        """How long a job that failed `failures` times in a row waits before its retry."""
        return timedelta(
            seconds=min(self.retry_base_s * 2 ** max(failures - 1, 0), self.retry_max_s)
        )

    def next_retry(self) -> datetime | None:
        """The earliest pending retry."""
        return min((j.retry_at for j in self.jobs.values() if j.retry_at), default=None)

    def snapshot(self) -> list[dict[str, Any]]:
        """Every job's status, in run order."""
        return [self.jobs[name].as_json() for name, _ in JOBS]


def _describe(exc: BaseException) -> str:
    # One line, no traceback (and so no server paths), bounded.
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first}"[:ERROR_CHARS]


def run_once(
    engine: Engine,
    board: JobBoard | None = None,
    now: Callable[[], datetime] | None = None,
    settings: Settings | None = None,
) -> JobBoard:
    """Run every scheduled job that is not waiting out a backoff, each on its own (blocking)."""
    board = board or JobBoard()
    clock = now or (lambda: datetime.now(UTC))
    for name, job in JOBS:
        st = board.jobs[name]
        started = clock()
        if st.retry_at is not None and started < st.retry_at:
            continue
        st.runs += 1
        st.last_started_at = started
        try:
            job(engine, settings)
        except Exception as exc:  # one failing job must not stop the others
            log.exception("scheduled job %s failed", name)
            st.failures += 1
            st.last_error = _describe(exc)
            st.retry_at = clock() + board.backoff(st.failures)
        else:
            st.failures = 0
            st.retry_at = None
            st.last_error = None
            st.last_ok_at = clock()
        st.last_finished_at = clock()
    return board


async def run(engine: Engine, settings: Settings, board: JobBoard | None = None) -> None:
    """Loop forever: run after each interval, shortly after a layer-changed NOTIFY, or when a
    failed job's backoff ends."""
    board = board or JobBoard(settings.analytics_retry_base_s, settings.analytics_retry_max_s)
    dsn = conninfo(settings)
    # Run once across replicas: only the holder of the lease runs the jobs.
    lease = Lease(dsn, LEASE_NAME)
    wake = asyncio.Event()
    listener = asyncio.create_task(wake_on_layer_change(dsn, wake))
    try:
        while True:
            board.leader = await run_in_threadpool(lease.held)
            if board.leader:
                try:
                    await run_in_threadpool(run_once, engine, board, None, settings)
                except Exception:  # the loop itself must survive anything
                    log.exception("scheduled analytics run failed")
            wake.clear()
            timeout = settings.analytics_interval_s
            if not board.leader:
                timeout = min(timeout, LEASE_RETRY_S)
            retry = board.next_retry()
            if retry is not None:
                timeout = max(0.5, min(timeout, (retry - datetime.now(UTC)).total_seconds()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=timeout)
                await asyncio.sleep(DEBOUNCE_S)
    finally:
        await run_in_threadpool(lease.release)
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener


def enabled(settings: Settings) -> bool:
    """Whether the scheduler runs: explicitly set, else everywhere but the test environment."""
    if settings.analytics_scheduler is None:
        return settings.environment != "test"
    return settings.analytics_scheduler


def start(
    engine: Engine, settings: Settings, board: JobBoard | None = None
) -> asyncio.Task[None] | None:
    """Start the scheduler task (None when disabled: IOC_ANALYTICS_SCHEDULER=false, or in tests)."""
    if not enabled(settings):
        return None
    return asyncio.create_task(run(engine, settings, board), name="iocmap-analytics")


async def stop(task: asyncio.Task[None] | None) -> None:
    """Cancel the scheduler task and wait for it."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
