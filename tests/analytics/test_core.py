"""Pure analytics: H3 binning against geopandas + h3-py, Gi*, change, forecast, indicators."""

from __future__ import annotations

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import shapely

from analytics import forecast, h3bin, hotspots, indicators


def _points(n: int = 5000, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    lng = rng.uniform(105.5, 105.8, n)
    lat = rng.uniform(18.6, 18.9, n)
    t = rng.uniform(1_767_225_600, 1_767_225_600 + 3 * 86400, n)
    beds = rng.integers(0, 100, n).astype(float)
    beds[::7] = np.nan
    return lng, lat, t, beds


def test_counts_sums_means_equal_geopandas_h3() -> None:
    lng, lat, t, beds = _points()
    table = h3bin.aggregate_points(
        lng, lat, t, {"beds": beds}, resolutions=(7, 9), widths=(0, 3600)
    )
    gdf = gpd.GeoDataFrame({"beds": beds, "t": t}, geometry=gpd.points_from_xy(lng, lat), crs=4326)
    for res in (7, 9):
        for width in (0, 3600):
            ref = gdf.assign(
                cell=gdf.geometry.apply(lambda p, r=res: h3.latlng_to_cell(p.y, p.x, r)),
                bucket=(gdf["t"] // width * width).astype("int64") if width else 0,
            )
            grouped = ref.groupby(["cell", "bucket"]).agg(
                n=("beds", "size"), s=("beds", "sum"), m=("beds", "mean")
            )
            mine = table.take((table.res == res) & (table.bucket_s == width))
            got = pd.DataFrame(
                {
                    "cell": h3bin.cells_to_strings(mine.cell),
                    "bucket": mine.bucket,
                    "n": mine.count,
                    "s": mine.sums[:, 0],
                    "m": mine.mean("beds"),
                }
            ).set_index(["cell", "bucket"])
            got = got.sort_index()
            grouped = grouped.sort_index()
            assert list(got.index) == list(grouped.index)
            np.testing.assert_array_equal(got["n"].to_numpy(), grouped["n"].to_numpy())
            np.testing.assert_allclose(got["s"].to_numpy(), grouped["s"].to_numpy())
            np.testing.assert_allclose(got["m"].to_numpy(), grouped["m"].to_numpy())


def test_time_buckets_drop_unknown_times() -> None:
    lng, lat, t, _ = _points(100)
    t[:10] = np.nan
    table = h3bin.aggregate_points(lng, lat, t, resolutions=(8,), widths=(0, 900))
    assert table.take(table.bucket_s == 0).count.sum() == 100
    assert table.take(table.bucket_s == 900).count.sum() == 90
    assert (table.take(table.bucket_s == 900).bucket % 900 == 0).all()


def test_large_polygons_spread_by_area_small_ones_by_centroid() -> None:
    big = shapely.box(105.60, 18.70, 105.66, 18.76)  # ~40 km², far larger than a res-8 cell
    small = shapely.box(105.70, 18.80, 105.7005, 18.8005)
    geoms = np.array([big, small], dtype=object)
    c = h3bin.geometry_contributions(geoms, 8)
    w_big = c.weight[c.item == 0]
    assert len(w_big) > 20
    np.testing.assert_allclose(w_big.sum(), 1.0)
    assert (c.item == 1).sum() == 1
    cen = shapely.centroid(small)
    assert c.cell[c.item == 1][0] == int(h3.latlng_to_cell(cen.y, cen.x, 8), 16)
    table = h3bin.aggregate(np.full(2, np.nan), {"v": np.array([100.0, 5.0])}, {8: c})
    np.testing.assert_allclose(table.count.sum(), 2.0)
    np.testing.assert_allclose(table.sums[:, 0].sum(), 105.0)


def test_gi_star_finds_planted_cluster() -> None:
    rng = np.random.default_rng(3)
    lng, lat, _, _ = _points(4000, seed=5)
    cl_lng = 105.65 + rng.normal(0, 0.003, 600)
    cl_lat = 18.75 + rng.normal(0, 0.003, 600)
    cells, counts = h3bin.count_points(
        np.concatenate([lng, cl_lng]), np.concatenate([lat, cl_lat]), 8
    )
    res = hotspots.gi_star(cells, counts.astype(float), k=1, alpha=0.01)
    centre = int(h3.latlng_to_cell(18.75, 105.65, 8), 16)
    i = int(np.searchsorted(res.cell, centre))
    assert res.cell[i] == centre and res.spot[i] == 1 and res.p[i] < 1e-6
    hot = res.cell[res.spot == 1]
    # every hot cell is near the planted centre
    hot_lng, hot_lat = h3bin.cells_to_lnglat(hot)
    assert np.max(np.hypot(hot_lng - 105.65, hot_lat - 18.75)) < 0.03


def test_gi_star_cold_spot() -> None:
    lng, lat, _, _ = _points(20000, seed=9)
    hole = np.hypot(lng - 105.65, lat - 18.75) > 0.02
    cells, counts = h3bin.count_points(lng[hole], lat[hole], 8)
    res = hotspots.gi_star(cells, counts.astype(float), k=1, alpha=0.05, fill_neighbors=False)
    cold_lng, cold_lat = h3bin.cells_to_lnglat(res.cell[res.spot == -1])
    assert len(cold_lng) > 0
    # the cells around the empty hole are where the cold spots sit
    assert np.min(np.hypot(cold_lng - 105.65, cold_lat - 18.75)) < 0.04


def test_change_between_periods() -> None:
    ch = hotspots.change(
        np.array([1, 2], dtype=np.uint64),
        np.array([4.0, 2.0]),
        np.array([2, 3], dtype=np.uint64),
        np.array([3.0, 5.0]),
    )
    assert ch.cell.tolist() == [1, 2, 3]
    assert ch.delta.tolist() == [-4.0, 1.0, 5.0]
    assert ch.pct[0] == -100.0 and ch.pct[1] == 50.0 and np.isnan(ch.pct[2])


def test_forecast_follows_trend_with_band() -> None:
    rng = np.random.default_rng(0)
    y = 10 + 2.0 * np.arange(20) + rng.normal(0, 1, 20)
    fc = forecast.linear_forecast(y, horizon=4)
    assert abs(fc.slope - 2.0) < 0.3 and fc.slope_p < 1e-6
    assert np.all(fc.lower < fc.mean) and np.all(fc.mean < fc.upper)
    assert abs(fc.mean[0] - (10 + 2.0 * 20)) < 3
    widths = fc.upper - fc.lower
    assert widths[-1] > widths[0]


def test_commune_indicators() -> None:
    rows = indicators.commune_indicators(
        indicators.CommuneInputs(
            codes=["a", "b"],
            names=["A", "B"],
            population=np.array([20_000.0, 1_000.0]),
            area_km2=np.array([10.0, 0.0]),
            school_codes=["a", "a", "b", "zz"],
            hospital_codes=["a"],
            report_codes=["a", "a", "a", "a", "b"],
            report_resolved=np.array([True, True, False, False, False]),
            report_on_time=np.array([1.0, 0.0, np.nan, np.nan, np.nan]),
        )
    )
    a, b = rows
    assert a["population_density"] == 2000.0 and b["population_density"] is None
    assert a["schools_per_10k"] == 1.0 and b["schools_per_10k"] == 10.0
    assert a["hospitals_per_10k"] == 0.5
    assert a["field_reports_per_1k"] == 0.2
    assert a["resolution_rate"] == 0.5 and a["on_time_rate"] == 0.5
    assert b["resolution_rate"] == 0.0 and b["on_time_rate"] is None


def test_window_plan_tiles_with_big_buckets_inside() -> None:
    from datetime import UTC, datetime

    from analytics.service import plan_segments

    f = datetime(2026, 10, 3, tzinfo=UTC)
    t = datetime(2026, 11, 2, tzinfo=UTC)
    finest, f2, t2, segs = plan_segments(f, t, h3bin.TIME_WIDTHS)
    assert finest == 86400 and (f2, t2) == (f, t)
    assert 604800 in {w for w, _, _ in segs} and len(segs) <= 3
    covered = sorted((a, b) for _, a, b in segs)
    assert covered[0][0] == f and covered[-1][1] == t
    assert all(covered[i][1] == covered[i + 1][0] for i in range(len(covered) - 1))
    for w, a, b in segs:
        assert a.timestamp() % w == 0 and b.timestamp() % w == 0
    # unaligned: snapped outward to 15 minutes
    finest, f2, _, segs = plan_segments(
        datetime(2026, 10, 3, 0, 7, tzinfo=UTC), t, h3bin.TIME_WIDTHS
    )
    assert finest == 900 and f2 == datetime(2026, 10, 3, tzinfo=UTC)
    # open window: everything from the biggest buckets
    assert plan_segments(None, None, h3bin.TIME_WIDTHS)[3] == [(604800, None, None)]
    assert plan_segments(None, None, (0,))[3] == [(0, None, None)]
