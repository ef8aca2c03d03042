"""Vector tiles (MVT) and TileJSON of every layer, with ETags and a version-keyed tile cache.

An empty tile is answered with 204 No Content (with ETag and Cache-Control), always.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from geo_api import layer_state
from geo_api.deps import ConnDep
from layers import registry, tiles
from layers.settings import Settings
from layers.tile_cache import CachedTile, TileCache, TileKey


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Give the app its tile cache (keys carry the layer's data_version)."""
    settings: Settings = app.state.settings
    app.state.tile_cache = TileCache(settings.tile_cache_max_bytes)
    async with layer_state.lifespan(app):
        yield


# Compressing a bigger tile would hold the event loop for more than a millisecond or so.
GZIP_IN_THREAD_BYTES = 64 * 1024

router = APIRouter(prefix="/tiles", tags=["tiles"], lifespan=lifespan)

PropertiesQuery = Annotated[
    str | None,
    Query(description="Comma-separated properties to include (default: all); empty for none."),
]


def _cache(request: Request) -> TileCache | None:
    cache: TileCache | None = getattr(request.app.state, "tile_cache", None)
    return cache


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


async def _layer_sizes(
    request: Request,
    layer_id: int,
    data_version: int,
) -> tiles.LayerSizes:
    """The layer's largest feature sizes, computed once per data_version (one scan)."""
    sizes_by: dict[tuple[int, int], tiles.LayerSizes] | None = getattr(
        request.app.state, "tile_layer_sizes", None
    )
    if sizes_by is None:
        sizes_by = request.app.state.tile_layer_sizes = {}
    key = (layer_id, data_version)
    sizes = sizes_by.get(key)
    if sizes is not None:
        return sizes
    # Single flight: concurrent first requests share one scan of the layer.
    pending: dict[tuple[int, int], asyncio.Future[tiles.LayerSizes]] | None = getattr(
        request.app.state, "tile_layer_sizes_pending", None
    )
    if pending is None:
        pending = request.app.state.tile_layer_sizes_pending = {}
    future = pending.get(key)
    if future is not None:
        return await asyncio.shield(future)
    future = asyncio.get_running_loop().create_future()
    pending[key] = future
    try:
        row = await layer_state.read_pool(request.app).fetchone(
            tiles.LAYER_SIZES_SQL, {"layer_id": layer_id}
        )
        assert row is not None
        sizes = tiles.LayerSizes(float(row[0]), float(row[1]))
        if len(sizes_by) > 1000:
            sizes_by.clear()
        sizes_by[key] = sizes
        future.set_result(sizes)
        return sizes
    except BaseException as exc:
        future.set_exception(exc)
        future.exception()  # mark retrieved: waiters (if any) re-raise it
        raise
    finally:
        pending.pop(key, None)


@router.get(
    "/{slug}/{z}/{x}/{y}.mvt",
    name="layer_tile",
    summary="One Mapbox vector tile (204 when empty)",
    responses={200: {"content": {tiles.MEDIA_TYPE: {}}}, 204: {"description": "Empty tile"}},
)
async def layer_tile(
    slug: str,
    z: int,
    x: int,
    y: int,
    request: Request,
    properties: PropertiesQuery = None,
) -> Response:
    """Serve one tile of a layer in WebMercatorQuad, from the cache when its version matches.

    The warm path is one async round trip (the layer's data_version) and no thread hop
    (hence app.state read directly: sync dependencies would each cost one).
    """
    settings: Settings = request.app.state.settings
    ver = await layer_state.layer_version(request, slug)
    tile = tiles.tile_address(z, x, y)
    info = await layer_state.layer_info(request, slug, ver)
    props = tiles.parse_properties(info, properties)
    key = TileKey(ver.id, ver.data_version, ver.stamp, z, x, y, tiles.props_key(props))
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
        # The render may see data newer than `ver` (an import committing meanwhile); stored
        # under the older key it is then never asked for again, so nothing stale is served.
        pool = layer_state.read_pool(request.app)

        async def fetch(sql: str, params: dict[str, Any]) -> Any:
            row = await pool.fetchone(sql, params)
            return row[0] if row else None

        sizes = None
        if tiles.needs_sizes(info, tile):
            sizes = await _layer_sizes(request, ver.id, ver.data_version)
        data = await tiles.render_tile_async(
            fetch, info, tile, props, settings.tile_max_bytes, sizes
        )
        if len(data) > GZIP_IN_THREAD_BYTES:
            cached = await run_in_threadpool(CachedTile.of, data)
        else:
            cached = CachedTile.of(data)
        if cache is not None:
            cache.put(key, cached)
    if not cached.data:
        return Response(status_code=204, headers=headers)
    if cached.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(cached.gzipped, media_type=tiles.MEDIA_TYPE, headers=headers)
    return Response(cached.data, media_type=tiles.MEDIA_TYPE, headers=headers)
