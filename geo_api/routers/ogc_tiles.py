"""OGC API – Tiles Part 1 at /ogc: tile matrix sets and each collection's vector tilesets."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from geo_api.deps import ConnDep
from layers.errors import NotFoundError
from layers.features import ogc_tiles, registry, tiles
from layers.features.registry import LayerInfo

router = APIRouter(prefix="/ogc", tags=["ogc"])


def _json(doc: Any) -> Response:
    return Response(orjson.dumps(doc), media_type="application/json")


def _root(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _collection(conn: ConnDep, collection_id: str) -> LayerInfo:
    try:
        return registry.get_layer(conn, collection_id)
    except NotFoundError as exc:
        raise NotFoundError(
            f"collection '{collection_id}' does not exist",
            collection=collection_id,
            i18n="err.ogc_tiles.collection_does_not_exist",
            collection_id=collection_id,
        ) from exc


def _check_tms(tms_id: str) -> None:
    if tms_id not in ogc_tiles.TMS_IDS:
        raise NotFoundError(
            f"tile matrix set '{tms_id}' is not offered; use {' or '.join(ogc_tiles.TMS_IDS)}",
            tileMatrixSetId=tms_id,
            i18n="err.ogc_tiles.tile_matrix_set_not_offered",
            tms_id=tms_id,
            TMS_ID=ogc_tiles.TMS_ID,
        )


@router.get("/tileMatrixSets", summary="Tile matrix sets (OGC API – Tiles)")
def tile_matrix_sets(request: Request) -> Response:
    """The tile matrix sets the tiles use: WebMercatorQuad and WorldCRS84Quad."""
    return _json(ogc_tiles.tile_matrix_sets_doc(_root(request) + "/ogc"))


@router.get("/tileMatrixSets/{tms_id}", summary="One tile matrix set (OGC 2D TMS 2.0)")
def tile_matrix_set(tms_id: str) -> Response:
    """The definition of a tile matrix set."""
    _check_tms(tms_id)
    return _json(ogc_tiles.tile_matrix_set(tms_id))


@router.get("/collections/{collection_id}/tiles", summary="A collection's vector tilesets")
def tilesets(collection_id: str, request: Request, conn: ConnDep) -> Response:
    """The tilesets of a collection (Mapbox vector tiles in WebMercatorQuad and WorldCRS84Quad)."""
    info = _collection(conn, collection_id)
    root = _root(request)
    return _json(ogc_tiles.tilesets_doc(info, root + "/ogc", root))


@router.get("/collections/{collection_id}/tiles/{tms_id}", summary="One vector tileset")
def tileset(collection_id: str, tms_id: str, request: Request, conn: ConnDep) -> Response:
    """A tileset: the tile URL template, its tile matrix set and the limits of the layer."""
    _check_tms(tms_id)
    info = _collection(conn, collection_id)
    root = _root(request)
    bounds = tiles.layer_bounds(conn, info)
    return _json(ogc_tiles.tileset_doc(info, root + "/ogc", root, bounds, tms_id))


@router.get(
    "/collections/{collection_id}/tiles/{tms_id}/{tile_matrix}/{tile_row}/{tile_col}",
    summary="One vector tile (OGC API – Tiles)",
    responses={200: {"content": {ogc_tiles.MVT: {}}}, 204: {"description": "empty tile"}},
)
def tile(
    collection_id: str,
    tms_id: str,
    tile_matrix: int,
    tile_row: int,
    tile_col: int,
    conn: ConnDep,
) -> Response:
    """A Mapbox vector tile: WorldCRS84Quad tiles are built here; WebMercatorQuad ones are the
    map's own /tiles/{slug}/{z}/{x}/{y}.mvt (redirected)."""
    _check_tms(tms_id)
    info = _collection(conn, collection_id)
    if tms_id == ogc_tiles.TMS_ID:
        return RedirectResponse(
            f"/tiles/{info.slug}/{tile_matrix}/{tile_col}/{tile_row}.mvt", status_code=307
        )
    data = ogc_tiles.crs84_tile(conn, info, tile_matrix, tile_row, tile_col)
    if not data:
        return Response(status_code=204)
    return Response(data, media_type=ogc_tiles.MVT)
