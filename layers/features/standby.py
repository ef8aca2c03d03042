"""Reads from hot standbys (IOC_DATABASE_READ_URLS), never older than the version they answer for.

A tile or an items page is keyed by the layer's data_version read on the primary. A standby
replays the primary's WAL a little later, so before it renders for version V it is asked
which version of the layer it has replayed: at V or later it renders (replay only moves
forward, so what it reads next is at least V); behind, the primary renders instead. A tile
rendered from a standby is thus never cached under a data version that standby lacks.
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass

import psycopg
from sqlalchemy import Connection, select

from layers.errors import UnavailableError
from layers.features.layer_versions import LayerVersionProbe
from layers.models.core import layer
from layers.settings import Settings

_REPLAYED = "SELECT data_version FROM layer WHERE id = %s"
# A standby that failed is left alone this long before it is tried again.
DOWN_S = 5.0

log = logging.getLogger(__name__)


def replayed(conn: Connection, layer_id: int, data_version: int) -> bool:
    """True when the connection's server holds the layer at `data_version` or later."""
    have = conn.execute(select(layer.c.data_version).where(layer.c.id == layer_id)).scalar()
    return have is not None and int(have) >= data_version


@dataclass
class StandbyStats:
    """How standby reads went (tests and /health read them)."""

    served: int = 0  # renders a standby did
    behind: int = 0  # a standby had not replayed the version yet: the primary rendered
    unavailable: int = 0  # a standby did not answer


class StandbyPools:
    """One async pool per hot standby, taken in turn, each checked for the version it holds."""

    def __init__(self, settings: Settings, conninfos: list[str]) -> None:
        self._probes = [
            LayerVersionProbe(settings, conninfo=c, name=f"iocmap-standby-{i}")
            for i, c in enumerate(conninfos)
        ]
        self._down_until = [0.0] * len(self._probes)
        self._turn = itertools.count()
        self.stats = StandbyStats()

    def __len__(self) -> int:
        return len(self._probes)

    async def for_version(self, layer_id: int, data_version: int) -> LayerVersionProbe | None:
        """A standby that has replayed the layer up to `data_version`, or None (use the primary)."""
        n = len(self._probes)
        first = next(self._turn)
        for i in range(n):
            k = (first + i) % n
            if time.monotonic() < self._down_until[k]:
                continue
            probe = self._probes[k]
            try:
                row = await probe.fetchone(_REPLAYED, (layer_id,), prepare=True)
            except (UnavailableError, psycopg.Error) as exc:
                log.warning("standby %d unavailable for reads: %s", k, exc)
                self._down_until[k] = time.monotonic() + DOWN_S
                self.stats.unavailable += 1
                continue
            if row is not None and int(row[0]) >= data_version:
                self.stats.served += 1
                return probe
            self.stats.behind += 1
        return None

    def mark_down(self, probe: LayerVersionProbe) -> None:
        """A render on this standby failed: leave it alone for a while."""
        for k, p in enumerate(self._probes):
            if p is probe:
                self._down_until[k] = time.monotonic() + DOWN_S

    async def close(self) -> None:
        """Close every standby pool."""
        for probe in self._probes:
            await probe.close()
