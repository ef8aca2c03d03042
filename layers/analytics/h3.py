"""Database side of H3 analytics: reading features as arrays, storing aggregates and their state."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray
from sqlalchemy import BigInteger, Connection, and_, bindparam, delete, func, or_, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert

from layers.errors import InvalidInputError
from layers.features.registry import LayerInfo
from layers.models import feature, layer
from layers.models.analytics import h3_agg, h3_feature_state, h3_state
from layers.sql import any_of

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
U64 = NDArray[np.uint64]

# Advisory-lock namespace of H3 refreshes, so two processes never refresh one layer at once.
_LOCK_NS = 0x4833


def numeric_properties(info: LayerInfo) -> list[str]:
    """Properties the layer's schema declares as number or integer (its H3 measures)."""
    props = info.property_schema.get("properties", {})
    out = []
    if isinstance(props, dict):
        for name, schema in props.items():
            types = schema.get("type") if isinstance(schema, dict) else None
            tlist = types if isinstance(types, list) else [types]
            if any(t in ("number", "integer") for t in tlist):
                out.append(name)
    return out


@dataclass
class FeatureArrays:
    """Features of one source layer as columns: ids, geometries, bboxes, times and values."""

    source_layer_id: int
    ids: I64
    geoms: NDArray[np.object_]
    bbox: F64  # (n, 4): min_x, min_y, max_x, max_y
    t: F64  # epoch seconds, NaN when unknown
    values: dict[str, F64]

    def __len__(self) -> int:
        return len(self.ids)


def load_features(
    conn: Connection,
    source_layer_id: int,
    properties: Sequence[str],
    *,
    ids: Sequence[int] | None = None,
    region_wkb: bytes | None = None,
    t_from: datetime | None = None,
    t_to: datetime | None = None,
    changed_since: datetime | None = None,
    timed: bool = False,
) -> FeatureArrays:
    """Read features of a layer (optionally by id, region, time range or change time) as arrays."""
    geom = feature.c.geom
    cols = [
        feature.c.id,
        func.ST_AsBinary(geom),
        func.ST_XMin(geom),
        func.ST_YMin(geom),
        func.ST_XMax(geom),
        func.ST_YMax(geom),
        func.extract("epoch", feature.c.observed_at),
        *[feature.c.properties.op("->>")(bindparam(f"p{i}", p)) for i, p in enumerate(properties)],
    ]
    conds = [feature.c.layer_id == source_layer_id]
    if timed:
        conds.append(feature.c.observed_at.is_not(None))
    if ids is not None:
        conds.append(any_of(feature.c.id, ids, BigInteger))
    if region_wkb is not None:
        region = func.ST_GeomFromWKB(bindparam("region", region_wkb), 4326)
        conds.append(geom.op("&&")(region))
        # a non-convex polygon's centroid can lie outside it but still inside the region
        conds.append(
            or_(
                func.ST_Intersects(geom, region), func.ST_Intersects(func.ST_Centroid(geom), region)
            )
        )
    if t_from is not None:
        conds.append(feature.c.observed_at >= t_from)
    if t_to is not None:
        conds.append(feature.c.observed_at < t_to)
    if changed_since is not None:
        conds.append(
            or_(feature.c.updated_at > changed_since, feature.c.created_at > changed_since)
        )
    rows = conn.execute(select(*cols).where(and_(*conds))).all()
    n = len(rows)
    if n == 0:
        return FeatureArrays(
            source_layer_id,
            np.zeros(0, dtype=np.int64),
            np.zeros(0, dtype=object),
            np.zeros((0, 4)),
            np.zeros(0),
            {p: np.zeros(0) for p in properties},
        )
    cols_t = list(zip(*rows, strict=True))
    ids_a = np.asarray(cols_t[0], dtype=np.int64)
    geoms = np.asarray(shapely.from_wkb(np.asarray(cols_t[1], dtype=object)), dtype=object)
    bbox = np.column_stack([np.asarray(cols_t[i], dtype=np.float64) for i in range(2, 6)])
    t = pd.to_numeric(pd.Series(cols_t[6], dtype=object), errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan
    )
    values = {
        p: pd.to_numeric(pd.Series(cols_t[7 + i], dtype=object), errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan
        )
        for i, p in enumerate(properties)
    }
    return FeatureArrays(source_layer_id, ids_a, geoms, bbox, t, values)


@dataclass
class FeatureState:
    """Bboxes and times of features as the last refresh saw them."""

    ids: I64
    source_layer_id: I64
    bbox: F64
    t: F64


def read_feature_state(
    conn: Connection, layer_id: int, feature_ids: Sequence[int] | None = None
) -> FeatureState:
    """Stored bbox and time of features of an aggregate (all when `feature_ids` is None)."""
    s = h3_feature_state.c
    stmt = select(
        s.feature_id,
        s.source_layer_id,
        s.min_x,
        s.min_y,
        s.max_x,
        s.max_y,
        func.extract("epoch", s.t),
    ).where(s.layer_id == layer_id)
    if feature_ids is not None:
        stmt = stmt.where(any_of(s.feature_id, feature_ids, BigInteger))
    rows = conn.execute(stmt).all()
    if not rows:
        e = np.zeros(0, dtype=np.int64)
        return FeatureState(e, e.copy(), np.zeros((0, 4)), np.zeros(0))
    c = list(zip(*rows, strict=True))
    return FeatureState(
        np.asarray(c[0], dtype=np.int64),
        np.asarray(c[1], dtype=np.int64),
        np.column_stack([np.asarray(c[i], dtype=np.float64) for i in range(2, 6)]),
        pd.to_numeric(pd.Series(c[6], dtype=object), errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan
        ),
    )


def deleted_feature_ids(conn: Connection, layer_id: int, source_layer_id: int) -> list[int]:
    """Features the aggregate still counts that no longer exist in the source layer."""
    rows = conn.execute(
        text(
            "SELECT s.feature_id FROM h3_feature_state s WHERE s.layer_id = :lid"
            " AND s.source_layer_id = :src AND NOT EXISTS (SELECT 1 FROM feature f"
            " WHERE f.layer_id = :src AND f.id = s.feature_id)"
        ),
        {"lid": layer_id, "src": source_layer_id},
    ).all()
    return [int(r[0]) for r in rows]


def orphan_source_ids(conn: Connection, layer_id: int, sources: Sequence[int]) -> list[int]:
    """Features counted from layers that are no longer sources of the aggregate."""
    s = h3_feature_state.c
    rows = conn.execute(
        select(s.feature_id).where(s.layer_id == layer_id, s.source_layer_id.not_in(list(sources)))
    ).all()
    return [int(r[0]) for r in rows]


def _copy_text(conn: Connection, sql: str, frame: pd.DataFrame) -> None:
    """COPY a frame as tab-separated text, built in one vectorised call (not per row)."""
    if frame.empty:
        return
    buf = frame.to_csv(
        sep="\t",
        header=False,
        index=False,
        lineterminator="\n",
        quoting=csv.QUOTE_NONE,
        na_rep="\\N",
    )
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cur, cur.copy(sql) as copy:
        copy.write(buf)


def _pg_array(mat: F64) -> NDArray[np.object_] | str:
    """Rows of a float matrix as PostgreSQL array literals ('{1.0,2.5}')."""
    if mat.shape[0] == 0:
        return np.zeros(0, dtype=object)
    if mat.shape[1] == 0:
        return "{}"
    out = pd.Series(mat[:, 0]).map(repr)
    for j in range(1, mat.shape[1]):
        out = out + "," + pd.Series(mat[:, j]).map(repr)
    return np.asarray(("{" + out + "}").to_numpy(), dtype=object)


def _timestamps(epoch: I64) -> NDArray[np.object_]:
    """ISO timestamps of epoch seconds, formatting each distinct value once."""
    uniq, inv = np.unique(epoch, return_inverse=True)
    text_u = np.asarray(
        [datetime.fromtimestamp(int(e), tz=UTC).isoformat() for e in uniq.tolist()], dtype=object
    )
    return text_u[inv]


def write_feature_state(conn: Connection, layer_id: int, arrays: Sequence[FeatureArrays]) -> None:
    """Upsert the bbox and time of the given features."""
    conn.execute(
        text(
            "CREATE TEMP TABLE IF NOT EXISTS _h3_fstate (feature_id bigint, source_layer_id int,"
            " min_x float8, min_y float8, max_x float8, max_y float8, t float8) ON COMMIT DROP"
        )
    )
    conn.execute(text("TRUNCATE _h3_fstate"))
    frames = [
        pd.DataFrame(
            {
                "feature_id": a.ids,
                "source_layer_id": a.source_layer_id,
                "min_x": pd.Series(a.bbox[:, 0]).map(repr),
                "min_y": pd.Series(a.bbox[:, 1]).map(repr),
                "max_x": pd.Series(a.bbox[:, 2]).map(repr),
                "max_y": pd.Series(a.bbox[:, 3]).map(repr),
                "t": pd.Series(a.t).where(~np.isnan(a.t)).map(repr, na_action="ignore"),
            }
        )
        for a in arrays
        if len(a)
    ]
    if not frames:
        return
    _copy_text(
        conn,
        "COPY _h3_fstate (feature_id, source_layer_id, min_x, min_y, max_x, max_y, t) FROM STDIN",
        pd.concat(frames, ignore_index=True),
    )
    conn.execute(
        text(
            "INSERT INTO h3_feature_state (layer_id, feature_id, source_layer_id, min_x, min_y,"
            " max_x, max_y, t) SELECT :lid, feature_id, source_layer_id, min_x, min_y, max_x, max_y,"
            " to_timestamp(t) FROM _h3_fstate ON CONFLICT (layer_id, feature_id) DO UPDATE SET"
            " source_layer_id = EXCLUDED.source_layer_id, min_x = EXCLUDED.min_x,"
            " min_y = EXCLUDED.min_y, max_x = EXCLUDED.max_x, max_y = EXCLUDED.max_y, t = EXCLUDED.t"
        ),
        {"lid": layer_id},
    )


def delete_feature_state(
    conn: Connection, layer_id: int, feature_ids: Sequence[int] | None = None
) -> None:
    """Forget features of an aggregate (all when `feature_ids` is None)."""
    stmt = delete(h3_feature_state).where(h3_feature_state.c.layer_id == layer_id)
    if feature_ids is not None:
        if not feature_ids:
            return
        stmt = stmt.where(any_of(h3_feature_state.c.feature_id, feature_ids, BigInteger))
    conn.execute(stmt)


@dataclass
class AggRows:
    """Aggregate rows as columns (cells as uint64, buckets as epoch seconds)."""

    res: NDArray[np.int16]
    bucket_s: NDArray[np.int32]
    bucket: I64
    cell: U64
    count: F64
    sums: F64
    nvals: F64


def _agg_frame(layer_id: int, rows: AggRows) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "layer_id": np.full(len(rows.cell), layer_id, dtype=np.int64),
            "res": rows.res,
            "bucket_s": rows.bucket_s,
            "bucket": _timestamps(rows.bucket),
            "cell": rows.cell.view(np.int64),
            "count": pd.Series(rows.count).map(repr),
            "sums": _pg_array(rows.sums),
            "nvals": _pg_array(rows.nvals),
        }
    )


_AGG_COPY = "COPY h3_agg (layer_id, res, bucket_s, bucket, cell, count, sums, nvals) FROM STDIN"


def write_aggregates(
    conn: Connection,
    layer_id: int,
    rows: AggRows,
    replace: Literal["all", "keys"],
    delete_keys: AggRows | None = None,
) -> None:
    """Store aggregate rows: replacing the whole layer, or only the rows at `delete_keys`."""
    if replace == "all":
        conn.execute(delete(h3_agg).where(h3_agg.c.layer_id == layer_id))
    else:
        assert delete_keys is not None
        conn.execute(
            text(
                "CREATE TEMP TABLE IF NOT EXISTS _h3_agg_keys (res int2, bucket_s int4,"
                " bucket timestamptz, cell int8) ON COMMIT DROP"
            )
        )
        conn.execute(text("TRUNCATE _h3_agg_keys"))
        _copy_text(
            conn,
            "COPY _h3_agg_keys (res, bucket_s, bucket, cell) FROM STDIN",
            pd.DataFrame(
                {
                    "res": delete_keys.res,
                    "bucket_s": delete_keys.bucket_s,
                    "bucket": _timestamps(delete_keys.bucket),
                    "cell": delete_keys.cell.view(np.int64),
                }
            ),
        )
        conn.execute(
            text(
                "DELETE FROM h3_agg a USING _h3_agg_keys k WHERE a.layer_id = :lid"
                " AND a.res = k.res AND a.bucket_s = k.bucket_s"
                " AND a.bucket = k.bucket AND a.cell = k.cell"
            ),
            {"lid": layer_id},
        )
    _copy_text(conn, _AGG_COPY, _agg_frame(layer_id, rows))


def read_aggregates(conn: Connection, layer_id: int) -> AggRows:
    """Every aggregate row of a layer, in key order."""
    rows = conn.execute(
        text(
            "SELECT res, bucket_s, extract(epoch from bucket)::bigint, cell, count, sums, nvals"
            " FROM h3_agg WHERE layer_id = :lid ORDER BY res, bucket_s, bucket, cell"
        ),
        {"lid": layer_id},
    ).all()
    m = len(rows[0][5]) if rows else 0
    return AggRows(
        np.asarray([r[0] for r in rows], dtype=np.int16),
        np.asarray([r[1] for r in rows], dtype=np.int32),
        np.asarray([r[2] for r in rows], dtype=np.int64),
        np.asarray([r[3] for r in rows], dtype=np.int64).view(np.uint64),
        np.asarray([r[4] for r in rows], dtype=np.float64),
        np.asarray([r[5] for r in rows], dtype=np.float64).reshape(len(rows), m),
        np.asarray([r[6] for r in rows], dtype=np.float64).reshape(len(rows), m),
    )


@dataclass
class H3State:
    """What a layer's aggregates reflect."""

    measures: list[str]
    source_versions: dict[str, int]
    spec_hash: str
    refreshed_at: datetime
    full_refreshed_at: datetime


def read_state(conn: Connection, layer_id: int) -> H3State | None:
    """Refresh state of a layer's aggregates, or None if never refreshed."""
    row = conn.execute(select(h3_state).where(h3_state.c.layer_id == layer_id)).mappings().first()
    if row is None:
        return None
    return H3State(
        list(row["measures"]),
        {str(k): int(v) for k, v in row["source_versions"].items()},
        row["spec_hash"],
        row["refreshed_at"],
        row["full_refreshed_at"],
    )


def write_state(
    conn: Connection,
    layer_id: int,
    measures: Sequence[str],
    source_versions: dict[str, int],
    spec_hash: str,
    refreshed_at: datetime,
    full: bool,
) -> None:
    """Record what the aggregates now reflect."""
    values = {
        "layer_id": layer_id,
        "measures": list(measures),
        "source_versions": source_versions,
        "spec_hash": spec_hash,
        "refreshed_at": refreshed_at,
        "full_refreshed_at": refreshed_at,
    }
    stmt = pg_insert(h3_state).values(**values)
    update = {
        k: stmt.excluded[k] for k in ("measures", "source_versions", "spec_hash", "refreshed_at")
    }
    if full:
        update["full_refreshed_at"] = stmt.excluded.full_refreshed_at
    conn.execute(stmt.on_conflict_do_update(index_elements=["layer_id"], set_=update))


def lock_layer(conn: Connection, layer_id: int) -> None:
    """Serialise refreshes of one layer across processes (released at commit)."""
    conn.execute(text("SELECT pg_advisory_xact_lock(:ns, :lid)"), {"ns": _LOCK_NS, "lid": layer_id})


def db_now(conn: Connection) -> datetime:
    """The database's clock (transaction start), the reference for updated_at comparisons."""
    value: datetime = conn.execute(select(func.now())).scalar_one()
    return value


def layer_versions(conn: Connection, layer_ids: Sequence[int]) -> dict[str, int]:
    """data_version of each layer, keyed by id as text."""
    rows = conn.execute(
        select(layer.c.id, layer.c.data_version).where(any_of(layer.c.id, layer_ids, BigInteger))
    ).all()
    return {str(int(r[0])): int(r[1]) for r in rows}


MeasureKind = Literal["count", "sum", "mean"]


def parse_measure(raw: str, measures: Sequence[str]) -> tuple[MeasureKind, int | None]:
    """'count', 'sum:<prop>' or 'mean:<prop>' → kind and 1-based index in the stored measures."""
    if raw == "count":
        return "count", None
    kind, _, name = raw.partition(":")
    if kind not in ("sum", "mean") or not name:
        raise InvalidInputError(
            f"measure must be 'count', 'sum:<property>' or 'mean:<property>'; got {raw!r}",
            param="measure",
            i18n="err.h3.measure_must_be_count_sum",
            raw=raw,
        )
    if name not in measures:
        raise InvalidInputError(
            f"measure {raw!r} is not aggregated; numeric measures: {', '.join(measures) or 'none'}",
            param="measure",
            i18n="err.h3.measure_not_aggregated_numeric_measures",
            raw=raw,
            measures=", ".join(measures) or "—",
        )
    return ("sum" if kind == "sum" else "mean"), measures.index(name) + 1


# Fixed statement texts per measure kind; every value is a bound parameter.
_SERIES_SQL = {
    "count": (
        "SELECT extract(epoch from bucket)::bigint, sum(count) FROM h3_agg"
        " WHERE layer_id = :lid AND res = :res AND bucket_s = :bs AND bucket >= :t0 AND bucket < :t1"
        " GROUP BY bucket ORDER BY bucket"
    ),
    "sum": (
        "SELECT extract(epoch from bucket)::bigint, sum(sums[:mi]) FROM h3_agg"
        " WHERE layer_id = :lid AND res = :res AND bucket_s = :bs AND bucket >= :t0 AND bucket < :t1"
        " GROUP BY bucket ORDER BY bucket"
    ),
    "mean": (
        "SELECT extract(epoch from bucket)::bigint, sum(sums[:mi]) / nullif(sum(nvals[:mi]), 0) FROM h3_agg"
        " WHERE layer_id = :lid AND res = :res AND bucket_s = :bs AND bucket >= :t0 AND bucket < :t1"
        " GROUP BY bucket ORDER BY bucket"
    ),
}


def query_cells(
    conn: Connection,
    layer_id: int,
    res: int,
    segments: Sequence[tuple[int, datetime | None, datetime | None]],
    kind: MeasureKind,
    measure_index: int | None,
) -> tuple[U64, F64]:
    """Cells and the measure summed over the buckets of each (width, start, end) segment."""
    a = h3_agg.c
    conds = []
    for w, t0, t1 in segments:
        part = [a.bucket_s == w]
        if t0 is not None:
            part.append(a.bucket >= t0)
        if t1 is not None:
            part.append(a.bucket < t1)
        conds.append(and_(*part))
    if kind == "count":
        value: Any = func.sum(a.count)
    elif kind == "sum":
        value = func.sum(a.sums[measure_index])
    else:
        value = func.sum(a.sums[measure_index]) / func.nullif(func.sum(a.nvals[measure_index]), 0)
    stmt = (
        select(a.cell, value)
        .where(a.layer_id == layer_id, a.res == res, or_(*conds))
        .group_by(a.cell)
    )
    rows = conn.execute(stmt).all()
    cells = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)).view(np.uint64)
    vals = np.fromiter(
        (np.nan if r[1] is None else r[1] for r in rows), dtype=np.float64, count=len(rows)
    )
    return cells, vals


def query_series(
    conn: Connection,
    layer_id: int,
    bucket_s: int,
    t_from: datetime | None,
    t_to: datetime | None,
    kind: MeasureKind,
    measure_index: int | None,
    res: int = 5,
) -> tuple[I64, F64]:
    """Time series of a measure over the whole layer: bucket start (epoch s) and value."""
    sql = _SERIES_SQL[kind]
    params: dict[str, Any] = {
        "lid": layer_id,
        "res": res,
        "bs": bucket_s,
        "t0": t_from or datetime(1, 1, 1, tzinfo=UTC),
        "t1": t_to or datetime(9999, 1, 1, tzinfo=UTC),
    }
    if measure_index is not None:
        params["mi"] = measure_index
    rows = conn.execute(text(sql), params).all()
    b = np.asarray([r[0] for r in rows], dtype=np.int64)
    v = np.asarray([np.nan if r[1] is None else r[1] for r in rows], dtype=np.float64)
    return b, v


_COMMUNE_SQL = (
    "SELECT a.code, a.name, count(f.id) AS n,"
    " sum(CASE WHEN jsonb_typeof(f.properties -> :prop) = 'number'"
    " THEN (f.properties ->> :prop)::float8 END) AS s,"
    " count(CASE WHEN jsonb_typeof(f.properties -> :prop) = 'number' THEN 1 END) AS k"
    " FROM admin_unit a LEFT JOIN feature f ON f.layer_id = :lid AND a.geom && f.geom"
    " AND ST_Intersects(a.geom, ST_PointOnSurface(f.geom))"
    " AND (CAST(:t0 AS timestamptz) IS NULL OR f.observed_at >= :t0)"
    " AND (CAST(:t1 AS timestamptz) IS NULL OR f.observed_at < :t1)"
    " WHERE a.level = 'commune' AND a.valid_to IS NULL"
    " GROUP BY a.code, a.name ORDER BY a.code"
)


def commune_measures(
    conn: Connection,
    layer_id: int,
    prop: str | None,
    t_from: datetime | None,
    t_to: datetime | None,
) -> list[tuple[str, str, int, float | None, int]]:
    """Per current commune: feature count, sum and non-null count of `prop` in the window."""
    rows = conn.execute(
        text(_COMMUNE_SQL),
        {"lid": layer_id, "prop": prop or "", "t0": t_from, "t1": t_to},
    ).all()
    return [(str(r[0]), str(r[1]), int(r[2]), r[3], int(r[4])) for r in rows]


_SERIES_FEATURE_SQL = (
    "SELECT floor(extract(epoch from f.observed_at) / :w) * :w AS b, count(*) AS n,"
    " sum(CASE WHEN jsonb_typeof(f.properties -> :prop) = 'number'"
    " THEN (f.properties ->> :prop)::float8 END) AS s"
    " FROM feature f WHERE f.layer_id = :lid AND f.observed_at >= :t0 AND f.observed_at < :t1"
    " AND (CAST(:commune AS text) IS NULL OR EXISTS (SELECT 1 FROM admin_unit a"
    " WHERE a.code = :commune AND a.level = 'commune' AND a.valid_to IS NULL"
    " AND a.geom && f.geom AND ST_Intersects(a.geom, ST_PointOnSurface(f.geom))))"
    " GROUP BY 1 ORDER BY 1"
)


def feature_series(
    conn: Connection,
    layer_id: int,
    width_s: int,
    t_from: datetime,
    t_to: datetime,
    prop: str | None = None,
    commune: str | None = None,
) -> tuple[F64, F64, F64]:
    """Bucket starts (epoch s, offset-free), counts and sums of `prop` per bucket."""
    rows = conn.execute(
        text(_SERIES_FEATURE_SQL),
        {
            "lid": layer_id,
            "w": width_s,
            "t0": t_from,
            "t1": t_to,
            "prop": prop or "",
            "commune": commune,
        },
    ).all()
    b = np.asarray([float(r[0]) for r in rows], dtype=np.float64)
    n = np.asarray([float(r[1]) for r in rows], dtype=np.float64)
    s = np.asarray([np.nan if r[2] is None else float(r[2]) for r in rows], dtype=np.float64)
    return b, n, s


def commune_table(conn: Connection) -> list[tuple[str, str, float, float]]:
    """Current communes: code, name, population, area in km² (NaN when unknown)."""
    rows = conn.execute(
        text(
            "SELECT code, name, population, area_km2 FROM admin_unit"
            " WHERE level = 'commune' AND valid_to IS NULL ORDER BY code"
        )
    ).all()
    nan = float("nan")
    return [
        (
            str(r[0]),
            str(r[1]),
            nan if r[2] is None else float(r[2]),
            nan if r[3] is None else float(r[3]),
        )
        for r in rows
    ]


def layer_property_columns(
    conn: Connection, slug: str, properties: Sequence[str]
) -> list[list[Any]]:
    """Columns of raw JSON values of some properties of a layer's features (empty if no layer)."""
    cols = [feature.c.properties.op("->")(bindparam(f"p{i}", p)) for i, p in enumerate(properties)]
    stmt = (
        select(*cols)
        .select_from(feature.join(layer, layer.c.id == feature.c.layer_id))
        .where(layer.c.slug == slug)
    )
    rows = conn.execute(stmt).all()
    return [[r[i] for r in rows] for i in range(len(properties))]
