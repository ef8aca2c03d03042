"""Atomic loads: binary COPY, then set-based SQL; a partition swap for replace and fresh layers.

Every change to the layer happens in the caller's single transaction, so a crash or kill at
any point leaves the layer as it was. A replacement partition is built beforehand on side
connections (see ingest.build); a killed import leaves only that unattached table, which the
next import drops.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
import orjson
import pyarrow as pa
from psycopg.copy import QueuedLibpqWriter
from sqlalchemy import Connection, text

from ingest.build import BuildSet, PartitionBuild
from ingest.copybin import CopyColumn, iter_copy_chunks
from ingest.validate import Early, Prepared
from layers.models import import_batch
from layers.models.ingest import import_reject
from layers.registry import mark_layer_changed, partition_name
from layers.sql import quote_ident

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


_STAGE_COLUMNS = "k, geom, properties, source_key, observed_at, import_batch_id, lod_size"


def _copy(
    conn: Connection,
    table: str,
    columns: str,
    cols: list[CopyColumn],
    n: int,
    progress: Progress | None,
) -> None:
    raw = conn.connection.driver_connection
    assert raw is not None
    done = 0
    chunk = 50_000
    # Identifiers only: `table` and `columns` are our own generated, quoted names.
    with (
        raw.cursor() as cur,
        cur.copy(
            f"COPY {table} ({columns}) FROM STDIN (FORMAT binary)",
            writer=QueuedLibpqWriter(cur),  # a thread feeds the server while we encode
        ) as cp,
    ):
        for part in iter_copy_chunks(cols, n, chunk_rows=chunk):
            cp.write(part)
            if len(part) > 20:
                done = min(n, done + chunk)
                if progress:
                    progress("copy", done, n)


_ANALYZE_COLUMNS = "geom, layer_id, id, source_key, observed_at, import_batch_id"


def _partition_is_empty(conn: Connection, layer_id: int) -> bool:
    part = quote_ident(partition_name(layer_id))
    sql = f"SELECT NOT EXISTS (SELECT 1 FROM {part})"  # noqa: S608  (quoted identifier)
    return conn.execute(text(sql)).scalar_one() is True


def _lock_layer(conn: Connection, layer_id: int) -> None:
    # One import per layer at a time; readers are not blocked by this row lock.
    conn.execute(text("SELECT id FROM layer WHERE id = :id FOR UPDATE"), {"id": layer_id})


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
    _lock_layer(conn, layer_id)
    n = prepared.count
    if progress:
        progress("encode", 0, n)
    if mode == "replace" or _partition_is_empty(conn, layer_id):
        build = builds.open(conn, layer_id, batch_id)
        build.copy(copy_columns(prepared, layer_id, batch_id), n, progress)
        counts = _swap_in(conn, build, n, progress)
    else:
        _create_stage(conn, batch_id)
        _copy(
            conn,
            _stage_table(batch_id),
            _STAGE_COLUMNS,
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


def _stage_table(batch_id: int) -> str:
    return quote_ident(f"ingest_stage_{batch_id}")


def _swap_in(
    conn: Connection, build: PartitionBuild, n: int, progress: Progress | None
) -> LoadCounts:
    """Index the loaded build table, then swap it in as the layer's partition."""
    plans = build.build_indexes(progress, n)
    if progress:
        progress("swap", n, n)
    before = build.swap(conn, plans)
    # Statistics for the planner now, except the jsonb column whose sort dominates ANALYZE
    # (autovacuum fills it in later).
    part = quote_ident(partition_name(build.layer_id))
    conn.execute(text(f"ANALYZE {part} ({_ANALYZE_COLUMNS})"))
    return LoadCounts(n, 0, 0, before, "partition_swap")


def _create_stage(conn: Connection, batch_id: int) -> None:
    """An UNLOGGED staging table; `k` is the row's position in the COPY."""
    conn.execute(
        text(
            f"CREATE UNLOGGED TABLE {_stage_table(batch_id)} (k int NOT NULL, "
            "geom geometry(Geometry, 4326) NOT NULL, properties jsonb NOT NULL, "
            "source_key text, observed_at timestamptz, import_batch_id bigint, "
            "lod_size double precision)"
        )
    )


def _merge(
    conn: Connection,
    layer_id: int,
    batch_id: int,
    n: int,
    mode: Mode,
    progress: Progress | None,
) -> LoadCounts:
    """One INSERT (append) or upsert statement from the staging table into the layer."""
    stage_q = _stage_table(batch_id)
    if progress:
        progress("merge", 0, n)
    params = {"layer_id": layer_id, "batch_id": batch_id}
    if mode == "upsert":
        inserted, updated = conn.execute(
            text(
                f"""
                WITH upserted AS (
                    INSERT INTO feature AS f
                        (layer_id, geom, properties, source_key, observed_at, import_batch_id,
                         lod_size)
                    SELECT :layer_id, s.geom, s.properties, s.source_key, s.observed_at, :batch_id,
                           s.lod_size
                    FROM {stage_q} s
                    ON CONFLICT (layer_id, source_key) WHERE source_key IS NOT NULL DO UPDATE
                       SET geom = EXCLUDED.geom, lod_size = EXCLUDED.lod_size,
                           properties = EXCLUDED.properties,
                           observed_at = EXCLUDED.observed_at,
                           import_batch_id = EXCLUDED.import_batch_id, updated_at = now()
                     WHERE ST_AsEWKB(f.geom) IS DISTINCT FROM ST_AsEWKB(EXCLUDED.geom)
                        OR f.properties IS DISTINCT FROM EXCLUDED.properties
                        OR f.observed_at IS DISTINCT FROM EXCLUDED.observed_at
                    -- xmax is unavailable on partitioned tables; rows created now are new.
                    RETURNING (f.created_at = now()) AS inserted
                )
                SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted)
                FROM upserted
                """  # noqa: S608  (identifiers quoted; values bound)
            ),
            params,
        ).one()
    else:
        inserted = conn.execute(
            text(
                f"""
                INSERT INTO feature
                    (layer_id, geom, properties, source_key, observed_at, import_batch_id,
                     lod_size)
                SELECT :layer_id, s.geom, s.properties, s.source_key, s.observed_at, :batch_id,
                       s.lod_size
                FROM {stage_q} s
                ON CONFLICT (layer_id, source_key) WHERE source_key IS NOT NULL DO NOTHING
                """  # noqa: S608
            ),
            params,
        ).rowcount
        updated = 0
    conn.execute(text(f"DROP TABLE {stage_q}"))
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
    COPYed into the build table on side connections (see ingest.build); otherwise a thread
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
        _lock_layer(conn, layer_id)
        self.layer_id = layer_id
        self.rows = early.rows
        n = len(early.rows)
        if self.mode == "replace" or _partition_is_empty(conn, layer_id):
            self.build = self.builds.open(conn, layer_id, self.batch_id)
            self.build.start_copy(
                _columns(
                    early.wkb, early.properties, early.source_key, early.observed_at,
                    layer_id, self.batch_id,
                ),
                n,
            )  # fmt: skip
            return
        conn.execute(text(f"SAVEPOINT {self.SAVEPOINT}"))
        _create_stage(conn, self.batch_id)
        cols = _columns(
            early.wkb, early.properties, early.source_key, early.observed_at,
            None, self.batch_id, k=np.arange(n, dtype=np.int64),
        )  # fmt: skip

        def run() -> None:
            t0 = time.perf_counter()
            try:
                _copy(conn, _stage_table(self.batch_id), _STAGE_COLUMNS, cols, n, None)
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
            self.conn.execute(text(f"ROLLBACK TO SAVEPOINT {self.SAVEPOINT}"))
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
            self.conn.execute(text(f"RELEASE SAVEPOINT {self.SAVEPOINT}"))
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
        table = _stage_table(self.batch_id)
        if len(upd):
            at = np.searchsorted(self.rows, kept[upd])
            wkb = prepared.wkb.take(pa.array(upd, pa.int64())).to_pylist()
            conn.execute(
                text(
                    # No trigger on this table: the size is recomputed here (0008_lod_size).
                    f"UPDATE {table} t SET geom = ST_SetSRID(ST_GeomFromWKB(u.wkb), 4326), "  # noqa: S608
                    "lod_size = feature_lod_size(ST_GeomFromWKB(u.wkb)) "
                    "FROM unnest(CAST(:ks AS int[]), CAST(:wkbs AS bytea[])) AS u(k, wkb) "
                    "WHERE t.k = u.k"
                ),
                {"ks": [int(v) for v in at], "wkbs": wkb},
            )
        if len(drop):
            conn.execute(
                text(f"DELETE FROM {table} WHERE k = ANY(CAST(:ks AS int[]))"),  # noqa: S608
                {"ks": [int(v) for v in drop]},
            )
        if len(add):
            # Stage positions past the early ones; merge order follows k.
            k = len(self.rows) + np.arange(len(add), dtype=np.int64)
            cols = _columns(*self._added(prepared, add), None, self.batch_id, k=k)
            _copy(conn, table, _STAGE_COLUMNS, cols, len(add), None)


def create_batch(
    conn: Connection,
    *,
    layer_id: int | None,
    source: str,
    actor: str,
    mode: str,
    kind: str = "file",
    connector: str | None = None,
    attempts: int = 1,
) -> int:
    """Record a running batch (commit it before the load, so failures stay visible)."""
    return int(
        conn.execute(
            import_batch.insert()
            .values(
                layer_id=layer_id,
                source=source,
                actor=actor,
                mode=mode,
                kind=kind,
                connector=connector,
                attempts=attempts,
                status="running",
            )
            .returning(import_batch.c.id)
        ).scalar_one()
    )


def finish_batch(
    conn: Connection,
    batch_id: int,
    *,
    status: str,
    counts: dict[str, Any],
    report: dict[str, Any],
    errors: list[str] | None = None,
    layer_id: int | None = None,
) -> None:
    """Mark a batch succeeded or failed, with its counts and report."""
    values: dict[str, Any] = {
        "status": status,
        "counts": counts,
        "report": report,
        "errors": errors or [],
        "finished_at": text("now()"),
    }
    if layer_id is not None:
        values["layer_id"] = layer_id
    conn.execute(import_batch.update().where(import_batch.c.id == batch_id).values(**values))


def set_progress(conn: Connection, batch_id: int, progress: dict[str, Any]) -> None:
    """Store a running batch's progress (separate, autocommitted connection)."""
    conn.execute(
        import_batch.update().where(import_batch.c.id == batch_id).values(progress=progress)
    )


def write_rejects(
    conn: Connection,
    batch_id: int,
    rows: list[tuple[int, str, str, dict[str, Any]]],
) -> None:
    """Store quarantined rows (row number, reason, detail, original values) via COPY."""
    if not rows:
        return
    raw = conn.connection.driver_connection
    assert raw is not None
    with (
        raw.cursor() as cur,
        cur.copy(
            "COPY import_reject (batch_id, row_number, reason, detail, original) FROM STDIN"
        ) as cp,
    ):
        for row_number, reason, detail, original in rows:
            cp.write_row(
                (
                    batch_id,
                    row_number,
                    reason,
                    detail,
                    orjson.dumps(original, option=orjson.OPT_NON_STR_KEYS, default=str).decode(),
                )
            )


def list_rejects(conn: Connection, batch_id: int, limit: int = 1000) -> list[dict[str, Any]]:
    """Quarantined rows of a batch, in row order."""
    rows = conn.execute(
        import_reject.select()
        .where(import_reject.c.batch_id == batch_id)
        .order_by(import_reject.c.row_number)
        .limit(limit)
    ).mappings()
    out = []
    for r in rows:
        field, value = _field_value(r["detail"])
        out.append(
            {
                "row": int(r["row_number"]),
                "reason": r["reason"],
                "field": field,
                "value": value,
                "detail": r["detail"],
                "original": r["original"],
            }
        )
    return out


_BAD_VALUE = re.compile(r"^'(?P<field>[^']+)': (?P<value>.*) is not ")


def _field_value(detail: str | None) -> tuple[str | None, str | None]:
    """The column and the offending value named in a reject's detail ("'f': 'v' is not …")."""
    m = _BAD_VALUE.match(detail or "")
    if m is None:
        return None, None
    raw = m.group("value")
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        raw = raw[1:-1]
    return m.group("field"), raw
