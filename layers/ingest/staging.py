"""The staging table of an append or upsert import, and its merge into the layer's partition.

Everything here runs in the import's own transaction: a failed or killed import leaves the
layer as it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from sqlalchemy import Connection, text

from layers.ingest.copy import CopyColumn, OnRows, copy_binary
from layers.sql import quote_ident

STAGE_COLUMNS = "k, geom, properties, source_key, observed_at, import_batch_id, lod_size"
MergeMode = Literal["append", "upsert"]


def stage_table(batch_id: int) -> str:
    """The quoted name of one batch's staging table."""
    return quote_ident(f"ingest_stage_{int(batch_id)}")


def create_stage(conn: Connection, batch_id: int) -> None:
    """An UNLOGGED staging table; `k` is the row's position in the COPY."""
    conn.execute(
        text(
            f"CREATE UNLOGGED TABLE {stage_table(batch_id)} (k int NOT NULL, "
            "geom geometry(Geometry, 4326) NOT NULL, properties jsonb NOT NULL, "
            "source_key text, observed_at timestamptz, import_batch_id bigint, "
            "lod_size double precision)"
        )
    )


def copy_into_stage(
    conn: Connection,
    batch_id: int,
    cols: Sequence[CopyColumn],
    n: int,
    on_rows: OnRows | None = None,
) -> None:
    """Binary COPY of n rows (columns in STAGE_COLUMNS order) into the staging table."""
    copy_binary(conn, stage_table(batch_id), STAGE_COLUMNS, cols, n, on_rows)


def merge_stage(conn: Connection, layer_id: int, batch_id: int, mode: MergeMode) -> tuple[int, int]:
    """One INSERT (append) or upsert from the staging table into the layer, then drop the
    staging table; returns (inserted, updated)."""
    stage_q = stage_table(batch_id)
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
    return int(inserted), int(updated)


def rewrite_stage_rows(conn: Connection, batch_id: int, ks: list[int], wkbs: list[bytes]) -> None:
    """Replace the geometry of staged rows by position `k`."""
    conn.execute(
        text(
            # No trigger on this table: the size is recomputed here (0008_lod_size).
            f"UPDATE {stage_table(batch_id)} t "  # noqa: S608
            "SET geom = ST_SetSRID(ST_GeomFromWKB(u.wkb), 4326), "
            "lod_size = feature_lod_size(ST_GeomFromWKB(u.wkb)) "
            "FROM unnest(CAST(:ks AS int[]), CAST(:wkbs AS bytea[])) AS u(k, wkb) "
            "WHERE t.k = u.k"
        ),
        {"ks": ks, "wkbs": wkbs},
    )


def delete_stage_rows(conn: Connection, batch_id: int, ks: list[int]) -> None:
    """Delete staged rows by position `k`."""
    conn.execute(
        text(f"DELETE FROM {stage_table(batch_id)} WHERE k = ANY(CAST(:ks AS int[]))"),  # noqa: S608
        {"ks": ks},
    )
