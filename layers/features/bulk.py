"""Set-based feature writes: COPY into a temporary staging table, then one upsert statement."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import shapely
from sqlalchemy import Connection, text

from layers.features.registry import mark_layer_changed


@dataclass(frozen=True)
class FeatureRow:
    """One feature to write: WGS84 geometry, properties and its per-layer source key."""

    source_key: str
    geometry: shapely.Geometry
    properties: dict[str, Any]
    observed_at: datetime | None = None


@dataclass(frozen=True)
class UpsertCounts:
    """How many staged rows were inserted, updated, or left as they were."""

    inserted: int
    updated: int
    unchanged: int

    @property
    def changed(self) -> int:
        """Rows inserted or updated."""
        return self.inserted + self.updated


_STAGE_DDL = text(
    "CREATE TEMP TABLE IF NOT EXISTS _feature_stage ("
    " source_key text NOT NULL, geom_wkb bytea NOT NULL, properties jsonb NOT NULL,"
    " observed_at timestamptz) ON COMMIT DROP"
)

# IS DISTINCT FROM keeps re-runs of the same data from touching rows (and updated_at).
_UPSERT = text(
    """
    WITH upserted AS (
        INSERT INTO feature AS f (layer_id, geom, properties, source_key, observed_at, import_batch_id)
        SELECT :layer_id, ST_SetSRID(ST_GeomFromWKB(s.geom_wkb), 4326), s.properties, s.source_key,
               s.observed_at, :batch_id
        FROM _feature_stage s
        ON CONFLICT (layer_id, source_key) WHERE source_key IS NOT NULL DO UPDATE
           SET geom = EXCLUDED.geom, lod_size = EXCLUDED.lod_size, properties = EXCLUDED.properties,
               observed_at = EXCLUDED.observed_at, import_batch_id = EXCLUDED.import_batch_id,
               updated_at = now()
         WHERE NOT ST_Equals(f.geom, EXCLUDED.geom)
            OR f.properties IS DISTINCT FROM EXCLUDED.properties
            OR f.observed_at IS DISTINCT FROM EXCLUDED.observed_at
        -- xmax is not available on partitioned tables; a row created in this transaction is new.
        RETURNING (f.created_at = now()) AS inserted
    )
    SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM upserted
    """
)


def _copy_rows(conn: Connection, rows: Iterable[FeatureRow]) -> int:
    raw = conn.connection.driver_connection
    assert raw is not None
    n = 0
    with (
        raw.cursor() as cur,
        cur.copy(
            "COPY _feature_stage (source_key, geom_wkb, properties, observed_at) FROM STDIN"
        ) as copy,
    ):
        for row in rows:
            copy.write_row(
                (
                    row.source_key,
                    shapely.to_wkb(row.geometry),
                    orjson.dumps(row.properties, option=orjson.OPT_NON_STR_KEYS).decode(),
                    row.observed_at,
                )
            )
            n += 1
    return n


def upsert_features(
    conn: Connection,
    layer_id: int,
    rows: Sequence[FeatureRow] | Iterable[FeatureRow],
    batch_id: int | None = None,
    delete_missing: bool = False,
) -> UpsertCounts:
    """Insert or update features by source key in one statement; optionally delete keys not given.

    The layer's data_version is bumped only if something changed, so idempotent re-runs
    do not invalidate caches.
    """
    conn.execute(_STAGE_DDL)
    conn.execute(text("TRUNCATE _feature_stage"))
    staged = _copy_rows(conn, rows)
    inserted, updated = conn.execute(_UPSERT, {"layer_id": layer_id, "batch_id": batch_id}).one()
    deleted = 0
    if delete_missing:
        deleted = conn.execute(
            text(
                "DELETE FROM feature f WHERE f.layer_id = :layer_id AND NOT EXISTS "
                "(SELECT 1 FROM _feature_stage s WHERE s.source_key = f.source_key)"
            ),
            {"layer_id": layer_id},
        ).rowcount
    conn.execute(text("DROP TABLE IF EXISTS _feature_stage"))
    if inserted or updated or deleted:
        mark_layer_changed(conn, layer_id)
    return UpsertCounts(int(inserted), int(updated), staged - int(inserted) - int(updated))
