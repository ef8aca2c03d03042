"""Atomic loads: binary COPY, then set-based SQL; a partition swap for replace and fresh layers.

Everything for one import happens in the caller's single transaction, so a crash or kill
at any point leaves the layer as it was (the new tables vanish with the rollback).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import orjson
import pyarrow as pa
from psycopg.copy import QueuedLibpqWriter
from sqlalchemy import Connection, text

from ingest.copybin import CopyColumn, iter_copy_chunks
from ingest.validate import Prepared
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


def copy_columns(prepared: Prepared, layer_id: int | None, batch_id: int) -> list[CopyColumn]:
    """COPY columns (layer_id?, geom, properties, source_key, observed_at, import_batch_id)."""
    n = prepared.count
    cols = []
    if layer_id is not None:
        cols.append(CopyColumn("int4", np.full(n, layer_id, dtype=np.int64)))
    cols += [
        CopyColumn("bytes", prepared.wkb),
        CopyColumn("json_table", prepared.properties),
        CopyColumn(
            "bytes",
            prepared.source_key if prepared.source_key is not None else pa.nulls(n, pa.string()),
        ),
        CopyColumn(
            "timestamptz",
            prepared.observed_at
            if prepared.observed_at is not None
            else pa.nulls(n, pa.timestamp("us", tz="UTC")),
        ),
        CopyColumn("int8", np.full(n, batch_id, dtype=np.int64)),
    ]
    return cols


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


def _partition_is_empty(conn: Connection, layer_id: int) -> bool:
    part = quote_ident(partition_name(layer_id))
    sql = f"SELECT NOT EXISTS (SELECT 1 FROM {part})"  # noqa: S608  (quoted identifier)
    return conn.execute(text(sql)).scalar_one() is True


def load(
    conn: Connection,
    layer_id: int,
    batch_id: int,
    prepared: Prepared,
    mode: Mode,
    progress: Progress | None = None,
) -> LoadCounts:
    """Write the prepared rows into the layer in the caller's transaction."""
    # One import per layer at a time; readers are not blocked by this row lock.
    conn.execute(text("SELECT id FROM layer WHERE id = :id FOR UPDATE"), {"id": layer_id})
    n = prepared.count
    if progress:
        progress("encode", 0, n)
    if mode == "replace" or _partition_is_empty(conn, layer_id):
        counts = _swap_partition(conn, layer_id, batch_id, prepared, progress)
    else:
        counts = _stage_and_merge(conn, layer_id, batch_id, prepared, mode, progress)
    if counts.changed:
        mark_layer_changed(conn, layer_id)
    if progress:
        progress("done", n, n)
    return counts


def _swap_partition(
    conn: Connection,
    layer_id: int,
    batch_id: int,
    prepared: Prepared,
    progress: Progress | None,
) -> LoadCounts:
    """COPY into a new table, index it in bulk, then swap it in as the layer's partition."""
    n = prepared.count
    new = f"ingest_new_{batch_id}"
    new_q = quote_ident(new)
    old_q = quote_ident(partition_name(layer_id))
    lid = int(layer_id)  # DDL takes no bind parameters; an int from our own sequence
    conn.execute(text(f"CREATE TABLE {new_q} (LIKE feature INCLUDING DEFAULTS)"))
    cols = copy_columns(prepared, layer_id, batch_id)
    _copy(
        conn,
        new_q,
        "layer_id, geom, properties, source_key, observed_at, import_batch_id",
        cols,
        n,
        progress,
    )
    if progress:
        progress("index", 0, n)
    # Indexes and constraints matching the parent's, so ATTACH adopts them without a rebuild.
    for ddl in (
        f"ALTER TABLE {new_q} ADD CONSTRAINT {quote_ident(new + '_pk')} PRIMARY KEY (layer_id, id)",
        f"ALTER TABLE {new_q} ADD CONSTRAINT {quote_ident(new + '_key')} "
        "UNIQUE (layer_id, source_key)",
        f"CREATE INDEX {quote_ident(new + '_geom')} ON {new_q} USING gist (geom)",
        f"CREATE INDEX {quote_ident(new + '_obs')} ON {new_q} (layer_id, observed_at)",
        f"ALTER TABLE {new_q} ADD CONSTRAINT {quote_ident(new + '_layer')} "
        f"CHECK (layer_id IS NOT NULL AND layer_id = {lid})",
        f"ALTER TABLE {new_q} ADD CONSTRAINT {quote_ident(new + '_fk_layer')} "
        "FOREIGN KEY (layer_id) REFERENCES layer (id) ON DELETE CASCADE",
        f"ALTER TABLE {new_q} ADD CONSTRAINT {quote_ident(new + '_fk_batch')} "
        "FOREIGN KEY (import_batch_id) REFERENCES import_batch (id) ON DELETE SET NULL",
    ):
        conn.execute(text(ddl))
    count_sql = f"SELECT count(*) FROM {old_q}"  # noqa: S608  (quoted identifier)
    before = conn.execute(text(count_sql)).scalar_one()
    if progress:
        progress("swap", n, n)
    conn.execute(text(f"ALTER TABLE feature DETACH PARTITION {old_q}"))
    conn.execute(text(f"DROP TABLE {old_q}"))
    conn.execute(text(f"ALTER TABLE {new_q} RENAME TO {old_q}"))
    part = partition_name(layer_id)
    for suffix, final in (("_pk", "_pkey"), ("_key", "_layer_id_source_key_key")):
        conn.execute(
            text(
                f"ALTER TABLE {old_q} RENAME CONSTRAINT {quote_ident(new + suffix)} "
                f"TO {quote_ident(part + final)}"
            )
        )
    for suffix, final in (("_geom", "_geom_idx"), ("_obs", "_layer_id_observed_at_idx")):
        conn.execute(
            text(f"ALTER INDEX {quote_ident(new + suffix)} RENAME TO {quote_ident(part + final)}")
        )
    conn.execute(text(f"ALTER TABLE feature ATTACH PARTITION {old_q} FOR VALUES IN ({lid})"))
    conn.execute(text(f"ANALYZE {old_q}"))
    return LoadCounts(n, 0, 0, int(before), "partition_swap")


def _stage_and_merge(
    conn: Connection,
    layer_id: int,
    batch_id: int,
    prepared: Prepared,
    mode: Mode,
    progress: Progress | None,
) -> LoadCounts:
    """COPY into an UNLOGGED staging table, then one INSERT (append) or upsert statement."""
    n = prepared.count
    stage_q = quote_ident(f"ingest_stage_{batch_id}")
    conn.execute(
        text(
            f"CREATE UNLOGGED TABLE {stage_q} (geom geometry(Geometry, 4326) NOT NULL, "
            "properties jsonb NOT NULL, source_key text, observed_at timestamptz, "
            "import_batch_id bigint)"
        )
    )
    cols = copy_columns(prepared, None, batch_id)
    _copy(
        conn,
        stage_q,
        "geom, properties, source_key, observed_at, import_batch_id",
        cols,
        n,
        progress,
    )
    if progress:
        progress("merge", 0, n)
    params = {"layer_id": layer_id, "batch_id": batch_id}
    if mode == "upsert":
        inserted, updated = conn.execute(
            text(
                f"""
                WITH upserted AS (
                    INSERT INTO feature AS f
                        (layer_id, geom, properties, source_key, observed_at, import_batch_id)
                    SELECT :layer_id, s.geom, s.properties, s.source_key, s.observed_at, :batch_id
                    FROM {stage_q} s
                    ON CONFLICT (layer_id, source_key) DO UPDATE
                       SET geom = EXCLUDED.geom, properties = EXCLUDED.properties,
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
                    (layer_id, geom, properties, source_key, observed_at, import_batch_id)
                SELECT :layer_id, s.geom, s.properties, s.source_key, s.observed_at, :batch_id
                FROM {stage_q} s
                ON CONFLICT (layer_id, source_key) DO NOTHING
                """  # noqa: S608
            ),
            params,
        ).rowcount
        updated = 0
    conn.execute(text(f"DROP TABLE {stage_q}"))
    return LoadCounts(
        int(inserted), int(updated), n - int(inserted) - int(updated), 0, f"stage_{mode}"
    )


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
    return [
        {
            "row": int(r["row_number"]),
            "reason": r["reason"],
            "detail": r["detail"],
            "original": r["original"],
        }
        for r in rows
    ]
