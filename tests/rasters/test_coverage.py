"""The coverage index against exactextract (the reference for coverage fractions)."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from exactextract import exact_extract
from exactextract.raster import NumPyRasterSource

from analytics import coverage
from analytics.zonal import StatRequest, zonal
from layers.rasters.grid import Grid

BOUNDS = (1000.0, 2000.0, 1000.0 + 37 * 30.0, 2000.0 + 29 * 30.0)  # 37 x 29 cells of 30 m


def _shapes() -> list[shapely.Geometry]:
    rng = np.random.default_rng(7)
    x0, y0, x1, y1 = BOUNDS
    out: list[shapely.Geometry] = [
        # a star cutting cells everywhere
        shapely.Polygon(
            [
                (x0 + 500 + r * np.cos(a), y0 + 400 + r * np.sin(a))
                for a, r in zip(
                    np.linspace(0, 2 * np.pi, 23, endpoint=False),
                    rng.uniform(120, 380, 23),
                    strict=True,
                )
            ]
        ),
        # a square with a hole, sticking out of the grid to the west and south
        shapely.box(x0 - 100, y0 - 77, x0 + 400.3, y0 + 333.3).difference(
            shapely.Point(x0 + 150, y0 + 120).buffer(90)
        ),
        # two parts, one exactly on the grid lines
        shapely.MultiPolygon(
            [
                shapely.box(x0 + 600, y0 + 600, x0 + 720, y0 + 810),
                shapely.box(x1 - 95, y1 - 47, x1, y1),
            ]
        ),
        # inside one cell
        shapely.box(x0 + 31, y0 + 31, x0 + 44, y0 + 52),
        # overlapping the star
        shapely.Point(x0 + 600, y0 + 450).buffer(200),
        # all outside
        shapely.box(x1 + 10, y1 + 10, x1 + 90, y1 + 90),
    ]
    return out


@pytest.mark.parametrize("nodata", [False, True])
def test_zonal_statistics_equal_exactextract(nodata: bool) -> None:
    rng = np.random.default_rng(3)
    values = rng.uniform(-50, 900, (29, 37)).astype(np.float32)
    if nodata:
        values[5:12, 3:20] = -9999.0
        values[-1, -1] = -9999.0
    grid = Grid(values, BOUNDS, -9999.0 if nodata else None)
    shapes = _shapes()
    req = StatRequest(basic=["min", "max", "mean", "sum", "count"], above=[400.0])
    ours = zonal(grid, shapes, req)
    src = NumPyRasterSource(values, *BOUNDS, nodata=-9999.0 if nodata else None)
    feats = [
        {"type": "Feature", "properties": {"i": i}, "geometry": shapely.geometry.mapping(g)}
        for i, g in enumerate(shapes)
    ]
    ref = exact_extract(src, feats, ["min", "max", "mean", "sum", "count"], output="geojson")
    for i, f in enumerate(ref):
        p = f["properties"]
        if not p["count"]:
            assert ours[i]["count"] == 0 and ours[i]["mean"] is None
            continue
        for k in ("min", "max", "mean", "sum", "count"):
            # exactextract keeps fractions as 32-bit floats: equal to ~1e-7.
            assert ours[i][k] == pytest.approx(p[k], rel=1e-6, abs=1e-6), (i, k)


def test_fractions_add_up_to_the_area_and_the_index_is_reused() -> None:
    shapes = _shapes()
    idx = coverage.build_index(BOUNDS, (29, 37), shapes)
    ones = np.ones((29, 37), np.float32)
    got = coverage.sums(idx, ones, ones.astype(bool), np.full(29, 900.0))
    inside = shapely.intersection(np.array(shapes, dtype=object), shapely.box(*BOUNDS))
    assert got.area == pytest.approx(shapely.area(inside), rel=1e-9, abs=1e-6)
    assert got.weight == pytest.approx(shapely.area(inside) / 900.0, rel=1e-9, abs=1e-9)
    # Same grid, other values: the same index answers.
    twos = Grid(ones * 2, BOUNDS, None)
    again = zonal(twos, shapes, StatRequest(basic=["mean"]), idx)
    assert [r["mean"] for r in again[:5]] == pytest.approx([2.0] * 5)
    with pytest.raises(ValueError):
        zonal(Grid(np.ones((10, 10), np.float32), BOUNDS, None), shapes, StatRequest(), idx)


def test_polygon_max_depth_equals_the_zonal_max_over_covered_cells() -> None:
    from analytics.raster_jobs import polygon_max_depth

    rng = np.random.default_rng(11)
    depth = np.where(rng.uniform(size=(29, 37)) > 0.5, rng.uniform(0.1, 5, (29, 37)), 0.0)
    grid = Grid(depth.astype(np.float32), BOUNDS, None)
    x0, y0, _, _ = BOUNDS
    # parcels (a cell or a few), polygons on cell edges, and the large shapes
    small = [
        shapely.box(x, y, x + w, y + h)
        for x, y, w, h in zip(
            rng.uniform(x0 - 20, x0 + 1100, 300),
            rng.uniform(y0 - 20, y0 + 850, 300),
            rng.uniform(1, 70, 300),
            rng.uniform(1, 70, 300),
            strict=True,
        )
    ] + [shapely.box(x0 + 60, y0 + 60, x0 + 90, y0 + 90)]
    shapes = small + _shapes()
    got = polygon_max_depth(grid, shapes)
    masked = Grid(np.where(depth > 0, depth, np.nan).astype(np.float32), BOUNDS, None)
    ref = zonal(masked, shapes, StatRequest(basic=["max"]))
    assert got == pytest.approx([r["max"] or 0.0 for r in ref])
    assert (got > 0).sum() > 50
