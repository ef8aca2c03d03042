"""Async look-ups of a layer's (id, data_version, updated_at): one pooled round trip, no thread.

The tile endpoint asks this on every request, so a tile cached under an older data_version is
never served, whichever process (or replica) did the import.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from layers.cluster import database_url, libpq_url
from layers.settings import Settings

_SQL = "SELECT id, data_version, updated_at FROM layer WHERE slug = %s"


@dataclass(frozen=True)
class LayerVersion:
    """What a cache key needs to know about a layer right now."""

    id: int
    data_version: int
    updated_at: datetime

    @property
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
        self, sql: str, params: Sequence[Any] | Mapping[str, Any], prepare: bool | None = None
    ) -> tuple[Any, ...] | None:
        """Run one read-only statement (psycopg placeholders) and return its first row."""
        for attempt in (1, 2):
            conn = await self._acquire()
            try:
                cur = await conn.execute(sql, params, prepare=prepare)
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
