"""The in-server scheduler: runs each connector when its interval (or backoff) is due."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

from sqlalchemy import Engine

from ingest.connectors.config import ConnectorsConfig, load_config
from ingest.connectors.runner import run_connector
from layers.cluster import database_url, libpq_url
from layers.ingest.batches import connector_next_attempts
from layers.leases import Lease
from layers.settings import Settings

log = logging.getLogger("iocmap.ingest.scheduler")
# How often a replica that does not hold the connectors' lease asks for it again.
LEASE_RETRY_S = 5.0


class ConnectorScheduler:
    """A daemon thread that wakes every `tick_s` and runs the connectors that are due.

    Due-ness lives in connector_state.next_attempt_at, so a restart (or a second replica
    reading the same table) picks up where the last run left off.
    """

    def __init__(
        self, engine: Engine, settings: Settings, cfg: ConnectorsConfig, tick_s: float = 1.0
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.cfg = cfg
        self.tick_s = tick_s
        self._stop = threading.Event()
        # With several API replicas only the lease holder runs connectors (issue 23).
        self.lease = Lease(libpq_url(database_url(settings)), "connectors")
        self._thread = threading.Thread(target=self._loop, name="iocmap-connectors", daemon=True)

    def start(self) -> ConnectorScheduler:
        """Start the thread."""
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the thread to finish and wait for it."""
        self._stop.set()
        self._thread.join(timeout)

    def due(self) -> list[str]:
        """Names of enabled connectors whose next run time has come."""
        now = datetime.now(UTC)
        with self.engine.connect() as conn:
            nexts = connector_next_attempts(conn)
        return [
            c.name
            for c in self.cfg.connectors
            if c.enabled and (nexts.get(c.name) is None or nexts[c.name] <= now)
        ]

    def run_due(self) -> int:
        """Run every due connector once; returns how many ran."""
        names = self.due()
        for c in self.cfg.connectors:
            if c.name in names and not self._stop.is_set():
                try:
                    run_connector(self.engine, self.settings, c, sleep=self._stop.wait)
                except Exception:  # keep the scheduler alive; the failure is in the batch list
                    log.exception("connector %s crashed", c.name)
        return len(names)

    def _loop(self) -> None:
        while not self._stop.is_set():
            if not self.lease.held():
                self._stop.wait(max(self.tick_s, LEASE_RETRY_S))
                continue
            try:
                self.run_due()
            except Exception:
                log.exception("connector scheduler tick failed")
            self._stop.wait(self.tick_s)
        self.lease.release()


def start_scheduler(engine: Engine, settings: Settings) -> ConnectorScheduler | None:
    """Start the scheduler when IOC_INGEST_SCHEDULER is on and connectors are configured."""
    if not settings.ingest_scheduler or settings.ingest_connectors_file is None:
        return None
    cfg = load_config(settings.ingest_connectors_file)
    if not cfg.connectors:
        return None
    return ConnectorScheduler(engine, settings, cfg).start()
