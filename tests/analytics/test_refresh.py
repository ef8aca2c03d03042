"""H3 aggregates in PostGIS: full refresh matches geopandas + h3, incremental equals full."""

from __future__ import annotations

from datetime import timedelta

import geopandas as gpd
import h3
import numpy as np
import shapely
from sqlalchemy import Engine, text

from analytics import h3jobs
from layers.analytics import h3 as h3db
from layers.features.bulk import FeatureRow, upsert_features
from layers.features.registry import LayerSpec, get_layer
from tests.analytics.conftest import T0, MakeLayer, point_spec


def _rows(n: int, seed: int, prefix: str = "p") -> list[FeatureRow]:
    rng = np.random.default_rng(seed)
    lng = rng.uniform(105.55, 105.75, n)
    lat = rng.uniform(18.6, 18.8, n)
    secs = rng.uniform(0, 5 * 86400, n)
    vals = rng.integers(0, 50, n)
    return [
        FeatureRow(
            f"{prefix}{i}",
            shapely.Point(lng[i], lat[i]),
            {"value": int(vals[i]) if i % 5 else None, "kind": "x"},
            T0 + timedelta(seconds=float(secs[i])),
        )
        for i in range(n)
    ]


def _refresh(engine: Engine, slug: str, full: bool = False) -> h3jobs.RefreshReport:
    with engine.begin() as conn:
        target = h3jobs.target_for(conn, get_layer(conn, slug))
        assert target is not None
        return h3jobs.refresh_target(conn, target, full=full, overlap=timedelta(0))


def _snapshot(engine: Engine, lid: int) -> h3db.AggRows:
    with engine.connect() as conn:
        return h3db.read_aggregates(conn, lid)


def _assert_equal(a: h3db.AggRows, b: h3db.AggRows) -> None:
    assert len(a.cell) == len(b.cell)
    for name in ("res", "bucket_s", "bucket", "cell"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    np.testing.assert_allclose(a.count, b.count)
    np.testing.assert_allclose(a.sums, b.sums)
    np.testing.assert_allclose(a.nvals, b.nvals)


def test_stored_counts_and_sums_equal_geopandas(engine: Engine, make_layer: MakeLayer) -> None:
    rows = _rows(800, 11)
    lid = make_layer(point_spec("h3_gpd_check"), rows)
    rep = _refresh(engine, "h3_gpd_check")
    assert rep.mode == "full"
    got = _snapshot(engine, lid)
    gdf = gpd.GeoDataFrame(
        {
            "value": [r.properties["value"] for r in rows],
            "t": [r.observed_at.timestamp() for r in rows if r.observed_at],
        },
        geometry=[r.geometry for r in rows],
        crs=4326,
    ).astype({"value": float})
    gdf["cell"] = gdf.geometry.apply(lambda p: int(h3.latlng_to_cell(p.y, p.x, 8), 16))
    gdf["day"] = (gdf["t"] // 86400 * 86400).astype("int64")
    ref = gdf.groupby(["day", "cell"]).agg(n=("value", "size"), s=("value", "sum"))
    mask = (got.res == 8) & (got.bucket_s == 86400)
    assert mask.sum() == len(ref)
    order = np.lexsort((got.cell[mask], got.bucket[mask]))
    np.testing.assert_array_equal(got.cell[mask][order], ref.index.get_level_values("cell"))
    np.testing.assert_array_equal(got.count[mask][order], ref["n"].to_numpy())
    np.testing.assert_allclose(got.sums[mask][order][:, 0], ref["s"].to_numpy())
    # A second refresh without changes does nothing.
    assert _refresh(engine, "h3_gpd_check").mode == "up_to_date"


def test_incremental_equals_full_points(engine: Engine, make_layer: MakeLayer) -> None:
    rows = _rows(1500, 3)
    lid = make_layer(point_spec("h3_incr_points"), rows)
    _refresh(engine, "h3_incr_points")
    total_rows = len(_snapshot(engine, lid).cell)
    with engine.begin() as conn:
        moved = [
            FeatureRow(r.source_key, shapely.Point(105.9, 18.95), {"value": 7}, r.observed_at)
            for r in rows[:5]
        ]
        upsert_features(conn, lid, moved + _rows(20, 99, prefix="new"))
        conn.execute(
            text("DELETE FROM feature WHERE layer_id = :l AND source_key IN ('p10', 'p11', 'p12')"),
            {"l": lid},
        )
    rep = _refresh(engine, "h3_incr_points")
    assert rep.mode == "incremental"
    assert rep.changed == 25 and rep.deleted == 3
    assert 0 < rep.keys_recomputed < total_rows / 4
    incremental = _snapshot(engine, lid)
    assert _refresh(engine, "h3_incr_points", full=True).mode == "full"
    _assert_equal(incremental, _snapshot(engine, lid))
    assert incremental.count[(incremental.res == 5) & (incremental.bucket_s == 86400)].sum() == 1517


def test_incremental_equals_full_polygons(engine: Engine, make_layer: MakeLayer) -> None:
    spec = LayerSpec(
        slug="h3_incr_polys",
        title_vi="p",
        title_en="p",
        sector="land",
        geometry_type="Polygon",
        property_schema={"type": "object", "properties": {"value": {"type": "number"}}},
    )
    rng = np.random.default_rng(5)
    rows = []
    for i in range(300):
        x, y = rng.uniform(105.55, 105.75), rng.uniform(18.6, 18.8)
        size = 0.02 if i % 10 == 0 else 0.0005  # a few big ones get area-weighted
        rows.append(FeatureRow(f"g{i}", shapely.box(x, y, x + size, y + size), {"value": i}))
    lid = make_layer(spec, rows)
    _refresh(engine, "h3_incr_polys")
    with engine.begin() as conn:
        upsert_features(
            conn,
            lid,
            [
                FeatureRow("g0", shapely.box(105.8, 18.9, 105.83, 18.93), {"value": 1}),
                FeatureRow("g1", shapely.box(105.6, 18.7, 105.6004, 18.7004), {"value": 2}),
                FeatureRow("gnew", shapely.box(105.7, 18.7, 105.72, 18.72), {"value": 3}),
            ],
        )
        conn.execute(
            text("DELETE FROM feature WHERE layer_id = :l AND source_key = 'g20'"), {"l": lid}
        )
    rep = _refresh(engine, "h3_incr_polys")
    assert rep.mode == "incremental" and rep.changed == 3 and rep.deleted == 1
    incremental = _snapshot(engine, lid)
    _refresh(engine, "h3_incr_polys", full=True)
    full = _snapshot(engine, lid)
    _assert_equal(incremental, full)
    for res in (5, 10):
        np.testing.assert_allclose(full.count[full.res == res].sum(), 300.0)
