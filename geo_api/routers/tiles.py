"""Vector tiles (MVT) and TileJSON of every layer, with ETags and a version-keyed tile cache.

An empty tile is answered with 204 No Content (with ETag and Cache-Control), always.
Time-enabled layers take `datetime=` (an OGC API instant or interval, '..' for an open end);
the filter is part of the cache key and the ETag.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from geo_api import layer_state
from geo_api.deps import ConnDep
from layers.errors import InvalidInputError, NotFoundError
from layers.features import ogc, raster_tiles, registry, tiles
from layers.features.layer_versions import LayerVersion, LayerVersionCache
from layers.features.tile_cache import CachedTile, TileCache, TileKey
from layers.rasters import tiles as rtiles
from layers.rasters.store import RasterMeta
from layers.settings import Settings


async def start_tile_state(app: FastAPI) -> None:
    """Give the app its tile cache (keys carry the layer's data_version) and version cache.

    Started and stopped by the app's lifespan (geo_api.main).
    """
    settings: Settings = app.state.settings
    app.state.tile_cache = TileCache(settings.tile_cache_max_bytes)
    versions = LayerVersionCache(layer_state.read_pool(app), settings)
    await versions.start()
    app.state.tile_versions = versions


async def stop_tile_state(app: FastAPI) -> None:
    """Stop the version cache's listener."""
    versions: LayerVersionCache | None = getattr(app.state, "tile_versions", None)
    app.state.tile_versions = None
    if versions is not None:
        await versions.close()


# Compressing a bigger tile would hold the event loop for more than a millisecond or so.
GZIP_IN_THREAD_BYTES = 64 * 1024

router = APIRouter(prefix="/tiles", tags=["tiles"])

PropertiesQuery = Annotated[
    str | None,
    Query(
        description="Comma-separated properties to include (default: all, with source_key);"
        " empty for none."
    ),
]
DatetimeQuery = Annotated[
    str | None,
    Query(
        alias="datetime",
        description="Time-enabled layers only: an instant or an interval a/b (RFC 3339, '..' for"
        " an open end), as in OGC API Features; filters on the layer's time field. Intervals on"
        " whole hours are cached on the server.",
    ),
]


def _cache(request: Request) -> TileCache | None:
    cache: TileCache | None = getattr(request.app.state, "tile_cache", None)
    return cache


@router.get("/{slug}.json", summary="TileJSON 3.0 of a layer")
def layer_tilejson(
    slug: str,
    request: Request,
    conn: ConnDep,
    properties: PropertiesQuery = None,
    when: DatetimeQuery = None,
) -> JSONResponse:
    """TileJSON describing the layer's vector tiles, fields, bounds and time extent."""
    info = registry.get_layer(conn, slug)
    if info.kind == "raster":  # issue 20: COG layers have their own TileJSON
        from geo_api.routers.rasters import raster_tilejson
        from layers.rasters.store import get_raster

        q = request.query_params
        meta = get_raster(conn, slug).meta
        return raster_tilejson(request, info, meta, q.get("colormap"), q.get("rescale"))
    tiles.parse_properties(info, properties)
    tiles.parse_time_filter(info, when)
    bbox = tiles.layer_bounds(conn, info)
    times = ogc.time_extent(conn, info) if info.time_field else None
    url = str(request.url_for("layer_tile", slug=slug, z="{z}", x="{x}", y="{y}"))
    url = url.replace("%7B", "{").replace("%7D", "}")
    query = [("properties", properties)] if properties is not None else []
    if when:
        query.append(("datetime", when))
    if query:
        url += "?" + urlencode(query)
    return JSONResponse(tiles.tilejson(info, url, bbox, times))


def _tile_key(
    ver: LayerVersion,
    z: int,
    x: int,
    y: int,
    props: tuple[str, ...] | None,
    time_filter: tiles.TimeFilter | None,
) -> TileKey:
    """The cache key (and so the ETag) of one tile of a layer version and its filters."""
    return TileKey(
        ver.id,
        ver.data_version,
        ver.stamp,
        z,
        x,
        y,
        tiles.props_key(props),
        time_filter.key if time_filter else "",
    )


@dataclass(frozen=True)
class TileRequest:
    """What one vector-tile request is, before any cache or database: key, ETag, headers."""

    key: TileKey
    props: tuple[str, ...] | None
    time_filter: tiles.TimeFilter | None
    headers: dict[str, str]  # lower-case names; every answer (200, 204, 304) carries them
    media_type: str = tiles.MEDIA_TYPE

    @property
    def etag(self) -> str:
        """The tile's ETag (its cache key, hashed)."""
        return self.headers["etag"]


def tile_request(
    settings: Settings,
    info: registry.LayerInfo,
    ver: LayerVersion,
    z: int,
    x: int,
    y: int,
    properties: str | None,
    when: str | None,
) -> TileRequest:
    """Parse a tile request's parameters into its key and headers (InvalidInputError if bad).

    The one derivation of key, ETag and headers: `layer_tile` and the warm-hit middleware
    both use it, so they answer alike.
    """
    tiles.tile_address(z, x, y)
    props = tiles.parse_properties(info, properties)
    time_filter = tiles.parse_time_filter(info, when)
    key = _tile_key(ver, z, x, y, props, time_filter)
    headers = {
        "etag": key.etag(),
        "cache-control": _cache_control(settings),
        "vary": "Accept-Encoding",
    }
    return TileRequest(key, props, time_filter, headers)


def png_tile_request(
    settings: Settings,
    ver: LayerVersion,
    z: int,
    x: int,
    y: int,
    meta: RasterMeta | None,
    colormap: str | None = None,
    rescale: str | None = None,
    terrain: bool = False,
) -> TileRequest:
    """Key and headers of a PNG tile: a raster layer's (`meta` given: colormap and rescale,
    or terrain-RGB) or a dense vector layer's overview (`meta` None, no parameters).

    Shared by the routes and the warm-hit middleware, as `tile_request` is for vector tiles.
    """
    tiles.tile_address(z, x, y)
    if meta is None:
        # A vector layer's overview is drawn in its default style: colormap/rescale unused.
        if terrain:
            raise InvalidInputError("terrain tiles are for elevation rasters only")
        props, fmt = "", "png"
    elif terrain:
        if meta.role != "elevation":
            raise InvalidInputError(
                "terrain tiles need an elevation raster (a DEM)", param="terrain"
            )
        props, fmt = "", "terrain"
    else:
        cmap = rtiles.parse_colormap(colormap, meta)
        lo, hi = rtiles.parse_rescale(rescale, meta)
        props, fmt = f"{cmap}:{lo:g},{hi:g}", "rpng"
    key = TileKey(ver.id, ver.data_version, ver.stamp, z, x, y, props, "", fmt=fmt)
    # PNG is compressed already: no gzip copy, so no Vary on the encoding either.
    headers = {"etag": key.etag(), "cache-control": _cache_control(settings)}
    return TileRequest(key, None, None, headers, rtiles.MEDIA_TYPE)


def tile_answer(
    plan: TileRequest, cached: CachedTile | None, if_none_match: str, accept_encoding: str
) -> tuple[int, dict[str, str], bytes] | None:
    """(status, headers, body) for a validated or cached tile; None when it must be rendered."""
    if plan.etag in if_none_match:
        return 304, plan.headers, b""
    if cached is None:
        return None
    headers = dict(plan.headers)
    if not cached.data:
        return 204, headers, b""
    body = cached.data
    if cached.gzipped is not None and "gzip" in accept_encoding:
        body = cached.gzipped
        headers["content-encoding"] = "gzip"
    headers["content-type"] = plan.media_type
    headers["content-length"] = str(len(body))
    return 200, headers, body


async def current_version(request: Request, slug: str) -> LayerVersion:
    """The layer's current version: from memory while notifications are listened to."""
    versions: LayerVersionCache | None = getattr(request.app.state, "tile_versions", None)
    if versions is None:
        return await layer_state.layer_version(request, slug)
    ver = versions.peek(slug) or await versions.get(slug)
    if ver is None:
        raise NotFoundError(
            f"layer '{slug}' does not exist",
            slug=slug,
            i18n="err.routers_tiles.layer_does_not_exist",
        )
    return ver


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
    when: DatetimeQuery = None,
) -> Response:
    """Serve one tile of a layer in WebMercatorQuad, from the cache when its version matches.

    The warm path touches no database (the layer's data_version is held in memory while
    its change notifications are listened to) and makes no thread hop (hence app.state read
    directly: sync dependencies would each cost one).
    """
    settings: Settings = request.app.state.settings
    ver = await current_version(request, slug)
    tile = tiles.tile_address(z, x, y)
    info = await layer_state.layer_info(request, slug, ver)
    plan = tile_request(settings, info, ver, z, x, y, properties, when)
    props, time_filter = plan.props, plan.time_filter
    inm = request.headers.get("if-none-match", "")
    accept = request.headers.get("accept-encoding", "")
    cache = _cache(request)
    # Intervals off the hour grid are rendered but never stored (see TimeFilter.cacheable).
    if time_filter is not None and not time_filter.cacheable:
        cache = None
    cached = cache.get(plan.key) if cache is not None and plan.etag not in inm else None
    answer = tile_answer(plan, cached, inm, accept)
    if answer is None:
        # The render may see data newer than `ver` (an import committing meanwhile); stored
        # under the older key it is then never asked for again, so nothing stale is served.
        # A standby renders only once it has replayed `ver` (layers.features.standby).
        pool = await layer_state.render_pool(request.app, ver)

        async def fetch(sql: str, params: dict[str, Any]) -> Any:
            row = await pool.fetchone(sql, params, binary=True)
            return row[0] if row else None

        data = await tiles.render_tile_async(
            fetch, info, tile, props, settings.tile_max_bytes, time_filter
        )
        if len(data) > GZIP_IN_THREAD_BYTES:
            cached = await run_in_threadpool(CachedTile.of, data)
        else:
            cached = CachedTile.of(data)
        if cache is not None:
            cache.put(plan.key, cached)
        answer = tile_answer(plan, cached, inm, accept)
        assert answer is not None
    status, headers, body = answer
    return Response(body, status_code=status, headers=headers)


@router.get(
    "/{slug}/{z}/{x}/{y}.png",
    name="layer_raster_tile",
    summary="One 512-px PNG overview tile of a polygon layer (204 when empty)",
    responses={200: {"content": {raster_tiles.MEDIA_TYPE: {}}}, 204: {"description": "Empty tile"}},
)
async def layer_raster_tile(
    slug: str,
    z: int,
    x: int,
    y: int,
    request: Request,
    colormap: Annotated[str | None, Query(description="Raster layers: colormap name")] = None,
    rescale: Annotated[str | None, Query(description="Raster layers: 'min,max'")] = None,
) -> Response:
    """Serve one PNG overview tile (the layer's default style), cached like its vector tiles.

    For dense polygon layers at low zooms: one textured quad per tile instead of thousands
    of triangles. Keyed, versioned and validated (ETag/304) exactly as the .mvt tiles.
    Raster layers (issue 20) get their pixels coloured by `colormap` and `rescale`.
    """
    settings: Settings = request.app.state.settings
    ver = await current_version(request, slug)
    tile = tiles.tile_address(z, x, y)
    info = await layer_state.layer_info(request, slug, ver)
    if info.kind == "raster":
        from geo_api.routers.rasters import raster_png

        return await raster_png(request, ver, info, z, x, y, colormap, rescale)
    plan = png_tile_request(settings, ver, z, x, y, None, colormap, rescale)
    inm = request.headers.get("if-none-match", "")
    cache = _cache(request)
    cached = cache.get(plan.key) if cache is not None and plan.etag not in inm else None
    answer = tile_answer(plan, cached, inm, "")
    if answer is None:
        pool = await layer_state.render_pool(request.app, ver)

        async def fetch_row(sql: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
            return await pool.fetchone(sql, params, binary=True)

        # Drawing a dense tile takes tens to hundreds of milliseconds: off the event loop.
        data = await raster_tiles.render_raster_async(fetch_row, info, tile, draw=run_in_threadpool)
        cached = CachedTile(data, None)
        if cache is not None:
            cache.put(plan.key, cached)
        answer = tile_answer(plan, cached, inm, "")
        assert answer is not None
    status, headers, body = answer
    return Response(body, status_code=status, headers=headers)


def _cache_control(settings: Settings) -> str:
    return f"public, max-age={settings.tile_max_age}, must-revalidate"


_TILE_PATH = re.compile(
    r"^/tiles/(?P<slug>[^/]+)/(?P<terrain>terrain/)?"
    r"(?P<z>[0-9]{1,2})/(?P<x>[0-9]{1,8})/(?P<y>[0-9]{1,8})\.(?P<ext>mvt|png)$"
)
# Query parameters the warm path judges per tile kind (anything else goes to the router).
_WARM_PARAMS = {"mvt": ("properties", "datetime"), "png": ("colormap", "rescale"), "terrain": ()}

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _warm_hit(scope: Scope) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
    """(status, headers, body) when the tile is cached under the layer's current version.

    Anything else (a miss, an unknown version or catalog entry, a bad parameter) is None,
    and `layer_tile` answers it, errors included.
    """
    m = _TILE_PATH.match(scope["path"])
    if m is None:
        return None
    kind = "terrain" if m["terrain"] else m["ext"]
    if kind == "terrain" and m["ext"] != "png":
        return None
    state = scope["app"].state
    versions: LayerVersionCache | None = getattr(state, "tile_versions", None)
    cache: TileCache | None = getattr(state, "tile_cache", None)
    infos: dict[tuple[int, str], registry.LayerInfo] | None = getattr(state, "layer_infos", None)
    if versions is None or cache is None or infos is None:
        return None
    ver = versions.peek(m["slug"])
    if ver is None:
        return None
    info = infos.get((ver.id, ver.stamp))
    if info is None:
        return None
    raw: dict[str, str] = {}
    if scope["query_string"]:
        query = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        for name, value in query:
            # Anything else (or a repeated parameter) is the router's to judge.
            if name not in _WARM_PARAMS[kind] or name in raw:
                return None
            raw[name] = value
    z, x, y = int(m["z"]), int(m["x"]), int(m["y"])
    try:
        if kind == "mvt":
            plan = tile_request(
                state.settings, info, ver, z, x, y, raw.get("properties"), raw.get("datetime")
            )
        else:
            meta: RasterMeta | None = None
            if info.kind == "raster":
                # Held by the routes' first answer for this version (geo_api.routers.rasters).
                metas: dict[tuple[int, int], RasterMeta] = getattr(state, "raster_metas", {})
                meta = metas.get((ver.id, ver.data_version))
                if meta is None:
                    return None
            elif kind == "terrain":
                return None
            plan = png_tile_request(
                state.settings,
                ver,
                z,
                x,
                y,
                meta,
                raw.get("colormap"),
                raw.get("rescale"),
                terrain=kind == "terrain",
            )
    except InvalidInputError:
        return None
    inm = ""
    accept = ""
    for name, value in scope["headers"]:
        if name == b"if-none-match":
            inm = value.decode("latin-1")
        elif name == b"accept-encoding":
            accept = value.decode("latin-1")
    cached = cache.get(plan.key) if plan.etag not in inm else None
    answer = tile_answer(plan, cached, inm, accept)
    if answer is None:
        return None
    status, headers, body = answer
    return status, [(k.encode(), v.encode()) for k, v in headers.items()], body


class WarmTileMiddleware:
    """Answers warm tile hits (and their 304s) before routing and parameter parsing.

    The same answer `layer_tile` would give, at a fraction of the cost: a regex, a version
    held in memory, two dict look-ups and the cached bytes. Installed inside the security
    middleware (policy and layer sensitivity are checked first) and inside CORS.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and scope["path"].startswith("/tiles/")
        ):
            hit = _warm_hit(scope)
            if hit is not None:
                status, headers, body = hit
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
