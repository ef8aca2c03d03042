"""Feature partitions: one LIST partition of `feature` per layer, its DDL, and the build of a
replacement partition, loaded and indexed on side connections, then swapped in.

The table is committed but attached to nothing, so no reader sees it, and several server
processes can COPY into it and build its indexes at once: on two cores the index stage takes
about as long as its largest index instead of the sum of all. The swap itself runs in the
import's own transaction, so the layer still changes whole or not at all.

A killed import leaves only this table behind. It is owned through a session advisory lock
held by the import's connection; the next import drops every build table whose owner is gone.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import psycopg
from sqlalchemy import Connection, Engine, text

from layers.db import engine_conninfo
from layers.ingest.copy import CopyColumn, copy_binary_raw
from layers.sql import quote_ident

Progress = Callable[[str, int, int], None]
log = logging.getLogger(__name__)

BUILD_PREFIX = "ingest_build_"
FEATURE_COLUMNS = "layer_id, geom, properties, source_key, observed_at, import_batch_id, lod_size"
# Advisory-lock keys of import builds: this namespace in the high half, the batch id below.
_LOCK_NAMESPACE = 0x10C0 << 32
# Two server processes: the machine class this targets has two cores, and more connections
# only queue on them. Small loads use one (a second connection costs more than it saves).
WORKERS = 2
MIN_ROWS_PER_WORKER = 20_000
_CHUNK_ROWS = 50_000
# Rough relative cost of building one index, for spreading them over the connections.
_GIST_COST, _BTREE_COST, _PARTIAL_COST = 3.0, 1.0, 0.5


def partition_name(layer_id: int) -> str:
    """Name of the feature partition that holds one layer's rows."""
    return f"feature_l{layer_id}"


def ensure_partition(conn: Connection, layer_id: int) -> None:
    """Create the layer's LIST partition of `feature` if it is missing."""
    name = partition_name(layer_id)
    exists = conn.execute(text("SELECT to_regclass(:name)"), {"name": name}).scalar()
    if exists is None:
        # DDL cannot take bind parameters; layer_id is an int from our own sequence.
        conn.execute(
            text(
                f"CREATE TABLE {quote_ident(name)} PARTITION OF feature "
                f"FOR VALUES IN ({int(layer_id)})"
            )
        )


def drop_partition(conn: Connection, layer_id: int) -> None:
    """Drop a layer's partition and its rows (the layer row is the caller's)."""
    conn.execute(text(f"DROP TABLE IF EXISTS {quote_ident(partition_name(layer_id))}"))


def lock_layer(conn: Connection, layer_id: int) -> None:
    """Row-lock the layer for the transaction: one import per layer at a time.

    Readers are not blocked by this row lock.
    """
    conn.execute(text("SELECT id FROM layer WHERE id = :id FOR UPDATE"), {"id": layer_id})


def partition_is_empty(conn: Connection, layer_id: int) -> bool:
    """True when the layer's partition holds no row."""
    part = quote_ident(partition_name(layer_id))
    sql = f"SELECT NOT EXISTS (SELECT 1 FROM {part})"  # noqa: S608  (quoted identifier)
    return conn.execute(text(sql)).scalar_one() is True


_ANALYZE_COLUMNS = "geom, layer_id, id, source_key, observed_at, import_batch_id"


def analyze_partition(conn: Connection, layer_id: int) -> None:
    """Planner statistics for a freshly loaded partition.

    The jsonb column is left out: its sort dominates ANALYZE, and autovacuum fills it in later.
    """
    part = quote_ident(partition_name(layer_id))
    conn.execute(text(f"ANALYZE {part} ({_ANALYZE_COLUMNS})"))


def build_table_name(batch_id: int) -> str:
    """The build table of one import batch."""
    return f"{BUILD_PREFIX}{int(batch_id)}"


def _lock_key(batch_id: int) -> int:
    return _LOCK_NAMESPACE | int(batch_id)


def _connect(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True, application_name="iocmap-import")


def sweep_orphan_builds(conn: psycopg.Connection) -> list[str]:
    """Drop the build tables of imports that died (nobody holds their lock); return them."""
    rows = conn.execute(
        "SELECT relname FROM pg_class WHERE relkind = 'r' AND NOT relispartition "
        "AND relname LIKE %s",
        (BUILD_PREFIX.replace("_", "\\_") + "%",),
    ).fetchall()
    dropped = []
    for (name,) in rows:
        suffix = name[len(BUILD_PREFIX) :]
        if not suffix.isdigit():
            continue
        key = _lock_key(int(suffix))
        got = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
        if not (got and got[0]):
            continue  # a live import owns it
        try:
            conn.execute(f"DROP TABLE IF EXISTS {quote_ident(name)}")
            dropped.append(name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
    return dropped


def sweep_orphans(engine: Engine) -> list[str]:
    """sweep_orphan_builds on a connection of its own (e.g. when a command starts)."""
    url = engine_conninfo(engine)
    with _connect(url) as conn:
        return sweep_orphan_builds(conn)


@dataclass(frozen=True)
class _ParentIndex:
    name: str
    unique: bool
    body: str  # "<method> (<keys>) [WHERE …]", the catalog's own text
    constraint: str | None  # "p" (primary key) or "u" (unique) when the index backs one
    cost: float


@dataclass(frozen=True)
class FeatureTemplate:
    """The parent table's columns and indexes, as a build table must repeat them."""

    columns_sql: str
    indexes: tuple[_ParentIndex, ...]


def read_feature_template(conn: Connection) -> FeatureTemplate:
    """Read `feature`'s definition; call it outside any transaction that changes the table
    (catalog deparsing locks it, and an import's transaction may hold it exclusively)."""
    columns = conn.execute(
        text(
            """
            SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                   pg_get_expr(d.adbin, d.adrelid)
            FROM pg_attribute a
            LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
            WHERE a.attrelid = 'feature'::regclass AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY a.attnum
            """
        )
    ).all()
    # Types and default expressions are the catalog's own text.
    columns_sql = ", ".join(
        f"{quote_ident(name)} {type_sql}"
        + (" NOT NULL" if not_null else "")
        + (f" DEFAULT {default}" if default is not None else "")
        for name, type_sql, not_null, default in columns
    )
    rows = conn.execute(
        text(
            """
            SELECT c.relname, pg_get_indexdef(i.indexrelid), con.contype, am.amname,
                   i.indpred IS NOT NULL
            FROM pg_index i
            JOIN pg_class c ON c.oid = i.indexrelid
            JOIN pg_am am ON am.oid = c.relam
            LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid
                                       AND con.conrelid = i.indrelid
            WHERE i.indrelid = 'feature'::regclass
            ORDER BY c.relname
            """
        )
    ).all()
    indexes = []
    for parent_name, definition, contype, method, partial in rows:
        # "CREATE [UNIQUE] INDEX name ON ONLY public.feature USING <method, keys, WHERE>":
        # from USING on it is repeated verbatim, so ATTACH finds the definitions equal.
        head, sep, body = str(definition).partition(" USING ")
        if not sep:
            continue  # not a form we know: ATTACH builds this one itself
        cost = _PARTIAL_COST if partial else (_GIST_COST if method == "gist" else _BTREE_COST)
        indexes.append(
            _ParentIndex(
                name=str(parent_name),
                unique=head.startswith("CREATE UNIQUE"),
                body=body,
                constraint=contype if contype in ("p", "u") else None,
                cost=cost,
            )
        )
    return FeatureTemplate(columns_sql, tuple(indexes))


@dataclass(frozen=True)
class _IndexPlan:
    name: str
    ddl: str
    constraint: str | None  # "p" (primary key) or "u" (unique) when the parent's is one
    final_name: str  # its name once the table is the layer's partition
    cost: float


class PartitionBuild:
    """The table that will become one layer's partition, and the connections building it."""

    def __init__(
        self, conn: Connection, template: FeatureTemplate, layer_id: int, batch_id: int
    ) -> None:
        """Sweep orphans, then create the (committed, unattached) build table."""
        self.template = template
        self.layer_id = int(layer_id)
        self.batch_id = int(batch_id)
        self.name = build_table_name(batch_id)
        self.table = quote_ident(self.name)
        self.url = engine_conninfo(conn.engine)
        self.owner = _connect(self.url)
        self.copy_seconds = 0.0
        self._parts: list[tuple[int, int]] = []  # (xmin of a COPY, its first row position)
        self._threads: list[threading.Thread] = []
        self._errors: list[BaseException] = []
        self._copied = 0
        self._mutex = threading.Lock()
        try:
            self.owner.execute("SELECT pg_advisory_lock(%s)", (_lock_key(batch_id),))
            sweep_orphan_builds(self.owner)
            self.owner.execute(f"DROP TABLE IF EXISTS {self.table}")  # an abandoned attempt
            # The CHECK is declared up front, so COPY tests it per row and ATTACH needs no scan.
            # DDL takes no bind parameters; layer_id is an int from our own sequence.
            self.owner.execute(
                f"CREATE TABLE {self.table} ({template.columns_sql}, "
                f"CONSTRAINT {quote_ident(self.name + '_layer')} "
                f"CHECK (layer_id IS NOT NULL AND layer_id = {self.layer_id})) "
                # Autovacuum would only compete for the cores (and block CREATE INDEX).
                "WITH (autovacuum_enabled = false)"
            )
        except BaseException:
            self.owner.close()
            raise

    # --- COPY ------------------------------------------------------------------------------

    def start_copy(self, cols: Sequence[CopyColumn], n: int) -> None:
        """Start COPYing rows 0..n-1 of `cols`, split over the workers; returns at once."""
        workers = max(1, min(WORKERS, n // MIN_ROWS_PER_WORKER))
        bounds = np.linspace(0, n, workers + 1).astype(np.int64)
        started = time.perf_counter()
        for first, stop in zip(bounds[:-1], bounds[1:], strict=True):
            thread = threading.Thread(
                target=self._copy_part,
                args=(cols, int(first), int(stop - first), started),
                name="iocmap-build-copy",
                daemon=True,
            )
            self._threads.append(thread)
            thread.start()

    def _copy_into(
        self, conn: psycopg.Connection, cols: Sequence[CopyColumn], count: int, first: int = 0
    ) -> None:
        """COPY rows first..first+count-1 of `cols` into the table over `conn`."""

        def sent(rows: int) -> None:
            with self._mutex:
                self._copied += rows

        copy_binary_raw(
            conn, self.table, FEATURE_COLUMNS, cols, count,
            first=first, chunk_rows=_CHUNK_ROWS, on_rows=sent,
        )  # fmt: skip

    def _copy_part(
        self, cols: Sequence[CopyColumn], first: int, count: int, started: float
    ) -> None:
        try:
            with _connect(self.url) as worker, worker.transaction():
                # Each part commits on its own; its transaction id tells its rows apart later.
                row = worker.execute("SELECT pg_current_xact_id()::text").fetchone()
                assert row is not None
                xid = int(row[0]) % (1 << 32)  # xmin holds the low 32 bits
                self._copy_into(worker, cols, count, first)
            with self._mutex:
                self._parts.append((xid, first))
        except BaseException as exc:  # handed to the caller by wait()
            with self._mutex:
                self._errors.append(exc)
        finally:
            with self._mutex:
                self.copy_seconds = round(time.perf_counter() - started, 3)

    def wait(self, progress: Progress | None = None, total: int = 0) -> BaseException | None:
        """Wait for the COPY threads (reporting progress); the first error they hit, if any."""
        for thread in self._threads:
            while thread.is_alive():
                thread.join(0.25)
                if progress:
                    with self._mutex:
                        done = min(self._copied, total)
                    progress("copy", done, total)
        self._threads = []
        return self._errors[0] if self._errors else None

    def copy(self, cols: Sequence[CopyColumn], n: int, progress: Progress | None = None) -> None:
        """COPY all n rows and wait for them."""
        self.start_copy(cols, n)
        error = self.wait(progress, n)
        if error is not None:
            raise error

    # --- fixes after validation ------------------------------------------------------------

    def ids_at(self, positions: np.ndarray) -> np.ndarray:
        """The feature ids of rows by their position in the COPY (in the order asked)."""
        if len(positions) == 0:
            return np.zeros(0, dtype=np.int64)
        xids = [str(x) for x, _ in self._parts]
        offsets = [int(o) for _, o in self._parts]
        # Within one COPY, ids come from the sequence in row order.
        rows = self.owner.execute(
            f"""
            SELECT p.k, p.id FROM (
                SELECT t.id, (row_number() OVER (PARTITION BY o.first ORDER BY t.id) - 1
                            + o.first)::bigint AS k
                FROM {self.table} t
                JOIN unnest(%s::text[], %s::bigint[]) AS o(xid, first) ON t.xmin::text = o.xid
            ) p WHERE p.k = ANY(%s::bigint[])
            """,  # noqa: S608  (quoted identifier; values bound)
            (xids, offsets, [int(v) for v in positions]),
        ).fetchall()
        found: dict[int, int] = {int(k): int(i) for k, i in rows}
        return np.array([found[int(k)] for k in positions], dtype=np.int64)

    def fix(
        self,
        update_ids: np.ndarray,
        update_wkb: list[bytes],
        delete_ids: np.ndarray,
        add: Sequence[CopyColumn] | None,
        n_add: int,
    ) -> None:
        """Rewrite, delete and add rows, in one committed transaction of the owner."""
        with self.owner.transaction():
            if len(update_ids):
                # No trigger on this table: the size is recomputed here (0008_lod_size).
                self.owner.execute(
                    f"UPDATE {self.table} t SET geom = ST_SetSRID(ST_GeomFromWKB(u.wkb), 4326), "  # noqa: S608
                    "lod_size = feature_lod_size(ST_GeomFromWKB(u.wkb)) "
                    "FROM unnest(%s::bigint[], %s::bytea[]) AS u(id, wkb) WHERE t.id = u.id",
                    ([int(v) for v in update_ids], update_wkb),
                )
            if len(delete_ids):
                self.owner.execute(
                    f"DELETE FROM {self.table} WHERE id = ANY(%s::bigint[])",  # noqa: S608
                    ([int(v) for v in delete_ids],),
                )
            if add is not None and n_add:
                self._copy_into(self.owner, add, n_add)

    # --- indexes and the swap --------------------------------------------------------------

    def _index_plans(self) -> list[_IndexPlan]:
        """One index per index of the parent table, defined exactly like it (ATTACH adopts it)."""
        part = partition_name(self.layer_id)
        plans = []
        for k, parent in enumerate(self.template.indexes):
            name = f"{self.name}_i{k}"
            unique = "UNIQUE " if parent.unique else ""
            # The parent's name with the partition's in it: pk_feature -> pk_feature_l7.
            final = (
                parent.name.replace("feature", part, 1)
                if "feature" in parent.name
                else f"{part}_{parent.name}"
            )
            plans.append(
                _IndexPlan(
                    name=name,
                    ddl=f"CREATE {unique}INDEX {quote_ident(name)} ON {self.table} "
                    f"USING {parent.body}",
                    constraint=parent.constraint,
                    final_name=final[:63],
                    cost=parent.cost,
                )
            )
        return plans

    def build_indexes(self, progress: Progress | None = None, n: int = 0) -> list[_IndexPlan]:
        """Build every index, spread over the workers (CREATE INDEX runs side by side)."""
        if progress:
            progress("index", 0, n)
        plans = self._index_plans()
        lanes: list[list[_IndexPlan]] = [
            [] for _ in range(WORKERS if n >= MIN_ROWS_PER_WORKER else 1)
        ]
        load = [0.0] * len(lanes)
        for plan in sorted(plans, key=lambda p: -p.cost):  # largest first, to the idlest lane
            lane = int(np.argmin(load))
            lanes[lane].append(plan)
            load[lane] += plan.cost
        errors: list[BaseException] = []

        def run(lane: list[_IndexPlan], conn: psycopg.Connection) -> None:
            try:
                # One index per server process already uses both cores.
                conn.execute("SET max_parallel_maintenance_workers = 0")
                for plan in lane:
                    conn.execute(plan.ddl)
            except BaseException as exc:
                errors.append(exc)

        side = [_connect(self.url) for _ in lanes[1:]]
        try:
            threads = [
                threading.Thread(target=run, args=(lane, conn), daemon=True)
                for lane, conn in zip(lanes[1:], side, strict=True)
            ]
            for thread in threads:
                thread.start()
            run(lanes[0], self.owner)
            for thread in threads:
                thread.join()
        finally:
            for conn in side:
                conn.close()
        if errors:
            raise errors[0]
        return plans

    def swap(self, conn: Connection, plans: list[_IndexPlan]) -> int:
        """In the import's transaction: make the table the layer's partition; rows replaced."""
        new_q = self.table
        part = partition_name(self.layer_id)
        old_q = quote_ident(part)
        for plan in plans:
            if plan.constraint:
                kind = "PRIMARY KEY" if plan.constraint == "p" else "UNIQUE"
                # Metadata only: the index exists and its columns are NOT NULL already.
                conn.execute(
                    text(
                        f"ALTER TABLE {new_q} ADD CONSTRAINT {quote_ident(plan.name)} "
                        f"{kind} USING INDEX {quote_ident(plan.name)}"
                    )
                )
        for ddl in (
            f"ALTER TABLE {new_q} ADD CONSTRAINT {quote_ident(self.name + '_fk_layer')} "
            "FOREIGN KEY (layer_id) REFERENCES layer (id) ON DELETE CASCADE",
            f"ALTER TABLE {new_q} ADD CONSTRAINT {quote_ident(self.name + '_fk_batch')} "
            "FOREIGN KEY (import_batch_id) REFERENCES import_batch (id) ON DELETE SET NULL",
        ):
            conn.execute(text(ddl))
        count_sql = f"SELECT count(*) FROM {old_q}"  # noqa: S608  (quoted identifier)
        before = int(conn.execute(text(count_sql)).scalar_one())
        conn.execute(text(f"ALTER TABLE feature DETACH PARTITION {old_q}"))
        conn.execute(text(f"DROP TABLE {old_q}"))
        conn.execute(text(f"ALTER TABLE {new_q} RENAME TO {old_q}"))
        for plan in plans:
            if plan.constraint:
                conn.execute(
                    text(
                        f"ALTER TABLE {old_q} RENAME CONSTRAINT {quote_ident(plan.name)} "
                        f"TO {quote_ident(plan.final_name)}"
                    )
                )
            else:
                conn.execute(
                    text(
                        f"ALTER INDEX {quote_ident(plan.name)} "
                        f"RENAME TO {quote_ident(plan.final_name)}"
                    )
                )
        conn.execute(text(f"ALTER TABLE {old_q} RESET (autovacuum_enabled)"))
        conn.execute(
            text(f"ALTER TABLE feature ATTACH PARTITION {old_q} FOR VALUES IN ({self.layer_id})")
        )
        return before

    def close(self) -> None:
        """After the import's transaction ended: drop the table unless it became the
        partition, release the lock, close the connections."""
        self.wait()
        try:
            if not self.owner.closed:
                self.owner.execute(f"DROP TABLE IF EXISTS {self.table}")
                self.owner.execute("SELECT pg_advisory_unlock(%s)", (_lock_key(self.batch_id),))
        finally:
            self.owner.close()


class BuildSet:
    """The builds of one import, closed together once its transaction has ended."""

    def __init__(self, engine: Engine) -> None:
        """Read the parent table's definition now, before the import's transaction."""
        with engine.connect() as conn:
            self.template = read_feature_template(conn)
        self.builds: list[PartitionBuild] = []

    def open(self, conn: Connection, layer_id: int, batch_id: int) -> PartitionBuild:
        """Start a new build (an earlier attempt of the same batch must be discarded first)."""
        build = PartitionBuild(conn, self.template, layer_id, batch_id)
        self.builds.append(build)
        return build

    def discard(self, build: PartitionBuild) -> None:
        """Drop a build now (it was never swapped in), e.g. before starting over."""
        self.builds.remove(build)
        build.close()

    def close(self) -> None:
        """Close every build. Failing to drop a table is logged, not raised: the import's
        outcome is already decided, and the next import sweeps what is left."""
        for build in self.builds:
            try:
                build.close()
            except Exception:
                log.warning("could not drop the import build table %s", build.name, exc_info=True)
        self.builds = []
