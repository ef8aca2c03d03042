"""Raster layers (issue 20): catalogue, point values, profiles, terrain-RGB tiles, zonal
statistics and flood exposure. The coloured tiles live on the shared /tiles/{slug}/{z}/{x}/{y}.png
route (geo_api.routers.tiles branches to `raster_png` here)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
import shapely
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError
from starlette.concurrency import run_in_threadpool

from analytics import raster_jobs
from analytics.zonal import parse_stats
from geo_api import layer_state
from geo_api.deps import ConnDep, SettingsDep
from geo_api.routers.tiles import current_version, png_tile_request, tile_answer
from geo_api.security import authorize_layers, current_user, info_allowed
from layers.auth.users import User
from layers.errors import InvalidInputError
from layers.features import queries, tiles
from layers.features.layer_versions import LayerVersion
from layers.features.registry import LayerInfo
from layers.features.tile_cache import CachedTile, TileCache
from layers.rasters import read, store
from layers.rasters import tiles as rtiles
from layers.rasters.cache import RasterCache
from layers.settings import Settings

router = APIRouter(tags=["rasters"])
UserDep = Annotated[User | None, Depends(current_user)]
Format = Literal["geojson", "csv", "gpkg"]
WRITERS = frozenset({"admin", "leader", "operator", "gis_staff", "planner"})


def raster_cache(request: Request) -> RasterCache:
    """The app's cache of query grids and coverage indexes (made on first use)."""
    state = request.app.state
    cache: RasterCache | None = getattr(state, "raster_cache", None)
    if cache is None:
        settings: Settings = state.settings
        cache = state.__dict__.setdefault(
            "raster_cache", RasterCache(settings.raster_cache_max_bytes)
        )
    assert cache is not None
    return cache


# --- tiles ----------------------------------------------------------------------------------


async def _meta(request: Request, ver: LayerVersion) -> store.RasterMeta:
    cache: dict[tuple[int, int], store.RasterMeta] = request.app.state.__dict__.setdefault(
        "raster_metas", {}
    )
    meta = cache.get((ver.id, ver.data_version))
    if meta is None:

        def load() -> store.RasterMeta | None:
            with request.app.state.engine.connect() as conn:
                return store.get_raster_meta(conn, ver.id)

        found = await run_in_threadpool(load)
        if found is None:
            raise InvalidInputError(
                f"layer {ver.id} is not a raster layer",
                i18n="err.rasters.layer_not_raster_layer_2",
                id=ver.id,
            )
        meta = found
        if len(cache) > 1000:
            cache.clear()
        cache[(ver.id, ver.data_version)] = meta
    return meta


async def raster_png(
    request: Request,
    ver: LayerVersion,
    info: LayerInfo,
    z: int,
    x: int,
    y: int,
    colormap: str | None,
    rescale: str | None,
    terrain: bool = False,
) -> Response:
    """One tile of a raster layer (colormap + rescale, or terrain-RGB), cached by version."""
    settings: Settings = request.app.state.settings
    tiles.tile_address(z, x, y)
    meta = await _meta(request, ver)
    if terrain and meta.role != "elevation":
        raise InvalidInputError(
            f"layer '{info.slug}' is not an elevation raster; terrain tiles need a DEM",
            layer=info.slug,
            i18n="err.rasters.layer_not_elevation_raster_terrain",
        )
    plan = png_tile_request(settings, ver, z, x, y, meta, colormap, rescale, terrain)
    inm = request.headers.get("if-none-match", "")
    cache: TileCache | None = getattr(request.app.state, "tile_cache", None)
    cached = cache.get(plan.key) if cache is not None and plan.etag not in inm else None
    answer = tile_answer(plan, cached, inm, "")
    if answer is None:
        path = store.rasters_dir(settings) / meta.path
        if terrain:
            data = await run_in_threadpool(rtiles.render_terrain, path, meta, z, x, y)
        else:
            cmap = rtiles.parse_colormap(colormap, meta)
            lo, hi = rtiles.parse_rescale(rescale, meta)
            data = await run_in_threadpool(rtiles.render_tile, path, meta, z, x, y, cmap, (lo, hi))
        cached = CachedTile(data, None)
        if cache is not None:
            cache.put(plan.key, cached)
        answer = tile_answer(plan, cached, inm, "")
        assert answer is not None
    status, headers, body = answer
    return Response(body, status_code=status, headers=headers)


def raster_tilejson(
    request: Request,
    info: LayerInfo,
    meta: store.RasterMeta,
    colormap: str | None,
    rescale: str | None,
) -> JSONResponse:
    """TileJSON of a raster layer (the shared /tiles/{slug}.json route branches here)."""
    cmap = rtiles.parse_colormap(colormap, meta)
    lo, hi = rtiles.parse_rescale(rescale, meta)
    meta = meta.model_copy(update={"colormap": cmap, "rescale": (lo, hi)})
    base = str(request.base_url).rstrip("/")
    url = f"{base}/tiles/{info.slug}/{{z}}/{{x}}/{{y}}.png?colormap={cmap}&rescale={lo:g},{hi:g}"
    terrain = (
        f"{base}/tiles/{info.slug}/terrain/{{z}}/{{x}}/{{y}}.png"
        if meta.role == "elevation"
        else None
    )
    return JSONResponse(rtiles.tilejson(meta, info.slug, url, terrain))


@router.get(
    "/tiles/{slug}/terrain/{z}/{x}/{y}.png",
    summary="Terrain-RGB tile of an elevation raster (Mapbox encoding)",
    responses={200: {"content": {rtiles.MEDIA_TYPE: {}}}, 204: {"description": "Outside"}},
)
async def terrain_tile(slug: str, z: int, x: int, y: int, request: Request) -> Response:
    """height = -10000 + (R*65536 + G*256 + B) * 0.1; for deck.gl's TerrainLayer."""
    ver = await current_version(request, slug)
    info = await layer_state.layer_info(request, slug, ver)
    _require_raster(info)
    return await raster_png(request, ver, info, z, x, y, None, None, terrain=True)


def _require_raster(info: LayerInfo) -> None:
    if info.kind != "raster":
        raise InvalidInputError(
            f"layer '{info.slug}' is not a raster layer",
            layer=info.slug,
            i18n="err.rasters.layer_not_raster_layer",
        )


# --- catalogue, point, profile --------------------------------------------------------------


@router.get("/api/rasters", summary="Raster layers with their bands, statistics and defaults")
def list_rasters(conn: ConnDep, user: UserDep) -> list[dict[str, Any]]:
    """Every raster layer the caller may read."""
    from layers.features.registry import list_layers

    metas = store.list_rasters(conn)
    out = []
    for info in list_layers(conn, with_stats=False):
        meta = metas.get(info.id)
        if meta is None or not info_allowed(user, info):
            continue
        out.append(_describe(info, meta))
    return out


def _describe(info: LayerInfo, meta: store.RasterMeta) -> dict[str, Any]:
    from layers.rasters import colormaps

    lo, hi = meta.rescale or (0.0, 1.0)
    return {
        "slug": info.slug,
        "title_vi": info.title_vi,
        "title_en": info.title_en,
        "kind": "raster",
        "synthetic": info.synthetic,
        "sector": info.sector,
        "data_version": info.data_version,
        **meta.model_dump(mode="json", exclude={"path"}),
        "legend": colormaps.legend(meta.colormap, lo, hi) if meta.colormap != "rgb" else [],
    }


@router.get("/api/rasters/{slug}", summary="One raster layer's description")
def get_raster(slug: str, conn: ConnDep) -> dict[str, Any]:
    """Bands, dtype, nodata, resolution, extent, statistics, time and provenance batch."""
    r = store.get_raster(conn, slug)
    return _describe(r.info, r.meta)


@router.get("/api/rasters/{slug}/point", summary="Raster value(s) at a lon/lat point")
def point_value(
    slug: str,
    conn: ConnDep,
    settings: SettingsDep,
    lon: Annotated[float, Query(ge=-180, le=180)],
    lat: Annotated[float, Query(ge=-90, le=90)],
) -> dict[str, Any]:
    """Every band's value (null where nodata or outside the raster)."""
    r = store.get_raster(conn, slug)
    values = read.value_at(settings, r, lon, lat)
    return {"layer": slug, "lon": lon, "lat": lat, "values": values, "units": r.meta.units}


class ProfileBody(BaseModel):
    """A drawn line (GeoJSON LineString, WGS84) and how many samples along it."""

    model_config = ConfigDict(extra="forbid")

    line: dict[str, Any]
    samples: int = Field(default=200, ge=2)


@router.post("/api/rasters/{slug}/profile", summary="Values (an elevation profile) along a line")
def profile(slug: str, body: ProfileBody, conn: ConnDep, settings: SettingsDep) -> dict[str, Any]:
    """Evenly spaced samples with their geodesic distance from the start."""
    if body.samples > settings.raster_profile_max_samples:
        raise InvalidInputError(
            f"samples must be at most {settings.raster_profile_max_samples}",
            param="samples",
            i18n="err.rasters.samples_must_be_at_most",
            raster_profile_max_samples=settings.raster_profile_max_samples,
        )
    geom = body.line.get("geometry", body.line)
    if geom.get("type") != "LineString":
        raise InvalidInputError(
            "line must be a GeoJSON LineString",
            param="line",
            i18n="err.rasters.line_must_be_geojson_linestring",
        )
    coords = [(float(c[0]), float(c[1])) for c in geom.get("coordinates", [])]
    r = store.get_raster(conn, slug)
    points = read.profile(settings, r, coords, body.samples)
    values = [p["value"] for p in points if p["value"] is not None]
    return {
        "layer": slug,
        "units": r.meta.units,
        "length_m": points[-1]["distance_m"],
        "min": min(values) if values else None,
        "max": max(values) if values else None,
        "points": points,
    }


# --- zonal statistics and flood exposure ----------------------------------------------------


class ZonalBody(BaseModel):
    """Zonal statistics of a raster over a polygon layer's units or a drawn polygon."""

    model_config = ConfigDict(extra="forbid")

    raster: str = Field(description="Raster layer slug")
    units: str | dict[str, Any] = Field(
        default="admin_communes", description="Polygon layer slug or a GeoJSON polygon"
    )
    stats: list[str | dict[str, float]] = Field(
        default_factory=lambda: list[str | dict[str, float]](["min", "max", "mean", "count"]),
        description='min, max, mean, sum, count, area_km2, {"area_km2_above": X}',
    )
    band: int = Field(default=1, ge=1)

    def layer_slugs(self) -> list[str]:
        """Every layer slug the request names (for the access check)."""
        return [self.raster, *([self.units] if isinstance(self.units, str) else [])]


@router.post("/api/query/zonal", summary="Zonal statistics, exact over partial pixels")
def zonal_stats(
    body: ZonalBody,
    request: Request,
    conn: ConnDep,
    settings: SettingsDep,
    format: Format = "geojson",
) -> Response:
    """One row per unit with its code and name; export as GeoJSON, CSV or GeoPackage."""
    authorize_layers(request, body.layer_slugs())
    try:
        req = parse_stats(list(body.stats))
    except ValueError as exc:
        raise InvalidInputError(
            str(exc), param="stats", i18n="err.rasters.stats", stats=", ".join(map(str, body.stats))
        ) from exc
    result = raster_jobs.zonal_query(
        conn, settings, body.raster, body.units, req, body.band, raster_cache(request)
    )
    data = queries.export(result, format)
    headers = {"X-Result-Count": str(len(result))}
    if format != "geojson":
        headers["Content-Disposition"] = f'attachment; filename="{result.name}.{format}"'
    return Response(data, media_type=queries.EXPORT_FORMATS[format], headers=headers)


class FloodBody(BaseModel):
    """A flood: a depth raster, or a DEM with a water level and a seed (river line or point)."""

    model_config = ConfigDict(extra="forbid")

    depth: str | None = Field(default=None, description="Flood-depth raster slug")
    dem: str | None = Field(default=None, description="DEM raster slug")
    level_m: float | None = Field(default=None, description="Water surface elevation (m)")
    seed: dict[str, Any] | None = Field(
        default=None, description="GeoJSON point or line the water starts from"
    )
    units: str = Field(default="admin_communes", description="Polygon layer of the units")
    layers: list[str] | None = Field(
        default=None, description="Point/polygon layers to check (default: all readable)"
    )
    population: str | None = Field(
        default=None,
        description="Population raster (people per pixel); default: the first readable raster"
        " whose role is population, if any",
    )
    min_depth_m: float = Field(default=0.0, ge=0)
    preview: bool = Field(default=False, description="Coarser grid, for a live slider")
    write_layer: str | None = Field(
        default="flood_extent", pattern=r"^[a-z][a-z0-9_]{1,62}$", description="Extent layer"
    )
    max_features: int = Field(default=5000, ge=1, le=100_000)

    @model_validator(mode="after")
    def _one_source(self) -> FloodBody:
        if (self.depth is None) == (self.dem is None):
            raise PydanticCustomError(
                "flood_source", "give either depth, or dem with level_m and seed"
            )
        if self.dem is not None and (self.level_m is None or self.seed is None):
            raise PydanticCustomError("flood_dem", "dem needs level_m and seed")
        return self

    def layer_slugs(self) -> list[str]:
        """Every layer slug the request names (for the access check)."""
        named = [self.depth, self.dem, self.units, self.population, *(self.layers or [])]
        return [s for s in named if s]


@router.post(
    "/api/query/flood-exposure",
    summary="Communes, people and features under water",
    response_class=Response,
    responses={200: {"content": {"application/json": {}}}},
)
def flood_exposure(
    body: FloodBody, request: Request, conn: ConnDep, settings: SettingsDep, user: UserDep
) -> Response:
    """Per commune flooded km², share and people exposed; per layer the features under water
    (only layers the caller may read); the extent as GeoJSON, also written as a layer."""
    authorize_layers(request, body.layer_slugs())
    for slug in body.layers or []:
        from layers.features.registry import get_layer

        info = get_layer(conn, slug)
        if not info_allowed(user, info):
            from layers.errors import PermissionDeniedError

            raise PermissionDeniedError(
                f"layer '{slug}' is restricted", i18n="err.rasters.layer_restricted", slug=slug
            )
    cache = raster_cache(request)

    def may_read(info: LayerInfo) -> bool:
        return info_allowed(user, info)

    grid, source, factor = raster_jobs.flood_depth_grid(
        conn,
        settings,
        depth=body.depth,
        dem=body.dem,
        level_m=body.level_m,
        seed=body.seed,
        preview=body.preview,
        min_depth_m=body.min_depth_m,
        cache=cache,
    )
    population = raster_jobs.population_raster(conn, body.population, may_read)
    result = raster_jobs.exposure(
        conn,
        settings,
        grid,
        body.units,
        may_read,
        body.layers,
        body.max_features,
        population,
        cache,
        max_listed=settings.raster_preview_max_listed if body.preview else None,
    )
    simplify = grid.res[0] * (1.0 if body.preview else 0.5)
    extent = raster_jobs.extent_polygons(grid, simplify)
    written = None
    if body.write_layer and not body.preview and user is not None and user.role in WRITERS:
        from layers.rasters.extent import write_extent

        write_extent(
            conn,
            body.write_layer,
            extent,
            {
                "source": source.info.slug,
                "level_m": body.level_m,
                "flooded_km2": result["totals"]["flooded_km2"],
                "people_exposed": result["totals"]["people_exposed"],
            },
            source.info.synthetic,
        )
        written = body.write_layer
    payload = {
        "source": source.info.slug,
        "synthetic": source.info.synthetic,
        "level_m": body.level_m,
        "cell_m": round(grid.res[0] * source.meta.resolution_m / abs(source.meta.transform[0]), 2),
        "decimation": factor,
        **result,
        "extent": {
            "type": "Feature",
            "properties": {"flooded_km2": result["totals"]["flooded_km2"]},
            "geometry": shapely.geometry.mapping(extent),
        },
        "written_layer": written,
    }
    # orjson straight away: the extent's coordinates and the lists are large for
    # FastAPI's element-by-element encoder, and a live slider waits on this.
    return Response(
        orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json"
    )
