"""Raster imports: read any GDAL raster, settle its CRS, validate, write a COG, catalogue it.

The COG is written under a new name per import batch and renamed into place; the catalogue
row is switched to it in one transaction afterwards. A killed import therefore leaves the
layer exactly as it was (at worst an unreferenced file, removed by the next import).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from pydantic import BaseModel
from rasterio.crs import CRS as RioCRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioError, RasterioIOError
from rasterio.io import MemoryFile
from rasterio.shutil import copy as rio_copy
from rasterio.transform import Affine, array_bounds
from rasterio.warp import calculate_default_transform, reproject, transform_bounds
from sqlalchemy import Engine

from ingest import crs as crsmod
from ingest.province import province_boundary, tolerant_boundary
from layers.errors import InvalidInputError
from layers.features.registry import LayerSpec, Sector, find_layer
from layers.rasters import store
from layers.rasters.store import BandStats, RasterMeta, Role
from layers.settings import Settings

RASTER_SUFFIXES = frozenset(
    {".tif", ".tiff", ".gtiff", ".cog", ".vrt", ".img", ".asc", ".nc", ".jp2", ".dem", ".bil"}
)
VN_TZ = timezone(timedelta(hours=7))
DEFAULT_COLORMAPS: dict[str, str] = {
    "elevation": "terrain",
    "flood_depth": "blues",
    "imagery": "rgb",
    "population": "magma",
    "generic": "viridis",
}
Progress = Callable[[str, int, int], None]


def is_raster_path(path: Path) -> bool:
    """True for file names a raster import takes (GeoTIFF/COG and other GDAL rasters)."""
    return path.suffix.lower() in RASTER_SUFFIXES


class RasterImportOptions(BaseModel):
    """What `iocmap import FILE.tif --layer SLUG` and the import form pass."""

    path: Path
    layer: str
    crs: str | None = None
    title_vi: str | None = None
    title_en: str | None = None
    sector: Sector = "environment"
    role: Role | None = None
    colormap: str | None = None
    rescale: tuple[float, float] | None = None
    units: str = ""
    synthetic: bool = False
    sensitive: bool = False
    description: str = ""
    actor: str = "cli"
    kind: str = "file"
    source_name: str | None = None
    dry_run: bool = False


@dataclass
class RasterReport:
    """What an import did: the layer, the batch, the CRS and the stored COG."""

    layer: str
    batch_id: int | None
    meta: RasterMeta
    crs: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    dry_run: bool = False

    def summary(self) -> str:
        """One paragraph for the CLI."""
        m = self.meta
        lines = [
            f"{'dry run: ' if self.dry_run else ''}raster layer '{self.layer}'"
            + (f" (batch {self.batch_id})" if self.batch_id else ""),
            f"  {m.bands} band(s) {m.dtype}, nodata {m.nodata}, {m.width}x{m.height} px"
            f" at {m.resolution_m:.1f} m, CRS {self.crs['name']} ({self.crs['source']})",
            f"  extent {', '.join(f'{v:.4f}' for v in m.bounds)}; role {m.role},"
            f" colormap {m.colormap}, rescale {m.rescale}",
        ]
        for i, s in enumerate(m.statistics, 1):
            lines.append(f"  band {i}: min {s.min} max {s.max} mean {s.mean} ({s.valid_pixels} px)")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """JSON form (API job report)."""
        return {
            "layer": self.layer,
            "batch_id": self.batch_id,
            "kind": "raster",
            "dry_run": self.dry_run,
            "crs": self.crs,
            "notes": self.notes,
            "raster": self.meta.model_dump(mode="json"),
            "pixels": self.meta.width * self.meta.height,
        }


def _err(name: str, what: str, key: str, **values: Any) -> InvalidInputError:
    # `key` names the message under err.raster. in web_map/i18n.json; `values` fill it
    return InvalidInputError(f"{name}: {what}", file=name, i18n=f"err.raster.{key}", **values)


def _choose_crs(
    src: Any, name: str, opts: RasterImportOptions, settings: Settings, province: Any
) -> crsmod.CrsChoice:
    if opts.crs:
        return crsmod.recognise(opts.crs, "option")
    if src.crs is not None:
        try:
            return crsmod.recognise(src.crs.to_wkt(), "file")
        except InvalidInputError as exc:
            raise _err(
                name,
                f"unknown CRS in the file ({exc.detail}); pass --crs",
                "crs_in_file",
                reason=exc.detail,
            ) from exc
    t: Affine = src.transform
    if t == Affine.identity() or t.is_degenerate:
        raise _err(
            name,
            "unknown CRS: the raster has no CRS and no georeferencing; pass --crs EPSG:NNNN"
            " with a georeferenced file",
            "no_georef",
        )
    cols, rows = np.meshgrid(
        np.linspace(0.5, src.width - 0.5, 12), np.linspace(0.5, src.height - 0.5, 12)
    )
    xs, ys = t * (cols.ravel(), rows.ravel())
    try:
        return crsmod.detect(
            np.asarray(xs, dtype=np.float64),
            np.asarray(ys, dtype=np.float64),
            tolerant_boundary(province, settings.province_tolerance_m),
            settings.province_official_srid,
        )
    except InvalidInputError as exc:
        raise _err(name, f"unknown CRS: {exc.detail}", "crs_unknown", reason=exc.detail) from exc


def _storage_nodata(dtype: str, nodata: float | None) -> float:
    if nodata is not None and not math.isnan(nodata):
        return float(nodata)
    if np.issubdtype(np.dtype(dtype), np.floating):
        return -9999.0
    if np.issubdtype(np.dtype(dtype), np.signedinteger):
        return float(np.iinfo(np.dtype(dtype)).min)
    return 0.0


def band_stats(band: np.ndarray, nodata: float | None) -> BandStats:
    """Statistics of the valid pixels of one band (a sample of ~4M for the percentiles)."""
    valid = np.isfinite(band) if band.dtype.kind == "f" else np.ones(band.shape, bool)
    if nodata is not None:
        valid &= band != nodata
    n = int(valid.sum())
    if n == 0:
        return BandStats(min=None, max=None, mean=None, std=None, valid_pixels=0)
    vals = band[valid].astype(np.float64)
    step = max(1, len(vals) // 4_000_000)
    p2, p98 = np.percentile(vals[::step], [2, 98])
    return BandStats(
        min=float(vals.min()),
        max=float(vals.max()),
        mean=float(vals.mean()),
        std=float(vals.std()),
        valid_pixels=n,
        p2=float(p2),
        p98=float(p98),
    )


def _guess_role(name: str, bands: int, dtype: str, descriptions: list[str]) -> Role:
    text = (name + " " + " ".join(descriptions)).lower()
    if any(k in text for k in ("dem", "elev", "height", "dtm", "dsm", "srtm", "terrain")):
        return "elevation"
    if any(k in text for k in ("depth", "flood", "ngap", "lu_")):
        return "flood_depth"
    if any(k in text for k in ("pop", "dan_so", "worldpop")):
        return "population"
    if bands >= 3 and dtype == "uint8":
        return "imagery"
    return "generic"


def _default_rescale(role: Role, stats: BandStats) -> tuple[float, float] | None:
    if stats.min is None or stats.max is None:
        return None
    if role == "imagery":
        return (0.0, 255.0)
    if role == "elevation":
        return (min(0.0, stats.min), stats.max)
    if role == "flood_depth":
        return (0.0, max(stats.p98 or stats.max, 0.5))
    lo, hi = stats.p2 or stats.min, stats.p98 or stats.max
    return (lo, hi if hi > lo else lo + 1.0)


def _file_time(tags: dict[str, str]) -> datetime | None:
    for key in ("TIFFTAG_DATETIME", "ACQUISITIONDATETIME", "DATETIME", "TIME"):
        raw = tags.get(key)
        if not raw:
            continue
        for fmt in ("%Y:%m:%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
            try:
                parsed = datetime.strptime(raw.strip()[:19], fmt)
            except ValueError:
                continue
            # TIFF times carry no zone; files from the province are in Vietnam time.
            return parsed.replace(tzinfo=VN_TZ)
    return None


def read_and_prepare(
    path: Path, opts: RasterImportOptions, settings: Settings, province: Any
) -> tuple[MemoryFile, RasterMeta, crsmod.CrsChoice, list[str]]:
    """Open and validate the file; returns it reprojected to EPSG:3857 in memory, described."""
    name = opts.source_name or path.name
    if not path.exists():
        raise _err(name, "file not found", "not_found")
    if path.stat().st_size == 0:
        raise _err(name, "the file is empty", "empty_file")
    try:
        src = rasterio.open(path)
    except RasterioIOError as exc:
        raise _err(
            name,
            f"not a raster GDAL can read ({str(exc)[:160]})",
            "unreadable",
            reason=str(exc)[:160],
        ) from exc
    notes: list[str] = []
    with src:
        if src.width == 0 or src.height == 0 or src.count == 0:
            raise _err(name, "the raster is empty (no pixels or no bands)", "no_pixels")
        if src.width * src.height * src.count > settings.raster_max_pixels:
            raise _err(
                name,
                f"{src.width}x{src.height}x{src.count} pixels is over the"
                f" {settings.raster_max_pixels} limit (IOC_RASTER_MAX_PIXELS)",
                "too_many_pixels",
                size=f"{src.width}x{src.height}x{src.count}",
                limit=settings.raster_max_pixels,
            )
        choice = _choose_crs(src, name, opts, settings, province)
        notes += choice.notes
        try:
            data = src.read()
        except (RasterioError, RasterioIOError) as exc:
            raise _err(
                name,
                f"the file is corrupt: pixels cannot be read ({str(exc)[:160]})",
                "corrupt",
                reason=str(exc)[:160],
            ) from exc
        dtype = src.dtypes[0]
        src_nodata = src.nodata
        descriptions = [d or "" for d in src.descriptions]
        tags = src.tags()
        src_transform = src.transform
        src_bounds = src.bounds
        width, height = src.width, src.height
    src_crs = RioCRS.from_user_input(choice.proj)
    nodata = _storage_nodata(dtype, src_nodata)
    if src_nodata is None and dtype == "uint8":
        notes.append("the file declares no nodata; 0 is used for pixels outside it")
    if src_nodata is not None and math.isnan(src_nodata):
        data = np.where(np.isnan(data), nodata, data).astype(dtype)
    valid_any = np.zeros(data.shape[1:], bool)
    for b in range(data.shape[0]):
        band = data[b]
        ok = band != nodata if src_nodata is not None else np.ones(band.shape, bool)
        if band.dtype.kind == "f":
            ok &= np.isfinite(band)
        valid_any |= ok
    if not valid_any.any():
        raise _err(name, "the raster is empty: every pixel is nodata", "all_nodata")
    lon_lat = transform_bounds(src_crs, "EPSG:4326", *src_bounds, densify_pts=21)
    if not tolerant_boundary(province, settings.province_tolerance_m).intersects(_box(*lon_lat)):
        raise _err(
            name,
            "outside the province: the raster covers "
            + ", ".join(f"{v:.4f}" for v in lon_lat)
            + f" (lon/lat) in {choice.name}; check --crs",
            "outside",
            bounds=", ".join(f"{v:.4f}" for v in lon_lat),
            crs=choice.name,
        )
    dst_crs = RioCRS.from_epsg(3857)
    role = opts.role or _guess_role(name, data.shape[0], dtype, descriptions)
    # Population counts are per pixel: a warp must add up the people of the pixels it merges
    # (GDAL's area-weighted sum), or the total changes with the pixel size.
    resampling = Resampling.sum if role == "population" else Resampling.nearest
    if choice.srid == 3857:
        dst_transform, dst_w, dst_h, out = src_transform, width, height, data
    else:
        dst_transform, dst_w, dst_h = calculate_default_transform(
            src_crs, dst_crs, width, height, *src_bounds
        )
        out = np.full((data.shape[0], dst_h, dst_w), nodata, dtype=dtype)
        for b in range(data.shape[0]):
            reproject(
                data[b],
                out[b],
                src_transform=src_transform,
                src_crs=src_crs,
                src_nodata=nodata if src_nodata is not None else None,
                dst_transform=dst_transform,
                dst_crs=dst_crs,
                dst_nodata=nodata,
                resampling=resampling,
                num_threads=1,
            )
    stats = [band_stats(out[b], nodata) for b in range(out.shape[0])]
    bounds = transform_bounds(dst_crs, "EPSG:4326", *array_bounds(dst_h, dst_w, dst_transform))
    lat = (bounds[1] + bounds[3]) / 2
    meta = RasterMeta(
        path="",
        width=dst_w,
        height=dst_h,
        bands=out.shape[0],
        dtype=dtype,
        nodata=nodata,
        source_crs=f"EPSG:{choice.srid}" if choice.srid else choice.name,
        crs_source=choice.source,
        transform=tuple(dst_transform)[:6],
        resolution_m=abs(dst_transform.a) * math.cos(math.radians(lat)),
        bounds=bounds,
        statistics=stats,
        band_names=[d or f"band {i + 1}" for i, d in enumerate(descriptions)],
        role=role,
        colormap=opts.colormap or DEFAULT_COLORMAPS[role],
        rescale=opts.rescale or _default_rescale(role, stats[0]),
        units=opts.units or ("m" if role in ("elevation", "flood_depth") else ""),
        observed_at=_file_time(tags),
    )
    mem = MemoryFile()
    with mem.open(
        driver="GTiff",
        width=dst_w,
        height=dst_h,
        count=out.shape[0],
        dtype=dtype,
        crs=dst_crs,
        transform=dst_transform,
        nodata=nodata,
    ) as dst:
        dst.write(out)
        for i, d in enumerate(descriptions, 1):
            if d:
                dst.set_band_description(i, d)
    return mem, meta, choice, notes


def _box(xmin: float, ymin: float, xmax: float, ymax: float) -> Any:
    from shapely.geometry import box

    return box(xmin, ymin, xmax, ymax)


def write_cog(mem: MemoryFile, target: Path, resampling: str) -> None:
    """Write a tiled, DEFLATE-compressed COG with overviews, atomically (temp file + rename)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        with mem.open() as src:
            rio_copy(
                src,
                str(tmp),
                driver="COG",
                COMPRESS="DEFLATE",
                PREDICTOR="YES",
                BLOCKSIZE=256,
                OVERVIEWS="AUTO",
                OVERVIEW_RESAMPLING=resampling,
                RESAMPLING="NEAREST",
                NUM_THREADS="1",
            )
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def import_raster(
    engine: Engine,
    settings: Settings,
    opts: RasterImportOptions,
    progress: Progress | None = None,
    batch_id: int | None = None,
) -> RasterReport:
    """Import one raster file into a raster layer (created if new), atomically."""
    say = progress or (lambda _s, _d, _t: None)
    name = opts.source_name or opts.path.name
    say("read", 0, 3)
    with engine.connect() as conn:
        province = province_boundary(settings, conn)
    mem, meta, choice, notes = read_and_prepare(opts.path, opts, settings, province)
    report = RasterReport(opts.layer, batch_id, meta, choice.summary(), notes, opts.dry_run)
    if opts.dry_run:
        mem.close()
        return report
    if batch_id is None:
        with engine.begin() as conn:
            batch_id = store.create_batch(conn, name, opts.actor, opts.kind)
    report.batch_id = batch_id
    target = store.cog_path(settings, opts.layer, batch_id)
    say("cog", 1, 3)
    try:
        # Population overviews average the people per pixel, which a coarser read then scales
        # by the pixel area (analytics.raster_jobs.people_grid).
        continuous = np.dtype(meta.dtype).kind == "f" or meta.role == "population"
        resampling = "AVERAGE" if continuous else "NEAREST"
        write_cog(mem, target, resampling)
    finally:
        mem.close()
    meta.path = str(target.relative_to(store.rasters_dir(settings)))
    meta.import_batch_id = batch_id
    spec = LayerSpec(
        slug=opts.layer,
        title_vi=opts.title_vi or opts.layer,
        title_en=opts.title_en or opts.layer,
        description=opts.description,
        sector=opts.sector,
        geometry_type="Polygon",
        synthetic=opts.synthetic,
        sensitive=opts.sensitive,
        source_system=f"file {name}",
        kind="raster",
    )
    say("catalogue", 2, 3)
    try:
        with engine.begin() as conn:
            before = store.in_use_paths(conn, opts.layer)
            found = find_layer(conn, opts.layer)
            existing = found.model_dump() if found is not None else None
            if existing is not None and opts.title_vi is None:
                spec = spec.model_copy(
                    update={
                        k: existing[k]
                        for k in ("title_vi", "title_en", "description", "sector", "synthetic")
                    }
                )
            layer_id = store.save_raster_layer(conn, spec, meta, batch_id)
            store.finish_batch(conn, batch_id, layer_id, "succeeded", report.as_dict())
    except Exception:
        target.unlink(missing_ok=True)
        raise
    _remove_unused(settings, opts.layer, keep={meta.path}, was=before)
    say("done", 3, 3)
    return report


def _remove_unused(settings: Settings, slug: str, keep: set[str], was: set[str]) -> None:
    """Delete the layer's older COGs and leftovers of killed imports (best effort)."""
    folder = store.rasters_dir(settings) / slug
    for f in folder.glob("*"):
        rel = str(f.relative_to(store.rasters_dir(settings)))
        if rel in keep:
            continue
        if f.name.endswith(".part") or rel in was or f.suffix == ".tif":
            f.unlink(missing_ok=True)
