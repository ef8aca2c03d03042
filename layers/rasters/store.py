"""Raster catalogue rows in PostGIS and the COG files they point at in the state directory."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import orjson
from geoalchemy2.shape import from_shape
from pydantic import BaseModel, ConfigDict, Field
from shapely.geometry import box
from sqlalchemy import Connection, func, select
from sqlalchemy.dialects.postgresql import insert

from layers.errors import InvalidInputError, NotFoundError
from layers.features.registry import LayerInfo, LayerSpec, create_or_update_layer, get_layer
from layers.features.registry import mark_layer_changed as _mark_changed
from layers.models import import_batch, layer
from layers.models.rasters import raster_layer
from layers.settings import Settings

Role = Literal["elevation", "flood_depth", "imagery", "population", "generic"]
STORAGE_CRS = "EPSG:3857"


class BandStats(BaseModel):
    """Statistics of one band over its valid (not nodata) pixels."""

    model_config = ConfigDict(extra="forbid")

    min: float | None
    max: float | None
    mean: float | None
    std: float | None
    valid_pixels: int
    p2: float | None = None
    p98: float | None = None


class RasterMeta(BaseModel):
    """What the catalogue records about a raster layer's COG."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="Relative to STATE_DIR/rasters")
    width: int
    height: int
    bands: int
    dtype: str
    nodata: float | None
    crs: str = STORAGE_CRS
    source_crs: str = ""
    crs_source: str = "file"
    transform: tuple[float, float, float, float, float, float]
    resolution_m: float
    bounds: tuple[float, float, float, float] = Field(description="lon/lat extent (WGS84)")
    statistics: list[BandStats]
    band_names: list[str] = Field(default_factory=list)
    role: Role = "generic"
    colormap: str = "viridis"
    rescale: tuple[float, float] | None = None
    units: str = ""
    observed_at: datetime | None = None
    import_batch_id: int | None = None


class RasterLayer(BaseModel):
    """A raster layer: its catalogue entry and its COG's description."""

    info: LayerInfo
    meta: RasterMeta

    def file(self, settings: Settings) -> Path:
        """Absolute path of the COG."""
        return rasters_dir(settings) / self.meta.path


def rasters_dir(settings: Settings) -> Path:
    """Where COGs live: STATE_DIR/rasters/<slug>/<batch>.tif."""
    return settings.state_dir / "rasters"


def cog_path(settings: Settings, slug: str, batch_id: int) -> Path:
    """The file a given import of a layer writes (a new name per batch: the old stays valid)."""
    return rasters_dir(settings) / slug / f"{batch_id}.tif"


def save_raster_layer(
    conn: Connection, spec: LayerSpec, meta: RasterMeta, batch_id: int | None
) -> int:
    """Create or update the layer (kind raster) and point its row at a new COG; returns its id."""
    if spec.kind != "raster":
        spec = spec.model_copy(update={"kind": "raster"})
    existing = conn.execute(select(layer.c.kind).where(layer.c.slug == spec.slug)).scalar()
    if existing == "vector":
        raise InvalidInputError(
            f"layer '{spec.slug}' holds vector features; import the raster into another layer",
            layer=spec.slug,
            i18n="err.rasters_store.layer_holds_vector_features_import",
        )
    layer_id = create_or_update_layer(conn, spec)
    values: dict[str, Any] = {
        "path": meta.path,
        "width": meta.width,
        "height": meta.height,
        "bands": meta.bands,
        "dtype": meta.dtype,
        "nodata": meta.nodata,
        "crs": meta.crs,
        "source_crs": meta.source_crs,
        "crs_source": meta.crs_source,
        "transform": list(meta.transform),
        "resolution_m": meta.resolution_m,
        "extent": from_shape(box(*meta.bounds), srid=4326),
        "statistics": orjson.loads(orjson.dumps([s.model_dump() for s in meta.statistics])),
        "band_names": meta.band_names,
        "role": meta.role,
        "colormap": meta.colormap,
        "rescale": list(meta.rescale) if meta.rescale else None,
        "units": meta.units,
        "observed_at": meta.observed_at,
        "import_batch_id": batch_id,
    }
    stmt = insert(raster_layer).values(layer_id=layer_id, **values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[raster_layer.c.layer_id], set_={**values, "updated_at": func.now()}
    )
    conn.execute(stmt)
    _mark_changed(conn, layer_id)
    return layer_id


def _meta_from_row(row: Any) -> RasterMeta:
    return RasterMeta(
        path=row["path"],
        width=row["width"],
        height=row["height"],
        bands=row["bands"],
        dtype=row["dtype"],
        nodata=row["nodata"],
        crs=row["crs"],
        source_crs=row["source_crs"],
        crs_source=row["crs_source"],
        transform=tuple(row["transform"]),
        resolution_m=row["resolution_m"],
        bounds=(row["xmin"], row["ymin"], row["xmax"], row["ymax"]),
        statistics=[BandStats.model_validate(s) for s in row["statistics"]],
        band_names=list(row["band_names"]),
        role=row["role"],
        colormap=row["colormap"],
        rescale=tuple(row["rescale"]) if row["rescale"] else None,
        units=row["units"],
        observed_at=row["observed_at"],
        import_batch_id=row["import_batch_id"],
    )


def _select_meta() -> Any:
    ext = raster_layer.c.extent
    return select(
        raster_layer,
        func.ST_XMin(ext).label("xmin"),
        func.ST_YMin(ext).label("ymin"),
        func.ST_XMax(ext).label("xmax"),
        func.ST_YMax(ext).label("ymax"),
    )


def get_raster_meta(conn: Connection, layer_id: int) -> RasterMeta | None:
    """The COG description of a layer id, or None for vector layers."""
    row = conn.execute(_select_meta().where(raster_layer.c.layer_id == layer_id)).mappings().first()
    return None if row is None else _meta_from_row(row)


def get_raster(conn: Connection, slug: str) -> RasterLayer:
    """A raster layer by slug; NotFoundError if unknown, InvalidInputError if vector."""
    info = get_layer(conn, slug)
    meta = get_raster_meta(conn, info.id)
    if meta is None:
        raise InvalidInputError(
            f"layer '{slug}' is not a raster layer",
            layer=slug,
            i18n="err.rasters_store.layer_not_raster_layer",
            slug=slug,
        )
    return RasterLayer(info=info, meta=meta)


def list_rasters(conn: Connection) -> dict[int, RasterMeta]:
    """Every raster layer's description by layer id."""
    rows = conn.execute(_select_meta()).mappings().all()
    return {int(r["layer_id"]): _meta_from_row(r) for r in rows}


def in_use_paths(conn: Connection, slug: str) -> set[str]:
    """COG paths (relative) the catalogue points at for a slug."""
    rows = conn.execute(
        select(raster_layer.c.path)
        .join(layer, layer.c.id == raster_layer.c.layer_id)
        .where(layer.c.slug == slug)
    ).scalars()
    return set(rows)


def require_slug(conn: Connection, slug: str) -> None:
    """NotFoundError naming the slug if no such layer exists."""
    if conn.execute(select(layer.c.id).where(layer.c.slug == slug)).scalar() is None:
        raise NotFoundError(
            f"layer '{slug}' does not exist",
            slug=slug,
            i18n="err.rasters_store.layer_does_not_exist",
        )


def create_batch(conn: Connection, source: str, actor: str, kind: str = "file") -> int:
    """A running import batch for a raster import (provenance of the row it ends in)."""
    return int(
        conn.execute(
            import_batch.insert()
            .values(source=source, kind=kind, actor=actor, mode="replace")
            .returning(import_batch.c.id)
        ).scalar_one()
    )


def finish_batch(
    conn: Connection,
    batch_id: int,
    layer_id: int | None,
    status: str,
    report: dict[str, Any],
    errors: list[dict[str, Any]] | None = None,
) -> None:
    """Close a raster import batch with its status and report."""
    conn.execute(
        import_batch.update()
        .where(import_batch.c.id == batch_id)
        .values(
            layer_id=layer_id,
            status=status,
            finished_at=func.now(),
            report=orjson.loads(orjson.dumps(report)),
            errors=errors or [],
            counts={"pixels": report.get("pixels", 0)},
        )
    )
