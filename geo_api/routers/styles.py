"""MapLibre style JSON of each layer and of the whole map, for QGIS and MapLibre clients."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from geo_api.deps import ConnDep
from geo_api.security import authorize_layers
from layers.errors import InvalidInputError
from layers.features import ogc_tiles, registry

router = APIRouter(prefix="/styles", tags=["styles"])
STYLE_TYPE = "application/vnd.mapbox.style+json"


def _style(doc: object) -> Response:
    return Response(orjson.dumps(doc), media_type="application/json")


@router.get("/map.json", summary="A MapLibre style of several layers")
def map_style(
    request: Request,
    conn: ConnDep,
    layers: Annotated[
        str | None,
        Query(description="Comma-separated slugs (default: every layer open to anonymous users)"),
    ] = None,
) -> Response:
    """Every named layer drawn as the web map draws it, each from its own vector tiles."""
    if layers:
        slugs = [s.strip() for s in layers.split(",") if s.strip()]
        if not slugs:
            raise InvalidInputError(
                "layers names no layer", param="layers", i18n="err.styles.layers_names_no_layer"
            )
        # A named restricted layer needs a role that may read it, like its tiles.
        authorize_layers(request, slugs, "layers")
        infos = [registry.get_layer(conn, slug) for slug in slugs]
    else:
        # Restricted layers are left out unless named: their tiles need a signed-in role.
        infos = [i for i in registry.list_layers(conn, with_stats=False) if not i.sensitive]
    root = str(request.base_url).rstrip("/")
    return _style(ogc_tiles.style_doc(infos, root, "IOC Map"))


@router.get("/{slug}.json", summary="A MapLibre style of one layer")
def layer_style(slug: str, request: Request, conn: ConnDep) -> Response:
    """One layer drawn as the web map draws it (QGIS: Vector Tiles layer, Style > Load style)."""
    info = registry.get_layer(conn, slug)
    root = str(request.base_url).rstrip("/")
    return _style(ogc_tiles.style_doc([info], root, info.title_en))
