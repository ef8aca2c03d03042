"""Tiny rasters with known values, made in the tests (the repo carries none)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from fastapi.testclient import TestClient
from rasterio.transform import from_origin
from sqlalchemy import Engine

from geo_api.main import create_app
from ingest.raster import RasterImportOptions, RasterReport, import_raster
from layers.settings import Settings

# Đô Lương, in the middle of the province's lowlands: every test raster sits around here.
LON0, LAT0 = 105.30, 18.90


def write_tif(
    path: Path,
    data: np.ndarray,
    transform: Any,
    crs: str | None,
    nodata: float | None = None,
) -> Path:
    """A GeoTIFF of one or more bands."""
    arr = data if data.ndim == 3 else data[None]
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=arr.shape[2],
        height=arr.shape[1],
        count=arr.shape[0],
        dtype=arr.dtype,
        crs=crs,
        transform=transform,
        nodata=nodata,
    ) as dst:
        dst.write(arr)
    return path


def lonlat_tif(
    path: Path,
    data: np.ndarray,
    step: float = 0.001,
    lon0: float = LON0,
    lat0: float = LAT0,
    nodata: float | None = None,
) -> Path:
    """A WGS84 raster whose top-left corner is lon0/lat0."""
    return write_tif(path, data, from_origin(lon0, lat0, step, step), "EPSG:4326", nodata)


@pytest.fixture
def do_import(engine: Engine, settings: Settings) -> Callable[..., RasterReport]:
    """import_raster with test defaults."""

    def run(path: Path, layer: str, **kw: Any) -> RasterReport:
        return import_raster(engine, settings, RasterImportOptions(path=path, layer=layer, **kw))

    return run


@pytest.fixture(scope="module")
def client(engine: Engine, settings: Settings) -> Iterator[TestClient]:
    # the tests read the English messages (Vietnamese is the default without a header)
    with TestClient(create_app(settings), headers={"Accept-Language": "en"}) as c:
        yield c
