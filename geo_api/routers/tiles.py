"""Vector tiles (MVT) and TileJSON of every layer, with ETags and a version-keyed tile cache.

An empty tile is answered with 204 No Content (with ETag and Cache-Control), always.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Engine

from geo_api.deps import ConnDep, EngineDep, SettingsDep
from layers import registry, tiles
from layers.tile_cache import CachedTile, TileCache, TileKey


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Give the app its tile cache (one per process; keys carry the layer's data_version)."""
    app.state.tile_cache = TileCache(app.state.settings.tile_cache_max_bytes)
    yield


router = APIRouter(prefix="/tiles", tags=["tiles"], lifespan=lifespan)

PropertiesQuery = Annotated[
    str | None,
    Query(description="Comma-separated properties to include (default: all); empty for none."),
]


def _cache(request: Request) -> TileCache | None:
    cache: TileCache | None = getattr(request.app.state, "tile_cache", None)
    return cache


def _autocommit(engine: Engine) -> Engine:
    # One statement per query: no BEGIN/ROLLBACK round trips on the hot path.
    return engine.execution_options(isolation_level="AUTOCOMMIT")


@router.get("/{slug}.json", summary="TileJSON 3.0 of a layer")
def layer_tilejson(
    slug: str, request: Request, conn: ConnDep, properties: PropertiesQuery = None
) -> JSONResponse:
    """TileJSON describing the layer's vector tiles, fields and bounds."""
    info = registry.get_layer(conn, slug)
    tiles.parse_properties(info, properties)
    bbox = tiles.layer_bounds(conn, info)
    url = str(request.url_for("layer_tile", slug=slug, z="{z}", x="{x}", y="{y}"))
    url = url.replace("%7B", "{").replace("%7D", "}")
    if properties is not None:
        url += "?" + str(request.url.query)
    return JSONResponse(tiles.tilejson(info, url, bbox))


@router.get(
    "/{slug}/{z}/{x}/{y}.mvt",
    name="layer_tile",
    summary="One Mapbox vector tile (204 when empty)",
    responses={200: {"content": {tiles.MEDIA_TYPE: {}}}, 204: {"description": "Empty tile"}},
)
def layer_tile(
    slug: str,
    z: int,
    x: int,
    y: int,
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    properties: PropertiesQuery = None,
) -> Response:
    """Render (or serve from cache) one tile of a layer in WebMercatorQuad."""
    with _autocommit(engine).connect() as conn:
        info = registry.get_layer(conn, slug)
        tile = tiles.tile_address(z, x, y)
        props = tiles.parse_properties(info, properties)
        key = TileKey(
            info.id,
            info.data_version,
            format(int(info.updated_at.timestamp() * 1e6), "x"),
            z,
            x,
            y,
            tiles.props_key(props),
        )
        etag = key.etag()
        headers = {
            "ETag": etag,
            "Cache-Control": f"public, max-age={settings.tile_max_age}, must-revalidate",
            "Vary": "Accept-Encoding",
        }
        if etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        cache = _cache(request)
        cached = cache.get(key) if cache is not None else None
        if cached is None:
            data = tiles.render_tile(conn, info, tile, props, settings.tile_max_bytes)
            cached = CachedTile.of(data)
            if cache is not None:
                cache.put(key, cached)
    if not cached.data:
        return Response(status_code=204, headers=headers)
    if cached.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(cached.gzipped, media_type=tiles.MEDIA_TYPE, headers=headers)
    return Response(cached.data, media_type=tiles.MEDIA_TYPE, headers=headers)
