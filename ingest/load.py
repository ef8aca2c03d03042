"""Atomic loads: binary COPY, then set-based SQL; a partition swap for replace and fresh layers.

Every change to the layer happens in the caller's single transaction, so a crash or kill at
any point leaves the layer as it was. A replacement partition is built beforehand on side
connections (see layers.features.partitions); a killed import leaves only that unattached table, which the
next import drops.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
import pyarrow as pa
from sqlalchemy import Connection

from ingest.validate import Early, Prepared
from layers.db import release_savepoint, rollback_to_savepoint, savepoint
from layers.features.partitions import (
    BuildSet,
    PartitionBuild,
    analyze_partition,
    lock_layer,
    partition_is_empty,
)
from layers.features.registry import mark_layer_changed
from layers.ingest.copy import CopyColumn
from layers.ingest.staging import (
    copy_into_stage,
    create_stage,
    delete_stage_rows,
    merge_stage,
    rewrite_stage_rows,
)

Mode = Literal["append", "upsert", "replace"]
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class LoadCounts:
    """What a load did to the layer."""

    inserted: int
    updated: int
    unchanged: int
    deleted: int
    strategy: str

    @property
    def changed(self) -> bool:
        """True when the layer's content moved."""
        return bool(self.inserted or self.updated or self.deleted)


def _columns(
    wkb: pa.Array,
    properties: pa.Table,
    source_key: pa.Array | None,
    observed_at: pa.Array | None,
    layer_id: int | None,
    batch_id: int,
    k: np.ndarray | None = None,
) -> list[CopyColumn]:
    n = len(wkb)
    cols = []
    if k is not None:
        cols.append(CopyColumn("int4", k))
    if layer_id is not None:
        cols.append(CopyColumn("int4", np.full(n, layer_id, dtype=np.int64)))
    cols += [
        CopyColumn("bytes", wkb),
        CopyColumn("json_table", properties),
        CopyColumn("bytes", source_key if source_key is not None else pa.nulls(n, pa.string())),
        CopyColumn(
            "timestamptz",
            observed_at if observed_at is not None else pa.nulls(n, pa.timestamp("us", tz="UTC")),
        ),
        CopyColumn("int8", np.full(n, batch_id, dtype=np.int64)),
        CopyColumn("lod_size", wkb),  # computed chunk by chunk, while the server works
    ]
    return cols


def copy_columns(prepared: Prepared, layer_id: int | None, batch_id: int) -> list[CopyColumn]:
    """COPY columns (layer_id?, geom, properties, source_key, observed_at, import_batch_id,
    lod_size)."""
    return _columns(
        prepared.wkb,
        prepared.properties,
        prepared.source_key,
        prepared.observed_at,
        layer_id,
        batch_id,
    )


def _copy_stage(
    conn: Connection, batch_id: int, cols: list[CopyColumn], n: int, progress: Progress | None
) -> None:
    done = [0]

    def sent(rows: int) -> None:
        done[0] = min(n, done[0] + rows)
        if progress:
            progress("copy", done[0], n)

    copy_into_stage(conn, batch_id, cols, n, sent)


def load(
    conn: Connection,
    layer_id: int,
    batch_id: int,
    prepared: Prepared,
    mode: Mode,
    builds: BuildSet,
    progress: Progress | None = None,
) -> LoadCounts:
    """Write the prepared rows into the layer in the caller's transaction.

    `builds` collects the side tables this creates; close it once the transaction ended.
    """
    lock_layer(conn, layer_id)
    n = prepared.count
    if progress:
        progress("encode", 0, n)
    if mode == "replace" or partition_is_empty(conn, layer_id):
        build = builds.open(conn, layer_id, batch_id)
        build.copy(copy_columns(prepared, layer_id, batch_id), n, progress)
        counts = _swap_in(conn, build, n, progress)
    else:
        create_stage(conn, batch_id)
        _copy_stage(
            conn,
            batch_id,
            _columns(
                prepared.wkb,
                prepared.properties,
                prepared.source_key,
                prepared.observed_at,
                None,
                batch_id,
                k=np.arange(n, dtype=np.int64),
            ),
            n,
            progress,
        )
        counts = _merge(conn, layer_id, batch_id, n, mode, progress)
    return _finish_load(conn, layer_id, counts, n, progress)


def _finish_load(
    conn: Connection, layer_id: int, counts: LoadCounts, n: int, progress: Progress | None
) -> LoadCounts:
    if counts.changed:
        mark_layer_changed(conn, layer_id)
    if progress:
        progress("done", n, n)
    return counts


def _swap_in(
    conn: Connection, build: PartitionBuild, n: int, progress: Progress | None
) -> LoadCounts:
    """Index the loaded build table, then swap it in as the layer's partition."""
    plans = build.build_indexes(progress, n)
    if progress:
        progress("swap", n, n)
    before = build.swap(conn, plans)
    analyze_partition(conn, build.layer_id)
    return LoadCounts(n, 0, 0, before, "partition_swap")


def _merge(
    conn: Connection,
    layer_id: int,
    batch_id: int,
    n: int,
    mode: Mode,
    progress: Progress | None,
) -> LoadCounts:
    """One INSERT (append) or upsert statement from the staging table into the layer."""
    if progress:
        progress("merge", 0, n)
    inserted, updated = merge_stage(
        conn, layer_id, batch_id, "upsert" if mode == "upsert" else "append"
    )
    return LoadCounts(
        int(inserted), int(updated), n - int(inserted) - int(updated), 0, f"stage_{mode}"
    )


# Beyond this many fixes (and this share of the rows), redoing the load beats patching it.
EARLY_MAX_FIXES = 1000
EARLY_MAX_FIX_SHARE = 0.02


class _Fixes(NamedTuple):
    kept: np.ndarray  # source positions of the rows validation kept
    drop: np.ndarray  # positions in the COPY of rows to delete
    add: np.ndarray  # positions among kept rows never sent
    upd: np.ndarray  # positions among kept rows sent, then rewritten


class EarlyLoad:
    """A COPY that starts while validation is still running, on the server's own cores.

    prepare(early=...) hands over transformed rows with final properties. For a swap they are
    COPYed into the build table on side connections (see layers.features.partitions); otherwise a thread
    COPYs them into the staging table under a savepoint of the caller's transaction. When
    validation ends, rows it quarantined are deleted, rows it rewrote are updated and rows it
    kept but never sent are added; if those fixes are many, or the COPY failed, the early
    work is thrown away and the ordinary load runs.
    """

    SAVEPOINT = "ingest_early"

    def __init__(self, conn: Connection, batch_id: int, mode: Mode, builds: BuildSet) -> None:
        """Nothing starts until start(); `builds` is closed by the caller after its
        transaction."""
        self.conn = conn
        self.batch_id = batch_id
        self.mode = mode
        self.builds = builds
        self.layer_id: int | None = None
        self.build: PartitionBuild | None = None
        self.rows: np.ndarray | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._copy_seconds = 0.0

    @property
    def started(self) -> bool:
        """True once a COPY has been started."""
        return self._thread is not None or self.build is not None

    @property
    def copy_seconds(self) -> float:
        """How long the early COPY ran (for the report's timings)."""
        return self.build.copy_seconds if self.build is not None else self._copy_seconds

    def start(self, layer_id: int, early: Early) -> None:
        """Lock the layer, create the target table and start COPYing the early rows."""
        conn = self.conn
        lock_layer(conn, layer_id)
        self.layer_id = layer_id
        self.rows = early.rows
        n = len(early.rows)
        if self.mode == "replace" or partition_is_empty(conn, layer_id):
            self.build = self.builds.open(conn, layer_id, self.batch_id)
            self.build.start_copy(
                _columns(
                    early.wkb, early.properties, early.source_key, early.observed_at,
                    layer_id, self.batch_id,
                ),
                n,
            )  # fmt: skip
            return
        savepoint(conn, self.SAVEPOINT)
        create_stage(conn, self.batch_id)
        cols = _columns(
            early.wkb, early.properties, early.source_key, early.observed_at,
            None, self.batch_id, k=np.arange(n, dtype=np.int64),
        )  # fmt: skip

        def run() -> None:
            t0 = time.perf_counter()
            try:
                _copy_stage(conn, self.batch_id, cols, n, None)
            except BaseException as exc:  # handed to the main thread in finish()
                self._error = exc
            self._copy_seconds = round(time.perf_counter() - t0, 3)

        self._thread = threading.Thread(target=run, name="iocmap-early-copy", daemon=True)
        self._thread.start()

    def wait(self) -> None:
        """Wait for the COPY threads (call before using the connection again)."""
        if self._thread is not None:
            self._thread.join()
        if self.build is not None:
            error = self.build.wait()
            self._error = self._error or error

    def _abandon(self) -> None:
        if self.build is not None:
            self.builds.discard(self.build)
            self.build = None
        else:
            rollback_to_savepoint(self.conn, self.SAVEPOINT)
        self._thread = None

    def finish(self, prepared: Prepared, progress: Progress | None = None) -> LoadCounts | None:
        """Fix up and complete the load; None if the caller must run the ordinary load."""
        self.wait()
        assert self.layer_id is not None and self.rows is not None
        sent = self.rows
        if self._error is not None or prepared.early_rows is None:
            self._abandon()
            return None
        n = prepared.count
        kept = np.asarray(prepared.row_numbers, dtype=np.int64) - 1
        drop = np.flatnonzero(~np.isin(sent, kept))  # positions in the COPY
        was_sent = np.isin(kept, sent)
        add = np.flatnonzero(~was_sent)  # positions among kept rows
        rewritten = np.zeros(n, dtype=bool) if prepared.rewritten is None else prepared.rewritten
        upd = np.flatnonzero(rewritten & was_sent)  # positions among kept rows
        if len(drop) + len(add) + len(upd) > max(EARLY_MAX_FIXES, EARLY_MAX_FIX_SHARE * len(sent)):
            self._abandon()
            return None
        if progress:
            progress("copy", n, n)
        if self.build is not None:
            self._fix_build(self.build, prepared, _Fixes(kept, drop, add, upd))
            counts = _swap_in(self.conn, self.build, n, progress)
        else:
            release_savepoint(self.conn, self.SAVEPOINT)
            self._fix_stage(prepared, _Fixes(kept, drop, add, upd))
            counts = _merge(self.conn, self.layer_id, self.batch_id, n, self.mode, progress)
        return _finish_load(self.conn, self.layer_id, counts, n, progress)

    @staticmethod
    def _added(prepared: Prepared, add: np.ndarray) -> tuple[Any, Any, Any, Any]:
        sel = pa.array(add, pa.int64())
        return (
            prepared.wkb.take(sel),
            prepared.properties.take(sel),
            None if prepared.source_key is None else prepared.source_key.take(sel),
            None if prepared.observed_at is None else prepared.observed_at.take(sel),
        )

    def _fix_build(self, build: PartitionBuild, prepared: Prepared, fixes: _Fixes) -> None:
        """Make the build table hold exactly the prepared rows (committed before indexing)."""
        assert self.rows is not None and self.layer_id is not None
        kept, drop, add, upd = fixes
        upd_ids = build.ids_at(np.searchsorted(self.rows, kept[upd]))
        upd_wkb = prepared.wkb.take(pa.array(upd, pa.int64())).to_pylist() if len(upd) else []
        drop_ids = build.ids_at(drop)
        cols = (
            _columns(*self._added(prepared, add), self.layer_id, self.batch_id)
            if len(add)
            else None
        )
        build.fix(upd_ids, upd_wkb, drop_ids, cols, len(add))

    def _fix_stage(self, prepared: Prepared, fixes: _Fixes) -> None:
        """Delete, update and add rows so the staging table holds exactly the prepared rows."""
        assert self.rows is not None
        kept, drop, add, upd = fixes
        conn = self.conn
        if len(upd):
            at = np.searchsorted(self.rows, kept[upd])
            wkb = prepared.wkb.take(pa.array(upd, pa.int64())).to_pylist()
            rewrite_stage_rows(conn, self.batch_id, [int(v) for v in at], wkb)
        if len(drop):
            delete_stage_rows(conn, self.batch_id, [int(v) for v in drop])
        if len(add):
            # Stage positions past the early ones; merge order follows k.
            k = len(self.rows) + np.arange(len(add), dtype=np.int64)
            cols = _columns(*self._added(prepared, add), None, self.batch_id, k=k)
            _copy_stage(conn, self.batch_id, cols, len(add), None)
