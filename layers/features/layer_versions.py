"""A layer's (id, data_version, updated_at): pooled async look-ups, and an in-memory copy.

`LayerVersionProbe.get` is one pooled round trip, no thread. `LayerVersionCache` keeps the
answers in process memory while a LISTEN connection on `iocmap_layer_changed` is up (every
`layers.features.registry.mark_layer_changed` sends it, in the changing transaction): any notification
drops every cached version, so a warm tile hit touches no database and a tile cached under an
older data_version is still never served, whichever process (or replica) did the import.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy import Connection, Engine, Pool, event
from sqlalchemy.exc import InvalidRequestError

from layers.db import connect_async, conninfo, read_pool
from layers.errors import UnavailableError
from layers.features.registry import LAYER_CHANGED_INFO
from layers.settings import Settings
from layers.sql import ident

_SQL = "SELECT id, data_version, updated_at FROM layer WHERE slug = %s"
CHANNEL = "iocmap_layer_changed"
# A version is re-read after this long even without a notification (belt and braces: every
# change the registry knows of notifies).
VERSION_TTL_S = 5.0
RECONNECT_S = 1.0
# After a failed look-up, cached tiles are served from the last known versions this long
# before the database is tried again (each try may wait for the pool timeout).
DOWN_RETRY_S = 1.0
CONNECT_TIMEOUT_S = 5.0

log = logging.getLogger(__name__)

# Layer changes committed by this very process (any engine): a counter moved at their commit,
# so an import made here is seen by the next request without waiting for its NOTIFY.
_local_counter = itertools.count(1)
_local_changes = 0


_COMMITTED_INFO = "iocmap_layer_changed_committed"


def _on_commit(conn: Connection) -> None:
    global _local_changes
    # This event comes just before the COMMIT: a request in between may read and keep the
    # old version, hence one more move when the connection goes back to the pool.
    if conn.info.pop(LAYER_CHANGED_INFO, False):
        _local_changes = next(_local_counter)
        conn.info[_COMMITTED_INFO] = True


def _on_rollback(conn: Connection) -> None:
    # A connection the database dropped (a restart) has no info to clean, and asking for it
    # would raise inside the rollback, turning a 503 into a 500.
    if conn.invalidated:
        return
    with contextlib.suppress(InvalidRequestError):
        conn.info.pop(LAYER_CHANGED_INFO, None)
        conn.info.pop(_COMMITTED_INFO, None)


def _on_checkin(dbapi_connection: Any, record: Any) -> None:
    global _local_changes
    if record is not None and record.info.pop(_COMMITTED_INFO, False):
        _local_changes = next(_local_counter)


event.listen(Engine, "commit", _on_commit)
event.listen(Engine, "rollback", _on_rollback)
event.listen(Pool, "checkin", _on_checkin)


@dataclass(frozen=True)
class LayerVersion:
    """What a cache key needs to know about a layer right now."""

    id: int
    data_version: int
    updated_at: datetime

    @cached_property
    def stamp(self) -> str:
        """updated_at as a short hex string (moves when the spec or the data change)."""
        return format(int(self.updated_at.timestamp() * 1e6), "x")


class LayerVersionProbe:
    """A pool of autocommit async connections for hot read paths (versions, tiles).

    psycopg_pool checks every connection as it is handed out, so one that died while idle
    (a database restart) is replaced instead of failing the request; a caller waits at most
    settings.db_pool_timeout_s for a connection, then UnavailableError (503, Retry-After).
    """

    def __init__(
        self,
        settings: Settings,
        size: int | None = None,
        conninfo: str | None = None,
        name: str = "iocmap-tiles",
    ) -> None:
        """Pool on `conninfo` (a hot standby), or on the primary when it is None."""
        self._timeout = settings.db_pool_timeout_s
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[tuple[Any, ...]]] = read_pool(
            settings,
            size=size or settings.read_pool_size,
            name=name,
            connect_timeout_s=CONNECT_TIMEOUT_S,
            dsn=conninfo,
        )
        self._opened = False

    async def _open(self) -> None:
        if not self._opened:
            self._opened = True
            # Not waiting: an unreachable database must not hold up the first request.
            await self._pool.open(wait=False)

    async def fetchone(
        self,
        sql: str,
        params: Sequence[Any] | Mapping[str, Any],
        prepare: bool | None = None,
        binary: bool = False,
    ) -> tuple[Any, ...] | None:
        """Run one read-only statement (psycopg placeholders) and return its first row.

        `binary` asks for the result in binary format: a tile's bytea then crosses the wire
        as is, not hex-encoded by the server and decoded again here.
        """
        await self._open()
        try:
            async with self._pool.connection() as conn:
                cur = await conn.execute(sql, params, prepare=prepare, binary=binary)
                return await cur.fetchone()
        except PoolTimeout as exc:
            raise UnavailableError(
                "the database is busy or unreachable; retry shortly",
                retry_after=1,
                i18n="err.layer_versions.database_busy_or_unreachable_retry",
            ) from exc

    async def get(self, slug: str) -> LayerVersion | None:
        """The layer's current version, or None if no such layer."""
        row = await self.fetchone(_SQL, (slug,), prepare=True)
        if row is None:
            return None
        id_, version, updated = row
        assert isinstance(updated, datetime)
        return LayerVersion(int(id_), int(version), updated)

    def stats(self) -> dict[str, int]:
        """The pool's counters (size, idle, waiting...)."""
        return dict(self._pool.get_stats())

    async def close(self) -> None:
        """Close every connection."""
        if self._opened:
            await self._pool.close()


class LayerVersionCache:
    """Layer versions in process memory, dropped on NOTIFY iocmap_layer_changed.

    Versions are only kept while the LISTEN connection is up; without it every look-up goes
    to the database, as the probe alone does. `peek` first reads whatever notifications have
    reached the socket (one non-blocking recv), so a request never trusts a version that a
    notification already on the wire has made stale; changes committed by this process drop
    the versions at their commit. Another process's change is seen once its notification
    arrives (at its commit, plus the time the listening backend takes to pass it on).
    """

    def __init__(self, probe: LayerVersionProbe, settings: Settings, ttl_s: float = VERSION_TTL_S):
        self._probe = probe
        self._conninfo = conninfo(settings)
        self._ttl = ttl_s
        self._versions: dict[str, tuple[LayerVersion, float]] = {}
        # The last version read of each layer, kept to serve cached tiles while the database
        # is away (nothing can change a layer then), and until when to not even try it.
        self._last: dict[str, LayerVersion] = {}
        self._down_until = 0.0
        # Bumped by every notification (and connection loss): a look-up that started before
        # a bump must not store what it read.
        self.generation = 0
        self._local_seen = _local_changes
        self._conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self._fd: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def listening(self) -> bool:
        """True while the LISTEN connection is up (versions are then cached)."""
        return self._conn is not None

    async def start(self) -> None:
        """Open the LISTEN connection; on failure keep retrying in the background."""
        try:
            # Bounded, so an unreachable database never holds up the application's start.
            await asyncio.wait_for(self._connect(), CONNECT_TIMEOUT_S)
        except (psycopg.Error, OSError, TimeoutError) as exc:
            log.warning("layer version listener not connected (%s); retrying", exc)
            self._schedule_reconnect()

    async def _connect(self) -> None:
        conn = await connect_async(self._conninfo, application_name="iocmap-tile-versions")
        try:
            await conn.execute(sql.SQL("LISTEN {}").format(ident(CHANNEL)))
        except BaseException:
            await conn.close()
            raise
        if self._closed:
            await conn.close()
            return
        fd = conn.pgconn.socket
        asyncio.get_running_loop().add_reader(fd, self.drain)
        self._conn, self._fd = conn, fd
        self._invalidate()  # whatever was read before LISTEN was in place is suspect

    def _schedule_reconnect(self) -> None:
        if self._closed or (self._task is not None and not self._task.done()):
            return
        self._task = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        while not self._closed and self._conn is None:
            await asyncio.sleep(RECONNECT_S)
            try:
                await asyncio.wait_for(self._connect(), CONNECT_TIMEOUT_S)
            except (psycopg.Error, OSError, TimeoutError) as exc:
                log.warning("layer version listener still down: %s", exc)

    def _invalidate(self) -> None:
        self._versions.clear()
        self.generation += 1

    def _lost(self) -> None:
        """The LISTEN connection broke: trust nothing cached, read per request, reconnect."""
        conn, fd = self._conn, self._fd
        self._conn = self._fd = None
        self._invalidate()
        if fd is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(fd)
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.pgconn.finish()
        self._schedule_reconnect()

    def drain(self) -> None:
        """Read notifications already received (never blocks); any of them drops every version."""
        if self._local_seen != _local_changes:
            self._local_seen = _local_changes
            self._invalidate()
        conn = self._conn
        if conn is None:
            return
        pgconn = conn.pgconn
        try:
            pgconn.consume_input()
        except psycopg.OperationalError:
            self._lost()
            return
        if pgconn.status != psycopg.pq.ConnStatus.OK:
            self._lost()
            return
        changed = False
        while pgconn.notifies() is not None:
            changed = True
        if changed:
            self._invalidate()

    def peek(self, slug: str) -> LayerVersion | None:
        """The cached version if it is still current, without any await; else None."""
        if self._conn is None:
            return None
        self.drain()
        hit = self._versions.get(slug)
        if hit is None or hit[1] <= time.monotonic():
            return None
        return hit[0]

    async def get(self, slug: str) -> LayerVersion | None:
        """The layer's current version (memory when possible), or None if no such layer."""
        hit = self.peek(slug)
        if hit is not None:
            return hit
        generation = self.generation
        stale = self._last.get(slug)
        if stale is not None and time.monotonic() < self._down_until:
            return stale
        try:
            ver = await self._probe.get(slug)
        except (UnavailableError, psycopg.OperationalError):
            if stale is None:
                raise
            self._down_until = time.monotonic() + DOWN_RETRY_S
            log.warning("database away: serving layer '%s' at its last known version", slug)
            return stale
        if ver is not None:
            if len(self._last) > 10_000:
                self._last.clear()
            self._last[slug] = ver
        if ver is not None and self._conn is not None:
            # A notification may have arrived while we waited: then what we read may predate
            # the change it announces, so it is not kept.
            self.drain()
            if generation == self.generation:
                if len(self._versions) > 10_000:  # slugs come from URLs: bound the map
                    self._versions.clear()
                self._versions[slug] = (ver, time.monotonic() + self._ttl)
        return ver

    async def close(self) -> None:
        """Stop listening and reconnecting."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        conn, fd = self._conn, self._fd
        self._conn = self._fd = None
        self._versions.clear()
        if fd is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(fd)
        if conn is not None:
            await conn.close()
