"""OGC API – Tiles Part 1 documents for the vector tiles, and MapLibre styles of the layers.

The tiles themselves are the /tiles/{slug}/{z}/{x}/{y}.mvt ones; these documents describe
them as OGC tilesets (WebMercatorQuad) so that GDAL's OGCAPI driver and other OGC clients find
them, and as MapLibre style JSON that QGIS (Vector Tiles > Load style) and MapLibre import.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import morecantile
import orjson
from sqlalchemy import Connection, text

from layers.errors import InvalidInputError
from layers.features.registry import LayerInfo

TMS_ID = "WebMercatorQuad"
# GDAL before 3.7 (Debian 12: 3.6, so QGIS 3.22 too) reads the collection's CRS84 bbox as if it
# were in the tile matrix set's CRS, so on WebMercatorQuad it finds no tile and builds no
# layer; it prefers WorldCRS84Quad when offered, where degrees are right. Both are offered.
CRS84_TMS_ID = "WorldCRS84Quad"
TMS_IDS = (TMS_ID, CRS84_TMS_ID)
TMS_TITLES = {
    TMS_ID: "Google Maps Compatible for the World",
    CRS84_TMS_ID: "CRS84 for the World",
}
TMS_URI = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
CRS_3857 = "http://www.opengis.net/def/crs/EPSG/0/3857"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
MVT = "application/vnd.mapbox-vector-tile"
REL = "http://www.opengis.net/def/rel/ogc/1.0/"
# The zooms tileset limits are listed for: beyond it a client asks any tile in the bounds.
MAX_LIMIT_ZOOM = 18
TILE_MAX_ZOOM = 22
# WorldCRS84Quad tiles are built without the WebMercator path's dropping and clustering, so
# they stop where one tile still holds a readable share of a dense layer.
CRS84_MAX_ZOOM = 18
MVT_EXTENT = 4096
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tilesets-list",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/geodata-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/oas30",
]
VECTOR_TYPE = {
    "Point": "points",
    "MultiPoint": "points",
    "LineString": "lines",
    "MultiLineString": "lines",
    "Polygon": "polygons",
    "MultiPolygon": "polygons",
}


def tms_uri(tms_id: str) -> str:
    """The OGC URI of a registered tile matrix set."""
    return f"http://www.opengis.net/def/tilematrixset/OGC/1.0/{tms_id}"


def _max_zoom(tms_id: str) -> int:
    return TILE_MAX_ZOOM if tms_id == TMS_ID else CRS84_MAX_ZOOM


@cache
def tile_matrix_set(tms_id: str = TMS_ID) -> dict[str, Any]:
    """A tile matrix set as an OGC 2D Tile Matrix Set 2.0 document (from morecantile), with the
    TMS 1.0 keys beside the 2.0 ones.

    GDAL before 3.7 (Debian 12 has 3.6, so QGIS 3.22 too) parses only TMS 1.0 (`identifier`,
    `supportedCRS`, `topLeftCorner`); newer readers take the 2.0 keys and ignore the others.
    """
    tms = morecantile.tms.get(tms_id)
    doc: dict[str, Any] = orjson.loads(tms.model_dump_json(exclude_none=True, by_alias=True))
    matrices = doc["tileMatrices"][: _max_zoom(tms_id) + 1]
    for matrix in matrices:
        matrix["identifier"] = matrix["id"]
        matrix["topLeftCorner"] = matrix["pointOfOrigin"]
    if tms_id == TMS_ID:
        half = 20037508.342789244
        lower, upper = [-half, -half], [half, half]
    else:
        lower, upper = [-180.0, -90.0], [180.0, 90.0]
    crs = doc["crs"] if isinstance(doc["crs"], str) else CRS84
    doc.update(
        {
            "tileMatrices": matrices,
            "type": "TileMatrixSetType",
            "identifier": doc["id"],
            "supportedCRS": crs,
            "boundingBox": {
                "type": "BoundingBoxType",
                "crs": crs,
                "lowerCorner": lower,
                "upperCorner": upper,
            },
        }
    )
    return doc


def tile_matrix_sets_doc(base: str) -> dict[str, Any]:
    """The list of tile matrix sets this API offers (WebMercatorQuad, WorldCRS84Quad)."""
    return {
        "tileMatrixSets": [
            {
                "id": tms_id,
                "title": TMS_TITLES[tms_id],
                "uri": tms_uri(tms_id),
                "links": [
                    {
                        "rel": "self",
                        "type": "application/json",
                        "href": f"{base}/tileMatrixSets/{tms_id}",
                    }
                ],
            }
            for tms_id in TMS_IDS
        ]
    }


def tileset_limits(
    bounds: tuple[float, float, float, float] | None,
    max_zoom: int = MAX_LIMIT_ZOOM,
    tms_id: str = TMS_ID,
) -> list[dict[str, Any]]:
    """tileMatrixSetLimits: for each zoom, the rows and columns that cover the layer's bounds."""
    if bounds is None:
        return []
    tms = morecantile.tms.get(tms_id)
    west, south, east, north = bounds
    top = 85.05 if tms_id == TMS_ID else 90.0
    out = []
    for z in range(min(max_zoom, _max_zoom(tms_id)) + 1):
        upper_left = tms.tile(west, min(north, top), z)
        lower_right = tms.tile(east, max(south, -top), z)
        out.append(
            {
                "tileMatrix": str(z),
                "minTileRow": upper_left.y,
                "maxTileRow": lower_right.y,
                "minTileCol": upper_left.x,
                "maxTileCol": lower_right.x,
            }
        )
    return out


def _tile_template(base: str, root: str, slug: str, tms_id: str) -> str:
    if tms_id == TMS_ID:
        return f"{root}/tiles/{slug}/{{tileMatrix}}/{{tileCol}}/{{tileRow}}.mvt"
    return f"{base}/collections/{slug}/tiles/{tms_id}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}"


def _tileset_links(base: str, root: str, slug: str, tms_id: str = TMS_ID) -> list[dict[str, Any]]:
    return [
        {
            "rel": "self",
            "type": "application/json",
            "href": f"{base}/collections/{slug}/tiles/{tms_id}",
        },
        {
            "rel": f"{REL}tiling-scheme",
            "type": "application/json",
            "href": f"{base}/tileMatrixSets/{tms_id}",
        },
        {
            "rel": "item",
            "type": MVT,
            "title": "Mapbox vector tiles",
            "templated": True,
            "href": _tile_template(base, root, slug, tms_id),
        },
        {
            "rel": "describedby",
            "type": "application/json",
            "title": "TileJSON",
            "href": f"{root}/tiles/{slug}.json",
        },
        {
            "rel": "stylesheet",
            "type": "application/vnd.mapbox.style+json",
            "title": "MapLibre style",
            "href": f"{root}/styles/{slug}.json",
        },
    ]


def tilesets_doc(info: LayerInfo, base: str, root: str) -> dict[str, Any]:
    """The tilesets of one collection: its vector tiles in WebMercatorQuad and WorldCRS84Quad."""
    tilesets = []
    for tms_id in TMS_IDS:
        links = _tileset_links(base, root, info.slug, tms_id)
        tilesets.append(
            {
                "title": f"{info.title_en} ({tms_id})",
                "dataType": "vector",
                "crs": CRS_3857 if tms_id == TMS_ID else CRS84,
                "tileMatrixSetURI": tms_uri(tms_id),
                "links": [{**links[0], "rel": f"{REL}tileset"}, links[0], links[1]],
            }
        )
    return {
        "links": [
            {
                "rel": "self",
                "type": "application/json",
                "href": f"{base}/collections/{info.slug}/tiles",
            },
            {
                "rel": "collection",
                "type": "application/json",
                "href": f"{base}/collections/{info.slug}",
            },
        ],
        "tilesets": tilesets,
    }


def tileset_doc(
    info: LayerInfo,
    base: str,
    root: str,
    bounds: tuple[float, float, float, float] | None,
    tms_id: str = TMS_ID,
) -> dict[str, Any]:
    """One tileset: its tile URL template, tile matrix set, limits and layer description."""
    props = (info.property_schema or {}).get("properties", {})
    return {
        "title": info.title_en,
        "description": info.title_vi,
        "dataType": "vector",
        "crs": CRS_3857 if tms_id == TMS_ID else CRS84,
        "tileMatrixSetURI": tms_uri(tms_id),
        "tileMatrixSetDefinition": f"{base}/tileMatrixSets/{tms_id}",
        "links": _tileset_links(base, root, info.slug, tms_id),
        "tileMatrixSetLimits": tileset_limits(bounds, tms_id=tms_id),
        "layers": [
            {
                "id": info.slug,
                "title": info.title_en,
                "dataType": "vector",
                "geometryType": VECTOR_TYPE.get(str(info.geometry_type), "geometries"),
                "propertiesSchema": {"type": "object", "properties": props},
            }
        ],
    }


def crs84_tile_bounds(z: int, row: int, col: int) -> tuple[float, float, float, float]:
    """(west, south, east, north) of a WorldCRS84Quad tile; InvalidInputError outside the set."""
    if not 0 <= z <= CRS84_MAX_ZOOM:
        raise InvalidInputError(
            f"tileMatrix {z} is not in {CRS84_TMS_ID} (0–{CRS84_MAX_ZOOM})", param="tileMatrix"
        )
    if not (0 <= row < 2**z and 0 <= col < 2 ** (z + 1)):
        raise InvalidInputError(f"tile {z}/{row}/{col} is outside {CRS84_TMS_ID}", param="tileRow")
    size = 180.0 / 2**z
    west = -180.0 + col * size
    north = 90.0 - row * size
    return west, north - size, west + size, north


# One WorldCRS84Quad tile of one layer: every feature with every property (ST_AsMVT expands
# the jsonb), clipped to the tile; points get no buffer and half-open tile bounds, so each
# point lies in exactly one tile.
_CRS84_TILE = text(
    """
    WITH env AS (SELECT ST_MakeEnvelope(:west, :south, :east, :north, 4326) AS box),
    t AS (
      SELECT f.id,
             ST_AsMVTGeom(f.geom, env.box, :extent, :buffer, true) AS geom,
             f.properties
        FROM feature f, env
       WHERE f.layer_id = :layer_id AND f.geom && env.box
         AND (:buffer > 0 OR (ST_X(ST_PointOnSurface(f.geom)) >= :west
                              AND ST_X(ST_PointOnSurface(f.geom)) < :east
                              AND ST_Y(ST_PointOnSurface(f.geom)) > :south
                              AND ST_Y(ST_PointOnSurface(f.geom)) <= :north))
    )
    SELECT ST_AsMVT(t.*, :name, :extent, 'geom', 'id') FROM t
    """
)


def crs84_tile(conn: Connection, info: LayerInfo, z: int, row: int, col: int) -> bytes:
    """The Mapbox vector tile of a layer on the WorldCRS84Quad grid (for GDAL's OGCAPI driver)."""
    west, south, east, north = crs84_tile_bounds(z, row, col)
    points = VECTOR_TYPE.get(str(info.geometry_type)) == "points"
    data = conn.execute(
        _CRS84_TILE,
        {
            "west": west,
            "south": south,
            "east": east,
            "north": north,
            "extent": MVT_EXTENT,
            "buffer": 0 if points else 64,
            "layer_id": info.id,
            "name": info.slug,
        },
    ).scalar()
    return bytes(data or b"")


def collection_tile_links(base: str, slug: str) -> list[dict[str, Any]]:
    """Links a collection document carries to its tilesets (current and draft rel names)."""
    href = f"{base}/collections/{slug}/tiles"
    return [
        {"rel": f"{REL}tilesets-vector", "type": "application/json", "href": href},
        {"rel": f"{REL}tilesets", "type": "application/json", "href": href},
    ]


# --- MapLibre styles --------------------------------------------------------------------------


def _rgba(colour: Any) -> str:
    r, g, b, a = (list(colour) + [255])[:4]
    return f"rgba({int(r)}, {int(g)}, {int(b)}, {round(int(a) / 255, 3)})"


def _colour_expr(info: LayerInfo, fallback: Any) -> Any:
    style = info.default_style
    if style.color_property and style.palette:
        expr: list[Any] = ["match", ["to-string", ["get", style.color_property]]]
        for value, colour in style.palette.items():
            expr += [value, _rgba(colour)]
        expr.append(_rgba(fallback))
        return expr
    return _rgba(fallback)


def style_layers(info: LayerInfo, source: str) -> list[dict[str, Any]]:
    """MapLibre style layers drawing one catalogue layer as the web map does."""
    style = info.default_style
    kind = VECTOR_TYPE.get(str(info.geometry_type), "geometries")
    common = {"source": source, "source-layer": info.slug, "minzoom": style.min_zoom}
    fill = _colour_expr(info, style.fill_color)
    line = _rgba(style.line_color)
    layers: list[dict[str, Any]] = []
    if kind in ("polygons", "geometries"):
        layers.append(
            {
                "id": f"{info.slug}-fill",
                "type": "fill",
                **common,
                "filter": ["==", ["geometry-type"], "Polygon"],
                "paint": {"fill-color": fill, "fill-outline-color": line},
            }
        )
    if kind in ("polygons", "lines", "geometries"):
        layers.append(
            {
                "id": f"{info.slug}-line",
                "type": "line",
                **common,
                "paint": {
                    "line-color": line if kind == "polygons" else fill,
                    "line-width": style.line_width,
                },
            }
        )
    if kind in ("points", "geometries"):
        layers.append(
            {
                "id": f"{info.slug}-circle",
                "type": "circle",
                **common,
                "filter": ["==", ["geometry-type"], "Point"],
                "paint": {
                    "circle-color": fill,
                    "circle-radius": style.point_radius,
                    "circle-stroke-color": line,
                    "circle-stroke-width": 1,
                },
            }
        )
    return layers


def style_doc(infos: list[LayerInfo], root: str, name: str) -> dict[str, Any]:
    """A MapLibre style (v8) for the layers, each from its own TileJSON, with no glyphs needed."""
    sources: dict[str, Any] = {}
    layers: list[dict[str, Any]] = [
        {"id": "background", "type": "background", "paint": {"background-color": "#0b1622"}}
    ]
    for info in infos:
        sources[info.slug] = {"type": "vector", "url": f"{root}/tiles/{info.slug}.json"}
        layers += style_layers(info, info.slug)
    bounds = (103.85, 18.55, 105.85, 20.0)
    return {
        "version": 8,
        "name": name,
        "center": [(bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2],
        "zoom": 7.5,
        "metadata": {"iocmap:layers": [i.slug for i in infos]},
        "sources": sources,
        "layers": layers,
    }
