"""H3 refresh jobs: which layers are aggregated how, and full or incremental refresh of them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import timedelta

import h3ronpy
import h3ronpy.vector as h3v
import numpy as np
import shapely
from sqlalchemy import Connection, Engine

from analytics import h3bin
from analytics.traffic import (
    COUNT_PROPERTIES,
    DENSITY_MEASURE,
    DENSITY_WIDTHS,
    TRAFFIC_DENSITY,
    ensure_density_layer,
)
from layers.analytics import h3 as h3db
from layers.features.registry import LayerInfo, get_layer, layer_slugs, list_layers

# Changed rows are looked up from a little before the last refresh: a transaction that
# started earlier may have committed rows with an older updated_at after we read.
CHANGE_OVERLAP = timedelta(minutes=5)
REGION_RES = 5


@dataclass(frozen=True)
class AggSource:
    """A layer feeding an aggregate, and which of its properties feed which measure."""

    layer_id: int
    measure_map: dict[str, str]


@dataclass(frozen=True)
class AggTarget:
    """How one layer's H3 aggregates are built."""

    layer_id: int
    slug: str
    sources: tuple[AggSource, ...]
    measures: tuple[str, ...]
    timed: bool
    resolutions: tuple[int, ...] = h3bin.RESOLUTIONS
    widths: tuple[int, ...] = (0,)
    polygon_mode: h3bin.PolygonMode = "auto"
    spec_extra: dict[str, str] = field(default_factory=dict)

    def spec_hash(self) -> str:
        """Fingerprint of everything but the data; a change forces a full refresh."""
        doc = asdict(self)
        return hashlib.sha1(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def target_for(conn: Connection, info: LayerInfo) -> AggTarget | None:
    """Aggregation spec of a layer, or None for layers not aggregated (admin boundaries)."""
    if info.slug == TRAFFIC_DENSITY:
        return traffic_target(conn, info)
    if info.sector == "admin":
        return None
    measures = tuple(h3db.numeric_properties(info))
    timed = info.time_field is not None
    return AggTarget(
        layer_id=info.id,
        slug=info.slug,
        sources=(AggSource(info.id, {m: m for m in measures}),),
        measures=measures,
        timed=timed,
        widths=h3bin.TIME_WIDTHS if timed else (0,),
    )


def traffic_target(conn: Connection, info: LayerInfo) -> AggTarget:
    """traffic_density: vehicle counts of every traffic counter layer, H3 × 15 min (and hour)."""
    sources = []
    for other in list_layers(conn, with_stats=False):
        if other.sector != "traffic" or other.slug == TRAFFIC_DENSITY or other.time_field is None:
            continue
        nums = h3db.numeric_properties(other)
        prop = next((p for p in COUNT_PROPERTIES if p in nums), None)
        if prop is not None:
            sources.append(AggSource(other.id, {prop: DENSITY_MEASURE}))
    return AggTarget(
        layer_id=info.id,
        slug=info.slug,
        sources=tuple(sources),
        measures=(DENSITY_MEASURE,),
        timed=True,
        widths=DENSITY_WIDTHS,
    )


def _load(
    conn: Connection,
    target: AggTarget,
    **kwargs: object,
) -> list[h3db.FeatureArrays]:
    return [
        h3db.load_features(conn, s.layer_id, list(s.measure_map), **kwargs)  # type: ignore[arg-type]
        for s in target.sources
    ]


def compute(target: AggTarget, arrays: Sequence[h3db.FeatureArrays]) -> h3bin.AggTable:
    """Aggregate table of features read from the target's sources (pure)."""
    by_src = {s.layer_id: s for s in target.sources}
    geoms = np.concatenate([a.geoms for a in arrays]) if arrays else np.zeros(0, dtype=object)
    t = np.concatenate([a.t for a in arrays]) if arrays else np.zeros(0)
    values: dict[str, h3bin.F64] = {}
    for m in target.measures:
        parts = []
        for a in arrays:
            src = next(
                (p for p, mm in by_src[a.source_layer_id].measure_map.items() if mm == m), None
            )
            parts.append(a.values[src] if src is not None else np.full(len(a), np.nan))
        values[m] = np.concatenate(parts) if parts else np.zeros(0)
    if not target.timed:
        t = np.full(len(geoms), np.nan)
    if len(geoms) and bool(np.all(shapely.get_type_id(geoms) == 0)):
        xy = shapely.get_coordinates(geoms)
        contribs = {r: h3bin.point_contributions(xy[:, 0], xy[:, 1], r) for r in target.resolutions}
    else:
        contribs = {
            r: h3bin.geometry_contributions(geoms, r, target.polygon_mode)
            for r in target.resolutions
        }
    return h3bin.aggregate(t, values, contribs, target.widths)


def affected_keys(
    bbox: h3bin.F64, t: h3bin.F64, resolutions: Sequence[int], widths: Sequence[int]
) -> np.ndarray:
    """Keys (res, width, bucket, cell) a feature with this bbox and time can contribute to."""
    parts = []
    n = len(bbox)
    if n == 0:
        return h3bin.make_keys(
            np.zeros(0, np.int16),
            np.zeros(0, np.int32),
            np.zeros(0, np.int64),
            np.zeros(0, np.uint64),
        )
    for res in resolutions:
        item, cells = _bbox_cells(bbox, res)
        for w in widths:
            b = h3bin.bucket_floor(t, w)[item]
            ok = b >= 0
            parts.append(
                h3bin.make_keys(
                    np.full(int(ok.sum()), res, np.int16),
                    np.full(int(ok.sum()), w, np.int32),
                    b[ok],
                    cells[ok],
                )
            )
    return np.unique(np.concatenate(parts))


def _bbox_cells(bbox: h3bin.F64, res: int) -> tuple[h3bin.I64, h3bin.U64]:
    """Every cell a bbox overlaps (its centre's cell included), with the bbox index."""
    cx = (bbox[:, 0] + bbox[:, 2]) / 2
    cy = (bbox[:, 1] + bbox[:, 3]) / 2
    items = [np.arange(len(bbox), dtype=np.int64)]
    cells = [h3bin.points_to_cells(cx, cy, res)]
    boxy = np.flatnonzero((bbox[:, 2] > bbox[:, 0]) | (bbox[:, 3] > bbox[:, 1]))
    if len(boxy):
        eps = 1e-9
        boxes = shapely.box(
            bbox[boxy, 0] - eps, bbox[boxy, 1] - eps, bbox[boxy, 2] + eps, bbox[boxy, 3] + eps
        )
        lists = h3v.wkb_to_cells(
            list(shapely.to_wkb(boxes)),
            res,
            containment_mode=h3ronpy.ContainmentMode.IntersectsBoundary,
        ).to_pylist()
        lengths = np.asarray([len(x) if x else 0 for x in lists], dtype=np.int64)
        items.append(np.repeat(boxy, lengths))
        cells.append(
            np.fromiter(
                (c for x in lists if x for c in x), dtype=np.uint64, count=int(lengths.sum())
            )
        )
        # corners too: cheap insurance for boxes thinner than a cell
        for xi, yi in ((0, 1), (0, 3), (2, 1), (2, 3)):
            items.append(boxy)
            cells.append(h3bin.points_to_cells(bbox[boxy, xi], bbox[boxy, yi], res))
    return np.concatenate(items), np.concatenate(cells)


def _region_wkb(bbox: h3bin.F64) -> bytes:
    """Res-5 cells around the bboxes, one ring wider: holds every feature sharing a cell with them.

    A feature in the same res-r cell (r >= 6) as a changed one is at most one res-6 cell
    diameter (~7 km) away, less than a res-5 cell's inradius, so one ring of res-5 cells suffices.
    """
    _, cells = _bbox_cells(bbox, REGION_RES)
    import pyarrow as pa

    ring = np.asarray(pa.array(h3ronpy.grid_disk(np.unique(cells), 1)).values, dtype=np.uint64)
    hexes = h3bin.cell_polygons(np.unique(ring))
    region = shapely.union_all(hexes)
    return bytes(shapely.to_wkb(region))


@dataclass
class RefreshReport:
    """What a refresh did."""

    layer: str
    mode: str
    changed: int = 0
    deleted: int = 0
    rows_written: int = 0
    keys_recomputed: int = 0


def _rows(table: h3bin.AggTable) -> h3db.AggRows:
    return h3db.AggRows(
        table.res, table.bucket_s, table.bucket, table.cell, table.count, table.sums, table.nvals
    )


def _key_rows(keys: np.ndarray) -> h3db.AggRows:
    n = len(keys)
    return h3db.AggRows(
        keys["res"],
        keys["bucket_s"],
        keys["bucket"],
        keys["cell"],
        np.zeros(n),
        np.zeros((n, 0)),
        np.zeros((n, 0)),
    )


def refresh_target(
    conn: Connection,
    target: AggTarget,
    full: bool = False,
    overlap: timedelta = CHANGE_OVERLAP,
) -> RefreshReport:
    """Bring one layer's aggregates up to date: full recompute, or only the affected keys."""
    h3db.lock_layer(conn, target.layer_id)
    state = h3db.read_state(conn, target.layer_id)
    versions = h3db.layer_versions(conn, [s.layer_id for s in target.sources])
    spec_hash = target.spec_hash()
    if (
        not full
        and state is not None
        and state.spec_hash == spec_hash
        and state.source_versions == versions
    ):
        return RefreshReport(target.slug, "up_to_date")
    now = h3db.db_now(conn)
    measures = list(target.measures)
    if full or state is None or state.spec_hash != spec_hash:
        arrays = _load(conn, target)
        table = compute(target, arrays)
        h3db.write_aggregates(conn, target.layer_id, _rows(table), "all")
        h3db.delete_feature_state(conn, target.layer_id)
        h3db.write_feature_state(conn, target.layer_id, arrays)
        h3db.write_state(conn, target.layer_id, measures, versions, spec_hash, now, full=True)
        return RefreshReport(
            target.slug, "full", changed=sum(len(a) for a in arrays), rows_written=len(table)
        )

    since = state.refreshed_at - overlap
    changed = _load(conn, target, changed_since=since)
    deleted: list[int] = h3db.orphan_source_ids(
        conn, target.layer_id, [s.layer_id for s in target.sources]
    )
    for s in target.sources:
        deleted += h3db.deleted_feature_ids(conn, target.layer_id, s.layer_id)
    changed_ids = [int(i) for a in changed for i in a.ids.tolist()]
    old = h3db.read_feature_state(conn, target.layer_id, changed_ids + deleted)
    bbox = np.concatenate([old.bbox, *[a.bbox for a in changed]])
    t = np.concatenate([old.t, *[a.t for a in changed]])
    if not target.timed:
        t = np.full(len(bbox), np.nan)
    keys = affected_keys(bbox, t, target.resolutions, target.widths)
    rows = 0
    if len(keys):
        t_from = t_to = None
        if target.timed:
            wmax = max(target.widths)
            known = t[~np.isnan(t)]
            if len(known):
                t_from = _ts(float(np.floor(known.min() / wmax) * wmax))
                t_to = _ts(float(np.floor(known.max() / wmax) * wmax + wmax))
        cands = _load(conn, target, region_wkb=_region_wkb(bbox), t_from=t_from, t_to=t_to)
        table = compute(target, cands)
        table = table.take(np.isin(table.keys(), keys))
        h3db.write_aggregates(conn, target.layer_id, _rows(table), "keys", _key_rows(keys))
        rows = len(table)
    h3db.write_feature_state(conn, target.layer_id, changed)
    h3db.delete_feature_state(conn, target.layer_id, deleted)
    h3db.write_state(conn, target.layer_id, measures, versions, spec_hash, now, full=False)
    return RefreshReport(
        target.slug,
        "incremental",
        changed=len(changed_ids),
        deleted=len(deleted),
        rows_written=rows,
        keys_recomputed=len(keys),
    )


def _ts(epoch: float) -> object:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, tz=UTC)


def refresh_layer(engine: Engine, slug: str, full: bool = False) -> RefreshReport | None:
    """Refresh one layer by slug in its own transaction; None if the layer is not aggregated."""
    with engine.begin() as conn:
        target = target_for(conn, get_layer(conn, slug))
        if target is None:
            return None
        return refresh_target(conn, target, full=full)


def refresh_all(engine: Engine, full: bool = False) -> list[RefreshReport]:
    """Refresh every aggregated layer, each in its own transaction."""
    with engine.begin() as conn:
        ensure_density_layer(conn)
    with engine.connect() as conn:
        slugs = layer_slugs(conn)
    out = []
    for slug in slugs:
        rep = refresh_layer(engine, slug, full=full)
        if rep is not None:
            out.append(rep)
    return out
