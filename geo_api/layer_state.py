"""Per-process helpers for hot read paths (tiles, OGC items): layer version and catalog entry.

The version is read from the database on every call (one async round trip, no thread), so a
cache keyed by it is never stale, whichever process or replica changed the layer.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from layers.db import read_conninfos
from layers.errors import NotFoundError
from layers.features import registry
from layers.features.layer_versions import LayerVersion, LayerVersionProbe
from layers.features.registry import LayerInfo
from layers.features.standby import StandbyPools
from layers.settings import Settings


def read_pool(app: FastAPI) -> LayerVersionProbe:
    """The process's async connection pool for hot reads (created on first use)."""
    probe: LayerVersionProbe | None = getattr(app.state, "layer_probe", None)
    if probe is None:
        settings: Settings = app.state.settings
        probe = LayerVersionProbe(settings)
        app.state.layer_probe = probe
        app.state.layer_infos = {}
    return probe


async def close_read_pool(app: FastAPI) -> None:
    """Close the version probe's connections at shutdown (it is created on first use)."""
    probe: LayerVersionProbe | None = getattr(app.state, "layer_probe", None)
    if probe is not None:
        app.state.layer_probe = None
        await probe.close()
    standbys: StandbyPools | None = getattr(app.state, "standby_pools", None)
    if standbys is not None:
        app.state.standby_pools = None
        await standbys.close()


def standby_pools(app: FastAPI) -> StandbyPools | None:
    """The hot standbys' async pools (IOC_DATABASE_READ_URLS), or None without standbys."""
    pools: StandbyPools | None = getattr(app.state, "standby_pools", None)
    if pools is None:
        settings: Settings = app.state.settings
        conninfos = read_conninfos(settings)
        if not conninfos:
            return None
        pools = app.state.standby_pools = StandbyPools(settings, conninfos)
    return pools


async def render_pool(app: FastAPI, ver: LayerVersion) -> LayerVersionProbe:
    """Where to render a tile of `ver`: a standby that has replayed it, else the primary."""
    pools = standby_pools(app)
    if pools is not None:
        probe = await pools.for_version(ver.id, ver.data_version)
        if probe is not None:
            return probe
    return read_pool(app)


async def layer_version(request: Request, slug: str, kind: str = "layer") -> LayerVersion:
    """The layer's current (id, data_version, updated_at), or NotFoundError."""
    ver = await read_pool(request.app).get(slug)
    if ver is None:
        raise NotFoundError(
            f"{kind} '{slug}' does not exist",
            slug=slug,
            i18n=f"err.layer_state.{kind}_missing",
            kind=kind,
        )
    return ver


def _load(engine: Engine, slug: str) -> LayerInfo:
    with engine.connect() as conn:
        return registry.get_layer(conn, slug)


async def layer_info(request: Request, slug: str, ver: LayerVersion) -> LayerInfo:
    """The catalog entry, cached per (id, updated_at): a spec or data change moves the stamp."""
    read_pool(request.app)
    infos: dict[tuple[int, str], LayerInfo] = request.app.state.layer_infos
    info = infos.get((ver.id, ver.stamp))
    if info is None:
        info = await run_in_threadpool(_load, request.app.state.engine, slug)
        if len(infos) > 1000:
            infos.clear()
        infos[(ver.id, ver.stamp)] = info
    return info
