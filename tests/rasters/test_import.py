"""Raster imports: catalogue rows, COGs, CRS from file / option / detection, clear errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import rasterio
from pyproj import Transformer
from rasterio.transform import from_origin
from sqlalchemy import Engine, text

from ingest.crs import proj_for_srid
from ingest.raster import RasterReport
from layers.errors import InvalidInputError
from layers.rasters import read, store
from layers.settings import Settings
from tests.rasters.conftest import LAT0, LON0, lonlat_tif, write_tif


def test_geotiff_becomes_a_cog_layer_with_stats(
    tmp_path: Path, engine: Engine, settings: Settings, do_import: Callable[..., RasterReport]
) -> None:
    data = np.arange(400, dtype=np.float32).reshape(20, 20)
    data[0, 0] = -1.0  # nodata
    src = lonlat_tif(tmp_path / "values.tif", data, nodata=-1.0)
    report = do_import(src, "t_values")
    with engine.connect() as conn:
        r = store.get_raster(conn, "t_values")
        kind = conn.execute(text("SELECT kind FROM layer WHERE slug = 't_values'")).scalar()
        batch = conn.execute(
            text("SELECT status FROM import_batch WHERE id = :b"), {"b": report.batch_id}
        ).scalar()
    assert kind == "raster" and batch == "succeeded"
    m = r.meta
    assert (m.bands, m.dtype, m.nodata) == (1, "float32", -1.0)
    assert m.import_batch_id == report.batch_id
    # The nodata pixel is left out of the statistics.
    assert m.statistics[0].min == 1.0 and m.statistics[0].max == 399.0
    assert 100 < m.resolution_m < 110  # 0.001° at 18.9°N
    assert m.bounds[0] == pytest.approx(LON0, abs=2e-4)
    assert m.bounds[3] == pytest.approx(LAT0, abs=2e-4)
    with rasterio.open(r.file(settings)) as ds:
        assert ds.crs.to_epsg() == 3857
        assert ds.profile["tiled"] and ds.profile["blockxsize"] == 256
        assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
    # Pixel centres read back their own values; nodata reads as None.
    assert read.value_at(settings, r, LON0 + 0.0055, LAT0 - 0.0035) == [3 * 20 + 5]
    assert read.value_at(settings, r, LON0 + 0.0005, LAT0 - 0.0005) == [None]
    assert read.value_at(settings, r, LON0 + 1, LAT0) == [None]


def test_multiband_raster_keeps_bands(
    tmp_path: Path, engine: Engine, settings: Settings, do_import: Callable[..., RasterReport]
) -> None:
    data = np.stack([np.full((10, 10), v, np.uint8) for v in (10, 20, 30)])
    do_import(lonlat_tif(tmp_path / "rgb.tif", data), "t_rgb")
    with engine.connect() as conn:
        r = store.get_raster(conn, "t_rgb")
    assert r.meta.bands == 3 and r.meta.role == "imagery" and r.meta.colormap == "rgb"
    assert read.value_at(settings, r, LON0 + 0.0045, LAT0 - 0.0045) == [10, 20, 30]


def _vn2000_raster(tmp_path: Path, name: str, with_crs: bool) -> tuple[Path, float, float]:
    """A 9208 raster (30 m) with one marked pixel; returns the path and the pixel's lon/lat."""
    x0, y0 = 560_000.0, 2_091_000.0  # Đô Lương in VN-2000 / TM-3 104°45'
    data = np.zeros((40, 40), np.int16)
    data[17, 23] = 500
    path = write_tif(
        tmp_path / name, data, from_origin(x0, y0, 30.0, 30.0), "EPSG:9208" if with_crs else None
    )
    t = Transformer.from_crs(proj_for_srid(9208), "EPSG:4326", always_xy=True)
    lon, lat = t.transform(x0 + 23.5 * 30, y0 - 17.5 * 30)
    return path, lon, lat


@pytest.mark.parametrize("with_crs", [True, False], ids=["prj", "no_crs"])
def test_vn2000_raster_lands_within_half_a_pixel(
    tmp_path: Path,
    engine: Engine,
    settings: Settings,
    do_import: Callable[..., RasterReport],
    with_crs: bool,
) -> None:
    path, lon, lat = _vn2000_raster(tmp_path, f"vn_{with_crs}.tif", with_crs)
    slug = f"t_vn2000_{'prj' if with_crs else 'nocrs'}"
    report = do_import(path, slug)
    assert report.crs["srid"] == 9208
    assert report.crs["source"] == ("file" if with_crs else "detected")
    with engine.connect() as conn:
        r = store.get_raster(conn, slug)
    # The marked pixel's centre (official VN-2000 shift) reads 500; half a pixel (15 m)
    # away in each direction it still does, so the raster is where it belongs within 15 m.
    assert read.value_at(settings, r, lon, lat) == [500]
    dlon, dlat = 10 / 105_000, 10 / 111_000
    for sx, sy in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
        assert read.value_at(settings, r, lon + sx * dlon, lat + sy * dlat) == [500]


def test_ascii_grid_with_an_esri_prj_sidecar(
    tmp_path: Path, engine: Engine, settings: Settings, do_import: Callable[..., RasterReport]
) -> None:
    """A surveyor's ASCII grid with the VN-2000 CRS only in its ESRI .prj beside it."""
    from pyproj import CRS

    x0, y0 = 560_000.0, 2_091_000.0
    data = np.zeros((40, 40), np.int16)
    data[17, 23] = 500
    path = tmp_path / "grid.asc"
    with rasterio.open(
        path,
        "w",
        driver="AAIGrid",
        width=40,
        height=40,
        count=1,
        dtype="int16",
        transform=from_origin(x0, y0, 30.0, 30.0),
    ) as dst:
        dst.write(data, 1)
    (tmp_path / "grid.prj").write_text(CRS.from_epsg(9208).to_wkt(version="WKT1_ESRI"))
    report = do_import(path, "t_vn2000_asc")
    assert report.crs["srid"] == 9208 and report.crs["source"] == "file"
    t = Transformer.from_crs(proj_for_srid(9208), "EPSG:4326", always_xy=True)
    lon, lat = t.transform(x0 + 23.5 * 30, y0 - 17.5 * 30)
    with engine.connect() as conn:
        r = store.get_raster(conn, "t_vn2000_asc")
    assert read.value_at(settings, r, lon, lat) == [500]


def test_crs_option_wins(
    tmp_path: Path, engine: Engine, settings: Settings, do_import: Callable[..., RasterReport]
) -> None:
    path, lon, lat = _vn2000_raster(tmp_path, "vn_opt.tif", False)
    report = do_import(path, "t_vn2000_opt", crs="EPSG:9208")
    assert report.crs["source"] == "option"
    with engine.connect() as conn:
        r = store.get_raster(conn, "t_vn2000_opt")
    assert read.value_at(settings, r, lon, lat) == [500]


def test_bad_files_get_clear_errors(tmp_path: Path, do_import: Callable[..., RasterReport]) -> None:
    text_file = tmp_path / "notes.tif"
    text_file.write_text("this is not an image")
    with pytest.raises(InvalidInputError, match=r"notes\.tif: not a raster"):
        do_import(text_file, "t_bad")

    good = lonlat_tif(
        tmp_path / "whole.tif", np.random.default_rng(1).random((300, 300)).astype("f4")
    )
    corrupt = tmp_path / "broken.tif"
    corrupt.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(InvalidInputError, match=r"broken\.tif: .*(corrupt|not a raster)"):
        do_import(corrupt, "t_bad")

    empty = lonlat_tif(tmp_path / "empty.tif", np.full((5, 5), -9, np.float32), nodata=-9)
    with pytest.raises(InvalidInputError, match=r"empty\.tif: the raster is empty"):
        do_import(empty, "t_bad")

    far = lonlat_tif(tmp_path / "hanoi.tif", np.ones((5, 5), np.float32), lon0=105.8, lat0=21.0)
    with pytest.raises(InvalidInputError, match=r"hanoi\.tif: outside the province"):
        do_import(far, "t_bad")

    bare = write_tif(
        tmp_path / "bare.tif", np.ones((5, 5), np.uint8), rasterio.Affine.identity(), None
    )
    with pytest.raises(InvalidInputError, match=r"bare\.tif: unknown CRS"):
        do_import(bare, "t_bad")

    nowhere = write_tif(
        tmp_path / "nowhere.tif", np.ones((5, 5), np.uint8), from_origin(9e6, 9e6, 30, 30), None
    )
    with pytest.raises(InvalidInputError, match=r"nowhere\.tif: unknown CRS"):
        do_import(nowhere, "t_bad")


# Child process: start an import and die (SIGKILL) right after the new COG is on disk,
# before the catalogue row is switched to it.
_KILLED = """
import os, signal, sys
from pathlib import Path
from ingest import raster as rmod
from layers.db import make_engine
from layers.settings import Settings

settings = Settings.model_validate_json(sys.argv[3])
real = rmod.write_cog

def dying(mem, target, resampling):
    real(mem, target, resampling)
    os.kill(os.getpid(), signal.SIGKILL)

rmod.write_cog = dying
rmod.import_raster(
    make_engine(settings), settings, rmod.RasterImportOptions(path=Path(sys.argv[1]), layer=sys.argv[2])
)
"""


def test_killed_import_leaves_the_layer_as_it_was(
    tmp_path: Path, engine: Engine, settings: Settings, do_import: Callable[..., RasterReport]
) -> None:
    do_import(lonlat_tif(tmp_path / "v1.tif", np.full((10, 10), 1, np.float32)), "t_killed")
    with engine.connect() as conn:
        before = store.get_raster(conn, "t_killed")
    newer = lonlat_tif(tmp_path / "v2.tif", np.full((10, 10), 2, np.float32))
    proc = subprocess.run(
        [sys.executable, "-c", _KILLED, str(newer), "t_killed", settings.model_dump_json()],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        timeout=120,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL
    with engine.connect() as conn:
        after = store.get_raster(conn, "t_killed")
    assert after.meta == before.meta and after.info.data_version == before.info.data_version
    assert read.value_at(settings, after, LON0 + 0.0045, LAT0 - 0.0045) == [1.0]
    # The next import replaces it and tidies the leftovers.
    do_import(newer, "t_killed")
    with engine.connect() as conn:
        final = store.get_raster(conn, "t_killed")
    assert read.value_at(settings, final, LON0 + 0.0045, LAT0 - 0.0045) == [2.0]
    assert [p.name for p in final.file(settings).parent.iterdir()] == [final.file(settings).name]


def test_cli_role_marks_a_population_raster(tmp_path: Path, settings: Settings) -> None:
    from typer.testing import CliRunner

    from geo_api.cli import app as cli_app

    src = lonlat_tif(tmp_path / "counts.tif", np.full((10, 10), 4.0, np.float32))
    env = {"IOC_DATABASE_URL": settings.database_url or "", "IOC_STATE_DIR": str(tmp_path)}
    args = ["import", str(src), "--layer", "t_cli_pop", "--dry-run", "--json"]
    res = CliRunner().invoke(cli_app, [*args, "--role", "population"], env=env)
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["raster"]["role"] == "population"
    bad = CliRunner().invoke(cli_app, [*args, "--role", "people"], env=env)
    assert bad.exit_code != 0 and "--role" in bad.output
