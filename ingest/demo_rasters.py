"""Seed the synthetic demo rasters (DEM, 1-in-100-year flood depth) through the raster import."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import rasterio
from sqlalchemy import Engine

from ingest.raster import RasterImportOptions, import_raster
from layers.demo.rasters import GENERATOR, DemoRaster, generate_dem
from layers.features.registry import find_layer
from layers.rasters import store
from layers.settings import Settings

DEM_SLUG = "dem_nghe_an"
FLOOD_SLUG = "flood_depth_ca_100y"


def _write(path: Path, r: DemoRaster, description: str) -> Path:
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=r.values.shape[1],
        height=r.values.shape[0],
        count=1,
        dtype="float32",
        crs="EPSG:3857",
        transform=r.transform,
        nodata=r.nodata,
        tiled=True,
    ) as dst:
        dst.write(r.values, 1)
        dst.set_band_description(1, description)
    return path


def _current(engine: Engine, settings: Settings, slug: str, marker: str) -> bool:
    with engine.connect() as conn:
        info = find_layer(conn, slug)
        if info is None or marker not in (info.description or ""):
            return False
        meta = store.get_raster_meta(conn, info.id)
    return meta is not None and (store.rasters_dir(settings) / meta.path).exists()


def seed_demo_rasters(
    engine: Engine, settings: Settings, say: Callable[[str], None] | None = None
) -> list[str]:
    """Generate and import the demo rasters unless the same generation is already loaded."""
    log = say or (lambda _m: None)
    res = settings.raster_demo_res_m
    marker = f"[{GENERATOR} {res:g} m]"
    if _current(engine, settings, DEM_SLUG, marker) and _current(
        engine, settings, FLOOD_SLUG, marker
    ):
        log("demo rasters: up to date")
        return []
    log(f"demo rasters: generating the synthetic DEM at {res:g} m…")
    dem, depth = generate_dem(res)
    done = []
    with tempfile.TemporaryDirectory(prefix="iocmap-demo-") as tmp:
        specs = [
            (
                DEM_SLUG,
                dem,
                "elevation",
                "Mô hình số độ cao (tổng hợp)",
                "Digital elevation model (synthetic)",
                "Synthetic DEM of Nghệ An: western mountains above 2,000 m, the coastal plain"
                " near sea level, the Cả valley carved along an approximate centreline.",
            ),
            (
                FLOOD_SLUG,
                depth,
                "flood_depth",
                "Độ sâu ngập lũ 1% sông Cả (tổng hợp)",
                "1-in-100-year flood depth, lower Cả (synthetic)",
                "Synthetic 1-in-100-year flood depth along the lower Cả: a water surface about"
                " 5 m above the river bed, flooding the plain cells connected to the river.",
            ),
        ]
        for slug, raster, role, vi, en, desc in specs:
            path = _write(Path(tmp) / f"{slug}.tif", raster, en)
            import_raster(
                engine,
                settings,
                RasterImportOptions(
                    path=path,
                    layer=slug,
                    title_vi=vi,
                    title_en=en,
                    role=role,
                    synthetic=True,
                    description=f"{desc} {marker}",
                    actor="iocmap seed",
                    kind="seed",
                ),
            )
            log(f"demo rasters: {slug} ({raster.values.shape[1]}x{raster.values.shape[0]})")
            done.append(slug)
    return done
