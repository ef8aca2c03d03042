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

from layers.features.registry import LayerInfo

TMS_ID = "WebMercatorQuad"
TMS_URI = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
CRS_3857 = "http://www.opengis.net/def/crs/EPSG/0/3857"
MVT = "application/vnd.mapbox-vector-tile"
REL = "http://www.opengis.net/def/rel/ogc/1.0/"
# The zooms tileset limits are listed for: beyond it a client asks any tile in the bounds.
MAX_LIMIT_ZOOM = 18
TILE_MAX_ZOOM = 22
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


@cache
def tile_matrix_set() -> dict[str, Any]:
    """WebMercatorQuad as an OGC 2D Tile Matrix Set 2.0 document (from morecantile), with the
    TMS 1.0 keys beside the 2.0 ones.

    GDAL before 3.7 (Debian 12 has 3.6, so QGIS 3.22 too) parses only TMS 1.0 (`identifier`,
    `supportedCRS`, `topLeftCorner`); newer readers take the 2.0 keys and ignore the others.
    """
    tms = morecantile.tms.get(TMS_ID)
    doc: dict[str, Any] = orjson.loads(tms.model_dump_json(exclude_none=True, by_alias=True))
    matrices = doc["tileMatrices"][: TILE_MAX_ZOOM + 1]
    for matrix in matrices:
        matrix["identifier"] = matrix["id"]
        matrix["topLeftCorner"] = matrix["pointOfOrigin"]
    half = 20037508.342789244
    doc.update(
        {
            "tileMatrices": matrices,
            "type": "TileMatrixSetType",
            "identifier": doc["id"],
            "supportedCRS": doc["crs"],
            "boundingBox": {
                "type": "BoundingBoxType",
                "crs": doc["crs"],
                "lowerCorner": [-half, -half],
                "upperCorner": [half, half],
            },
        }
    )
    return doc


def tile_matrix_sets_doc(base: str) -> dict[str, Any]:
    """The list of tile matrix sets this API offers (one: WebMercatorQuad)."""
    return {
        "tileMatrixSets": [
            {
                "id": TMS_ID,
                "title": "Google Maps Compatible for the World",
                "uri": TMS_URI,
                "links": [
                    {
                        "rel": "self",
                        "type": "application/json",
                        "href": f"{base}/tileMatrixSets/{TMS_ID}",
                    }
                ],
            }
        ]
    }


def tileset_limits(
    bounds: tuple[float, float, float, float] | None, max_zoom: int = MAX_LIMIT_ZOOM
) -> list[dict[str, Any]]:
    """tileMatrixSetLimits: for each zoom, the rows and columns that cover the layer's bounds."""
    if bounds is None:
        return []
    tms = morecantile.tms.get(TMS_ID)
    west, south, east, north = bounds
    out = []
    for z in range(max_zoom + 1):
        upper_left = tms.tile(west, min(north, 85.05), z)
        lower_right = tms.tile(east, max(south, -85.05), z)
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


def _tileset_links(base: str, root: str, slug: str) -> list[dict[str, Any]]:
    return [
        {
            "rel": "self",
            "type": "application/json",
            "href": f"{base}/collections/{slug}/tiles/{TMS_ID}",
        },
        {
            "rel": f"{REL}tiling-scheme",
            "type": "application/json",
            "href": f"{base}/tileMatrixSets/{TMS_ID}",
        },
        {
            "rel": "item",
            "type": MVT,
            "title": "Mapbox vector tiles",
            "templated": True,
            "href": f"{root}/tiles/{slug}/{{tileMatrix}}/{{tileCol}}/{{tileRow}}.mvt",
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
    """The tilesets of one collection (its vector tiles in WebMercatorQuad)."""
    links = _tileset_links(base, root, info.slug)
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
        "tilesets": [
            {
                "title": f"{info.title_en} ({TMS_ID})",
                "dataType": "vector",
                "crs": CRS_3857,
                "tileMatrixSetURI": TMS_URI,
                "links": [
                    {**links[0], "rel": f"{REL}tileset"},
                    links[0],
                    links[1],
                ],
            }
        ],
    }


def tileset_doc(
    info: LayerInfo, base: str, root: str, bounds: tuple[float, float, float, float] | None
) -> dict[str, Any]:
    """One tileset: its tile URL template, tile matrix set, limits and layer description."""
    props = (info.property_schema or {}).get("properties", {})
    return {
        "title": info.title_en,
        "description": info.title_vi,
        "dataType": "vector",
        "crs": CRS_3857,
        "tileMatrixSetURI": TMS_URI,
        "tileMatrixSetDefinition": f"{base}/tileMatrixSets/{TMS_ID}",
        "links": _tileset_links(base, root, info.slug),
        "tileMatrixSetLimits": tileset_limits(bounds),
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
