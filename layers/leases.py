"""Leases across API replicas: a PostgreSQL session advisory lock held on a connection of its own.

The replica holding a lease runs the jobs it guards (scheduled analytics, connectors); the
others keep asking. The lock lives as long as its connection: a replica that dies, or a
primary that fails over, frees it, and the next `held()` elsewhere takes it on the primary
of the moment (libpq multi-host URLs with target_session_attrs=read-write find it).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading

import psycopg

from layers.db import connect

# First key of the two-key advisory lock space for leases (imports use 7714).
LEASE_LOCK_CLASS = 7723
CONNECT_TIMEOUT_S = 3

log = logging.getLogger(__name__)


def lease_key(name: str) -> int:
    """A stable 32-bit key for the lease's name (the second key of the lock)."""
    return int.from_bytes(
        hashlib.blake2b(name.encode(), digest_size=4).digest(), "big", signed=True
    )


class Lease:
    """Leadership for one named job group; thread-safe, never blocks on the lock itself."""

    def __init__(self, conninfo: str, name: str) -> None:
        self.conninfo = conninfo
        self.name = name
        self.key = lease_key(name)
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._lock = threading.Lock()

    def held(self) -> bool:
        """True while this process holds the lease; takes it when it is free.

        The holder's connection is checked on every call, so a lost connection (and with it
        the lock) is noticed before the guarded job runs again.
        """
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.execute("SELECT 1")
                    return True
                except psycopg.Error:
                    log.warning("lease %s lost with its connection", self.name)
                    self._drop()
            return self._try_take()

    def _try_take(self) -> bool:
        try:
            conn = connect(
                self.conninfo,
                connect_timeout=CONNECT_TIMEOUT_S,
                application_name=f"iocmap-lease-{self.name}",
            )
        except psycopg.Error as exc:
            log.warning("lease %s: database unreachable (%s)", self.name, exc)
            return False
        try:
            row = conn.execute(
                "SELECT pg_try_advisory_lock(%s, %s)", (LEASE_LOCK_CLASS, self.key)
            ).fetchone()
        except psycopg.Error:
            conn.close()
            return False
        if row is None or not row[0]:
            conn.close()  # someone else leads: no idle connection kept for the lease
            return False
        self._conn = conn
        log.info("lease %s taken", self.name)
        return True

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def release(self) -> None:
        """Give the lease up (closing its connection frees the lock)."""
        with self._lock:
            self._drop()
