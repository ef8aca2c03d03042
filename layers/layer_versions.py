"""A layer's (id, data_version, updated_at): pooled async look-ups, and an in-memory copy.

`LayerVersionProbe.get` is one pooled round trip, no thread. `LayerVersionCache` keeps the
answers in process memory while a LISTEN connection on `iocmap_layer_changed` is up (every
`layers.registry.mark_layer_changed` sends it, in the changing transaction): any notification
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
from sqlalchemy import Connection, Engine, Pool, event

from layers.cluster import database_url, libpq_url
from layers.registry import LAYER_CHANGED_INFO
from layers.settings import Settings
from layers.sql import ident

_SQL = "SELECT id, data_version, updated_at FROM layer WHERE slug = %s"
CHANNEL = "iocmap_layer_changed"
# A version is re-read after this long even without a notification (belt and braces: every
# change the registry knows of notifies).
VERSION_TTL_S = 5.0
RECONNECT_S = 1.0
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
    """A small pool of autocommit async connections for hot read paths (versions, tiles)."""

    def __init__(self, settings: Settings, size: int = 4) -> None:
        self._conninfo = libpq_url(database_url(settings))
        self._size = size
        self._idle: asyncio.Queue[psycopg.AsyncConnection[tuple[object, ...]]] = asyncio.Queue()
        self._open = 0
        self._lock = asyncio.Lock()

    async def _acquire(self) -> psycopg.AsyncConnection[tuple[object, ...]]:
        if self._idle.empty():
            async with self._lock:
                if self._open < self._size:
                    self._open += 1
                    try:
                        # Custom plans always: a generic plan cannot prune the layer's partition
                        # nor judge the tile envelope, and may scan a million parcels. No
                        # parallel workers: requests already run side by side on few cores.
                        return await psycopg.AsyncConnection.connect(
                            self._conninfo,
                            autocommit=True,
                            application_name="iocmap-tiles",
                            options="-c plan_cache_mode=force_custom_plan -c max_parallel_workers_per_gather=0",
                        )
                    except Exception:
                        self._open -= 1
                        raise
        return await self._idle.get()

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
        for attempt in (1, 2):
            conn = await self._acquire()
            try:
                cur = await conn.execute(sql, params, prepare=prepare, binary=binary)
                row = await cur.fetchone()
            except psycopg.OperationalError:
                # A dropped connection: discard it and try once more on a fresh one.
                self._open -= 1
                await conn.close()
                if attempt == 2:
                    raise
                continue
            except BaseException:
                self._idle.put_nowait(conn)
                raise
            self._idle.put_nowait(conn)
            return row
        return None

    async def get(self, slug: str) -> LayerVersion | None:
        """The layer's current version, or None if no such layer."""
        row = await self.fetchone(_SQL, (slug,), prepare=True)
        if row is None:
            return None
        id_, version, updated = row
        assert isinstance(updated, datetime)
        return LayerVersion(int(id_), int(version), updated)

    async def close(self) -> None:
        """Close every idle connection."""
        while not self._idle.empty():
            conn = self._idle.get_nowait()
            self._open -= 1
            await conn.close()


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
        self._conninfo = libpq_url(database_url(settings))
        self._ttl = ttl_s
        self._versions: dict[str, tuple[LayerVersion, float]] = {}
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
        conn = await psycopg.AsyncConnection.connect(
            self._conninfo, autocommit=True, application_name="iocmap-tile-versions"
        )
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
        ver = await self._probe.get(slug)
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
