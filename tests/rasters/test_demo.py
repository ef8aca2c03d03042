"""The synthetic demo rasters: deterministic, plausible, catalogued as synthetic, idempotent."""

from __future__ import annotations

import numpy as np
from shapely.geometry import Point
from sqlalchemy import Engine

from ingest.demo_rasters import DEM_SLUG, FLOOD_SLUG, seed_demo_rasters
from layers.demo.rasters import ca_river, generate_dem
from layers.rasters import read, store
from layers.settings import Settings


def test_demo_dem_shape_and_determinism() -> None:
    dem, depth = generate_dem(500)
    again, _ = generate_dem(500)
    assert np.array_equal(dem.values, again.values)
    v = dem.values
    ok = v != dem.nodata
    assert v[ok].max() > 2000  # mountains past 2,000 m
    cols = np.nonzero(ok.any(axis=0))[0]
    west = v[:, cols[0] : cols[0] + len(cols) // 4]
    east = v[:, cols[-1] - len(cols) // 10 : cols[-1]]
    assert np.median(west[west != dem.nodata]) > 8 * np.median(east[east != dem.nodata])
    assert (depth.values > 0).sum() > 100  # the lower Cả floods


def test_seeded_rasters_are_synthetic_and_sit_where_they_should(
    engine: Engine, settings: Settings
) -> None:
    small = settings.model_copy(update={"raster_demo_res_m": 400.0})
    assert seed_demo_rasters(engine, small) == [DEM_SLUG, FLOOD_SLUG]
    assert seed_demo_rasters(engine, small) == []  # idempotent
    with engine.connect() as conn:
        dem = store.get_raster(conn, DEM_SLUG)
        flood = store.get_raster(conn, FLOOD_SLUG)
    assert dem.info.synthetic and flood.info.synthetic
    assert dem.meta.role == "elevation" and flood.meta.role == "flood_depth"
    # Vinh's plain is low, the Cả near Đô Lương is lower than the hills beside it.
    assert read.value_at(small, dem, 105.68, 18.69)[0] < 30
    river = ca_river()
    on = river.interpolate(0.7, normalized=True)
    off = Point(on.x, on.y + 0.15)
    assert read.value_at(small, dem, on.x, on.y)[0] < read.value_at(small, dem, off.x, off.y)[0]
    near_mouth = river.interpolate(0.93, normalized=True)
    assert (read.value_at(small, flood, near_mouth.x, near_mouth.y)[0] or 0) > 0
