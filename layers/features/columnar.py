"""Columnar downloads: a layer's features (or a query result) as GeoParquet or FlatGeobuf.

GeoParquet is streamed: features are read in keyset-paged batches and each batch becomes one
Parquet row group as soon as it is read, so a million parcels never sit in memory at once and
the first bytes leave before the last row is read. FlatGeobuf is written by GDAL (pyogrio)
batch by batch into a temporary file, then streamed; its header must know the feature count,
so it cannot leave before the last batch.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Connection, Engine, and_, func, select

from layers.features.items import FeatureQuery, feature_conditions, properties_expr
from layers.features.registry import LayerInfo, property_names
from layers.models import feature

ColumnarFormat = Literal["parquet", "fgb"]
MEDIA_TYPES: dict[str, str] = {
    "parquet": "application/vnd.apache.parquet",
    "fgb": "application/flatgeobuf",
}
BATCH_ROWS = 50_000
CHUNK_BYTES = 1 << 20
# GeoParquet 1.1 metadata for WKB geometries in OGC:CRS84 (lon/lat), the default CRS.
GEO_VERSION = "1.1.0"


def geo_metadata(geometry_types: list[str]) -> bytes:
    """The `geo` key-value metadata GeoParquet readers (geopandas, GDAL, DuckDB) look for."""
    meta = {
        "version": GEO_VERSION,
        "primary_column": "geometry",
        "columns": {"geometry": {"encoding": "WKB", "geometry_types": geometry_types}},
    }
    return orjson.dumps(meta)


def _arrow_type(json_type: Any) -> pa.DataType:
    kinds = json_type if isinstance(json_type, list) else [json_type]
    kinds = [k for k in kinds if k != "null"]
    if kinds == ["integer"]:
        return pa.int64()
    if kinds in (["number"], ["integer", "number"], ["number", "integer"]):
        return pa.float64()
    if kinds == ["boolean"]:
        return pa.bool_()
    return pa.string()


def layer_schema(info: LayerInfo) -> pa.Schema:
    """The Arrow schema of a layer's download: id, source_key, its properties, geometry (WKB)."""
    props = (info.property_schema or {}).get("properties", {})
    fields = [pa.field("id", pa.int64()), pa.field("source_key", pa.string())]
    for name in property_names(info):
        if name in ("id", "source_key", "geometry"):
            continue
        fields.append(pa.field(name, _arrow_type((props.get(name) or {}).get("type"))))
    fields.append(pa.field("geometry", pa.binary()))
    return pa.schema(fields)


def _cell(value: Any, kind: pa.DataType) -> Any:
    if value is None:
        return None
    if pa.types.is_string(kind):
        return value if isinstance(value, str) else orjson.dumps(value).decode()
    if pa.types.is_int64(kind):
        return (
            int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
        )
    if pa.types.is_float64(kind):
        return (
            float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
        )
    if pa.types.is_boolean(kind):
        return value if isinstance(value, bool) else None
    return value


def feature_batches(
    conn: Connection, info: LayerInfo, query: FeatureQuery, max_rows: int
) -> Iterator[pa.RecordBatch]:
    """The matching features as Arrow record batches of at most BATCH_ROWS, in id order."""
    schema = layer_schema(info)
    names = [f.name for f in schema][2:-1]
    kinds = [schema.field(n).type for n in names]
    after: int | None = query.after_id
    left = max_rows
    while left > 0:
        conds = feature_conditions(info, query)
        if after is not None:
            conds.append(feature.c.id > after)
        stmt = (
            select(
                feature.c.id,
                feature.c.source_key,
                properties_expr(info).label("props"),
                func.ST_AsBinary(feature.c.geom).label("wkb"),
            )
            .where(and_(*conds))
            .order_by(feature.c.id)
            .limit(min(BATCH_ROWS, left))
        )
        rows = conn.execute(stmt).all()
        if not rows:
            return
        props = [r.props or {} for r in rows]
        columns: list[Any] = [
            pa.array([int(r.id) for r in rows], pa.int64()),
            pa.array([r.source_key for r in rows], pa.string()),
        ]
        for name, kind in zip(names, kinds, strict=True):
            columns.append(pa.array([_cell(p.get(name), kind) for p in props], kind))
        columns.append(pa.array([bytes(r.wkb) if r.wkb is not None else None for r in rows]))
        yield pa.RecordBatch.from_arrays(columns, schema=schema)
        after = int(rows[-1].id)
        left -= len(rows)
        if len(rows) < BATCH_ROWS:
            return


def stream_feature_batches(
    engine: Engine, info: LayerInfo, query: FeatureQuery, max_rows: int
) -> Iterator[pa.RecordBatch]:
    """feature_batches on a connection of its own, held for the whole download.

    A streamed response outlives the request's connection, so the download opens its own, in
    one REPEATABLE READ transaction: every batch sees the same snapshot of the layer.
    """
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            yield from feature_batches(conn, info, query, max_rows)


class _Spool:
    """A write-only sink for ParquetWriter whose bytes are handed out as they are written."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.closed = False
        self.position = 0

    def write(self, data: bytes) -> int:
        chunk = bytes(data)
        self.parts.append(chunk)
        self.position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        return out


def stream_geoparquet(
    batches: Iterator[pa.RecordBatch], schema: pa.Schema, geometry_types: list[str]
) -> Iterator[bytes]:
    """GeoParquet bytes, one row group per batch, yielded as each batch is written."""
    meta = dict(schema.metadata or {})
    meta[b"geo"] = geo_metadata(geometry_types)
    schema = schema.with_metadata(meta)
    sink = _Spool()
    writer = pq.ParquetWriter(pa.PythonFile(sink, mode="w"), schema, compression="zstd")
    try:
        for batch in batches:
            writer.write_batch(batch)
            data = sink.take()
            if data:
                yield data
    finally:
        writer.close()
    yield sink.take()


def geometry_types_of(info: LayerInfo) -> list[str]:
    """GeoParquet geometry_types for a layer's declared geometry type ([] when mixed)."""
    kind = str(info.geometry_type)
    known = {
        "Point",
        "LineString",
        "Polygon",
        "MultiPoint",
        "MultiLineString",
        "MultiPolygon",
    }
    return [kind] if kind in known else []


def stream_flatgeobuf(
    batches: Iterator[pa.RecordBatch], schema: pa.Schema, layer_name: str
) -> Iterator[bytes]:
    """FlatGeobuf bytes written by GDAL from the batches, then streamed from a temporary file."""
    import pyogrio

    with tempfile.TemporaryDirectory(prefix="iocmap-fgb-") as tmp:
        path = Path(tmp) / "out.fgb"
        # GDAL pulls the batches itself, so only one batch is in memory at a time.
        pyogrio.write_arrow(
            pa.RecordBatchReader.from_batches(schema, batches),
            path,
            layer=layer_name[:60],
            driver="FlatGeobuf",
            geometry_name="geometry",
            geometry_type="Unknown",
            crs="EPSG:4326",
        )
        with path.open("rb") as fh:
            while chunk := fh.read(CHUNK_BYTES):
                yield chunk
