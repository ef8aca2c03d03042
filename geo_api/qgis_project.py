"""QGIS projects (.qgz) of catalogue layers, generated without QGIS.

Each vector layer becomes an OGC API – Features layer (QGIS's `OAPIF` provider) on our `/ogc`
endpoint, styled as the web map draws it (categories and colours from the catalogue style,
labels from its name field), grouped by sector, in a project with the province's extent. Dense
layers are added a second time as a vector-tile layer (drawn by default; the OAPIF copy is
there, unchecked, for attributes and analysis). Layers that need a role carry the id of a QGIS
authentication configuration (`authcfg`), which the user creates once in QGIS (HTTP Basic with
their IOC Map account, or EsriToken with a personal API token): the project says so in its
metadata.

The XML follows what QGIS 3.22 itself writes (Debian 12), restricted to the elements it needs:
QGIS fills in defaults for the rest.
"""

from __future__ import annotations

import io
import math
import re
import warnings
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import get_args
from urllib.parse import quote
from xml.etree import ElementTree as ET

from pyproj import CRS

from layers.features.registry import LayerInfo, Sector

QGIS_VERSION = "3.22.16-Białowieża"
DEFAULT_AUTHCFG = "iocmap1"
AUTHCFG_RE = re.compile(r"^[a-z0-9]{7}$")
# Web map zoom z to a QGIS scale denominator (256-px tiles at 0.28 mm per pixel, equator).
SCALE_AT_ZOOM_0 = 559_082_264.0287178
# Point names appear from this zoom in the web map; communes are named at every zoom.
POINT_LABEL_ZOOM = 14
PROJECT_CRS = (3857, 4326)
HALF_WORLD = 20037508.342789244
# Sectors drawn lowest last: land parcels and administrative areas sit under the points.
_BOTTOM = ("land", "admin")
SECTOR_ORDER = tuple(s for s in get_args(Sector) if s not in _BOTTOM) + _BOTTOM

Translate = Callable[[str], str]


@dataclass(frozen=True)
class ProjectOptions:
    """What the caller asked for and what the project must say about authentication."""

    base_url: str
    lang: str = "vi"
    crs: int = 3857
    authcfg: str = DEFAULT_AUTHCFG
    dense_min_features: int = 20_000
    page_size: int = 10_000
    title: str = "IOC Map"


def scale_at_zoom(z: float) -> float:
    """The QGIS scale denominator matching a web map zoom level."""
    return SCALE_AT_ZOOM_0 / 2**z


def _rgba(colour: Sequence[int]) -> str:
    r, g, b, a = (list(colour) + [255])[:4]
    return f"{int(r)},{int(g)},{int(b)},{int(a)}"


def _opt_map(parent: ET.Element, values: dict[str, str]) -> None:
    """The `<Option type="Map">` block QGIS 3.22 reads symbol layer properties from."""
    opt = ET.SubElement(parent, "Option", type="Map")
    for key, value in values.items():
        ET.SubElement(opt, "Option", name=key, value=value, type="QString")


def _symbol_layer(
    kind: str, fill: Sequence[int], line: Sequence[int], info: LayerInfo
) -> ET.Element:
    style = info.default_style
    if kind == "marker":
        el = ET.Element(
            "layer", {"class": "SimpleMarker", "enabled": "1", "locked": "0", "pass": "0"}
        )
        _opt_map(
            el,
            {
                "name": "circle",
                "color": _rgba(fill),
                "outline_color": _rgba(line),
                "outline_style": "solid",
                "outline_width": "1",
                "outline_width_unit": "Pixel",
                "size": str(2 * style.point_radius),
                "size_unit": "Pixel",
                "scale_method": "diameter",
            },
        )
    elif kind == "line":
        el = ET.Element(
            "layer", {"class": "SimpleLine", "enabled": "1", "locked": "0", "pass": "0"}
        )
        _opt_map(
            el,
            {
                "line_color": _rgba(fill),
                "line_style": "solid",
                "line_width": str(style.line_width),
                "line_width_unit": "Pixel",
            },
        )
    else:
        el = ET.Element(
            "layer", {"class": "SimpleFill", "enabled": "1", "locked": "0", "pass": "0"}
        )
        _opt_map(
            el,
            {
                "color": _rgba(fill),
                "style": "solid" if len(fill) < 4 or fill[3] > 0 else "no",
                "outline_color": _rgba(line),
                "outline_style": "solid" if style.line_width > 0 else "no",
                "outline_width": str(style.line_width),
                "outline_width_unit": "Pixel",
            },
        )
    return el


def symbol_kind(info: LayerInfo) -> str:
    """QGIS symbol type of a layer's geometry: marker, line or fill."""
    geometry = str(info.geometry_type)
    if "Point" in geometry:
        return "marker"
    if "Line" in geometry:
        return "line"
    return "fill"


def _symbol(name: str, info: LayerInfo, fill: Sequence[int]) -> ET.Element:
    kind = symbol_kind(info)
    sym = ET.Element(
        "symbol",
        {"type": kind, "name": name, "alpha": "1", "clip_to_extent": "1", "force_rhr": "0"},
    )
    sym.append(_symbol_layer(kind, fill, info.default_style.line_color, info))
    return sym


def _categories(info: LayerInfo, tr: Translate) -> list[tuple[str, str, tuple[int, ...]]]:
    """(value, label, colour) of each category of the catalogue palette."""
    style = info.default_style
    if not (style.color_property and style.palette):
        return []
    out = []
    for value, colour in style.palette.items():
        label = tr(f"value.{value}")
        out.append((value, value if label == f"value.{value}" else label, tuple(colour)))
    return out


def renderer(info: LayerInfo, tr: Translate) -> ET.Element:
    """A categorized (catalogue palette) or single-symbol renderer for an OAPIF layer."""
    style = info.default_style
    cats = _categories(info, tr)
    if not cats:
        el = ET.Element(
            "renderer-v2",
            {"type": "singleSymbol", "symbollevels": "0", "forceraster": "0", "enableorderby": "0"},
        )
        symbols = ET.SubElement(el, "symbols")
        symbols.append(_symbol("0", info, style.fill_color))
        return el
    el = ET.Element(
        "renderer-v2",
        {
            "type": "categorizedSymbol",
            "attr": str(style.color_property),
            "symbollevels": "0",
            "forceraster": "0",
            "enableorderby": "0",
        },
    )
    categories = ET.SubElement(el, "categories")
    symbols = ET.SubElement(el, "symbols")
    for i, (value, label, colour) in enumerate(cats):
        ET.SubElement(
            categories, "category", value=value, label=label, symbol=str(i), render="true"
        )
        symbols.append(_symbol(str(i), info, colour))
    # Values outside the palette are drawn in the layer's own colour, as the web map does.
    n = len(cats)
    ET.SubElement(
        categories, "category", value="", label=tr("qgis.other"), symbol=str(n), render="true"
    )
    symbols.append(_symbol(str(n), info, style.fill_color))
    source = ET.SubElement(el, "source-symbol")
    source.append(_symbol("0", info, style.fill_color))
    return el


def _vt_style(
    name: str, info: LayerInfo, colour: Sequence[int], expression: str, geometry: int
) -> ET.Element:
    el = ET.Element(
        "style",
        {
            "name": name,
            "layer": info.slug,
            "geometry": str(geometry),
            "enabled": "1",
            "expression": expression,
            "min-zoom": "-1",
            "max-zoom": "-1",
        },
    )
    symbols = ET.SubElement(el, "symbols")
    symbols.append(_symbol("0", info, colour))
    return el


def _quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def vector_tile_renderer(info: LayerInfo, tr: Translate) -> ET.Element:
    """A QGIS vector-tile 'basic' renderer: one style per palette category, then the rest."""
    style = info.default_style
    geometry = {"marker": 0, "line": 1, "fill": 2}[symbol_kind(info)]
    el = ET.Element("renderer", type="basic")
    styles = ET.SubElement(el, "styles")
    cats = _categories(info, tr)
    field = '"' + str(style.color_property).replace('"', '""') + '"'
    for value, label, colour in cats:
        styles.append(
            _vt_style(label, info, colour, f"{field} = {_quote_literal(value)}", geometry)
        )
    if cats:
        values = ", ".join(_quote_literal(v) for v, _, _ in cats)
        rest = f"{field} IS NULL OR {field} NOT IN ({values})"
        styles.append(_vt_style(tr("qgis.other"), info, style.fill_color, rest, geometry))
    else:
        styles.append(_vt_style(info.slug, info, style.fill_color, "", geometry))
    return el


# What names a feature when the catalogue has no name field (as in the web map's details).
NAME_PROPERTIES = ("name", "title", "report_code", "camera_id")


def label_field(info: LayerInfo) -> str | None:
    """The property that labels a layer's features: the catalogue's name field, else the first
    naming property its schema has."""
    if info.name_field:
        return info.name_field
    props = (info.property_schema or {}).get("properties", {})
    return next((name for name in NAME_PROPERTIES if name in props), None)


def labeling(info: LayerInfo) -> ET.Element | None:
    """Simple labels on the layer's name field (point names from the web map's zoom 14)."""
    field = label_field(info)
    if not field:
        return None
    el = ET.Element("labeling", type="simple")
    settings = ET.SubElement(el, "settings", calloutType="simple")
    text = ET.SubElement(
        settings,
        "text-style",
        {
            "fieldName": field,
            "isExpression": "0",
            "fontSize": "9",
            "fontSizeUnit": "Point",
            "textColor": "30,30,30,255",
            "fontFamily": "Noto Sans",
        },
    )
    ET.SubElement(
        text,
        "text-buffer",
        bufferDraw="1",
        bufferSize="1",
        bufferSizeUnits="MM",
        bufferColor="255,255,255,255",
    )
    ET.SubElement(settings, "text-format", wrapChar="", multilineAlign="3")
    point = symbol_kind(info) == "marker"
    ET.SubElement(settings, "placement", placement="6" if point else "1", dist="1", distUnits="MM")
    ET.SubElement(
        settings,
        "rendering",
        {
            "drawLabels": "1",
            "scaleVisibility": "1" if point else "0",
            # QGIS keeps the old names: scaleMax is the most zoomed-out scale shown.
            "scaleMin": "0",
            "scaleMax": str(round(scale_at_zoom(POINT_LABEL_ZOOM))) if point else "0",
            "obstacle": "1",
        },
    )
    return el


@cache
def _spatialrefsys(epsg: int) -> tuple[tuple[str, str], ...]:
    crs = CRS.from_epsg(epsg)
    with warnings.catch_warnings():
        # PROJ strings are lossy (pyproj warns); QGIS reads the WKT first and keeps this one
        # only as a fallback.
        warnings.simplefilter("ignore", UserWarning)
        proj4 = crs.to_proj4()
    return (
        ("wkt", crs.to_wkt()),
        ("proj4", proj4),
        ("srid", str(epsg)),
        ("authid", f"EPSG:{epsg}"),
        ("description", crs.name),
        ("geographicflag", "true" if crs.is_geographic else "false"),
    )


def spatialrefsys(parent: ET.Element, epsg: int) -> None:
    """A `<spatialrefsys>` QGIS can read: WKT first (an authid alone is not enough)."""
    srs = ET.SubElement(parent, "spatialrefsys")
    for tag, value in _spatialrefsys(epsg):
        ET.SubElement(srs, tag).text = value


def to_crs(bbox: tuple[float, float, float, float], epsg: int) -> tuple[float, float, float, float]:
    """A WGS84 bbox in the project CRS (EPSG:4326 or 3857)."""
    if epsg == 4326:
        return bbox
    west, south, east, north = bbox

    def merc(lon: float, lat: float) -> tuple[float, float]:
        lat = max(min(lat, 85.0511), -85.0511)
        x = lon * HALF_WORLD / 180
        y = math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)) * HALF_WORLD / math.pi
        return x, y

    x0, y0 = merc(west, south)
    x1, y1 = merc(east, north)
    return x0, y0, x1, y1


def _extent(parent: ET.Element, tag: str, box: tuple[float, float, float, float]) -> None:
    ext = ET.SubElement(parent, tag)
    for name, value in zip(("xmin", "ymin", "xmax", "ymax"), box, strict=True):
        ET.SubElement(ext, name).text = repr(float(value))


def oapif_source(info: LayerInfo, opts: ProjectOptions, restricted: bool) -> str:
    """The OAPIF data source of a layer (QgsDataSourceUri key='value' pairs)."""
    parts = [
        f"pageSize='{opts.page_size}'",
        "pagingEnabled='true'",
        "preferCoordinatesForWfsT11='false'",
        "restrictToRequestBBOX='1'",
        f"typename='{info.slug}'",
        f"url='{opts.base_url}/ogc'",
    ]
    if restricted:
        parts.insert(0, f"authcfg={opts.authcfg}")
    return " ".join(parts)


def vector_tile_source(
    info: LayerInfo, opts: ProjectOptions, restricted: bool, max_zoom: int
) -> str:
    """The vector-tile (XYZ) data source of a layer, as QGIS encodes it."""
    url = f"{opts.base_url}/tiles/{info.slug}/{{z}}/{{x}}/{{y}}.mvt"
    parts = ["type=xyz", f"url={quote(url, safe=':/.')}", f"zmax={max_zoom}", "zmin=0"]
    if restricted:
        parts.insert(0, f"authcfg={opts.authcfg}")
    return "&".join(parts)


@dataclass(frozen=True)
class ProjectLayer:
    """One map layer of the project: a catalogue layer through OAPIF or as vector tiles."""

    info: LayerInfo
    provider: str  # "OAPIF" or "vectortile"
    restricted: bool
    visible: bool

    @property
    def layer_id(self) -> str:
        """The project's id of the map layer (stable, so re-downloads diff cleanly)."""
        return f"{self.info.slug}_{'vt' if self.provider == 'vectortile' else 'oapif'}"


def project_layers(
    infos: Sequence[LayerInfo], restricted: Callable[[LayerInfo], bool], opts: ProjectOptions
) -> list[ProjectLayer]:
    """The map layers: each vector layer through OAPIF, dense ones also as vector tiles."""
    out: list[ProjectLayer] = []
    for info in infos:
        if info.kind != "vector":
            continue
        dense = (info.feature_count or 0) >= opts.dense_min_features
        needs_auth = restricted(info)
        if dense:
            out.append(ProjectLayer(info, "vectortile", needs_auth, True))
        out.append(ProjectLayer(info, "OAPIF", needs_auth, not dense))
    return out


def _layer_title(layer: ProjectLayer, opts: ProjectOptions, tr: Translate) -> str:
    info = layer.info
    title = info.title_vi if opts.lang == "vi" else info.title_en
    if layer.provider == "vectortile":
        title += " " + tr("qgis.vector_tiles")
    return title


def _map_layer(
    layer: ProjectLayer, opts: ProjectOptions, tr: Translate, max_zoom: int
) -> ET.Element:
    info = layer.info
    style = info.default_style
    min_scale = scale_at_zoom(style.min_zoom) if style.min_zoom > 0 else 0.0
    attrs = {
        "type": "vector-tile" if layer.provider == "vectortile" else "vector",
        "hasScaleBasedVisibilityFlag": "1" if min_scale else "0",
        "minScale": repr(min_scale) if min_scale else "1e+08",
        "maxScale": "0",
        "styleCategories": "AllStyleCategories",
    }
    if layer.provider == "OAPIF":
        geometry = {"marker": "Point", "line": "Line", "fill": "Polygon"}[symbol_kind(info)]
        attrs.update({"geometry": geometry, "labelsEnabled": "1" if label_field(info) else "0"})
    el = ET.Element("maplayer", attrs)
    ET.SubElement(el, "id").text = layer.layer_id
    source = (
        vector_tile_source(info, opts, layer.restricted, max_zoom)
        if layer.provider == "vectortile"
        else oapif_source(info, opts, layer.restricted)
    )
    ET.SubElement(el, "datasource").text = source
    ET.SubElement(el, "layername").text = _layer_title(layer, opts, tr)
    ET.SubElement(el, "title").text = _layer_title(layer, opts, tr)
    abstract = info.description or ""
    if info.synthetic:
        abstract = (tr("qgis.synthetic") + " " + abstract).strip()
    ET.SubElement(el, "abstract").text = abstract
    if info.attribution:
        ET.SubElement(el, "attribution").text = info.attribution
    srs = ET.SubElement(el, "srs")
    spatialrefsys(srs, 3857 if layer.provider == "vectortile" else 4326)
    if info.bbox:
        _extent(el, "wgs84extent", info.bbox)
    ET.SubElement(el, "provider", encoding="UTF-8").text = layer.provider
    if layer.provider == "vectortile":
        el.append(vector_tile_renderer(info, tr))
    else:
        el.append(renderer(info, tr))
        label = labeling(info)
        if label is not None:
            el.append(label)
    props = ET.SubElement(el, "customproperties")
    opt = ET.SubElement(props, "Option", type="Map")
    for key, value in (
        ("iocmap/slug", info.slug),
        ("iocmap/restricted", str(layer.restricted).lower()),
    ):
        ET.SubElement(opt, "Option", name=key, value=value, type="QString")
    return el


def auth_note(opts: ProjectOptions, tr: Translate) -> str:
    """What the project says about the authentication its restricted layers need."""
    return tr("qgis.auth_note").replace("{authcfg}", opts.authcfg).replace("{url}", opts.base_url)


def project_xml(
    infos: Sequence[LayerInfo],
    restricted: Callable[[LayerInfo], bool],
    opts: ProjectOptions,
    tr: Translate,
    province_bbox: tuple[float, float, float, float] | None,
    max_zoom: int = 22,
) -> bytes:
    """The .qgs XML of a project with these layers, grouped by sector."""
    layers = project_layers(infos, restricted, opts)
    root = ET.Element("qgis", projectname=opts.title, version=QGIS_VERSION)
    ET.SubElement(root, "homePath", path="")
    ET.SubElement(root, "title").text = opts.title
    project_crs = ET.SubElement(root, "projectCrs")
    spatialrefsys(project_crs, opts.crs)

    tree = ET.SubElement(root, "layer-tree-group")
    by_sector: dict[str, list[ProjectLayer]] = {}
    for layer in layers:
        by_sector.setdefault(str(layer.info.sector), []).append(layer)
    for sector in SECTOR_ORDER:
        members = by_sector.get(sector)
        if not members:
            continue
        group = ET.SubElement(
            tree,
            "layer-tree-group",
            name=tr(f"sector.{sector}"),
            checked="Qt::Checked",
            expanded="1",
        )
        for layer in members:
            ET.SubElement(
                group,
                "layer-tree-layer",
                id=layer.layer_id,
                name=_layer_title(layer, opts, tr),
                providerKey=layer.provider,
                checked="Qt::Checked" if layer.visible else "Qt::Unchecked",
                expanded="0",
            )

    bbox = province_bbox or _union([i.bbox for i in infos if i.bbox])
    canvas = ET.SubElement(root, "mapcanvas", name="theMapCanvas", annotationsVisible="1")
    ET.SubElement(canvas, "units").text = "degrees" if opts.crs == 4326 else "meters"
    if bbox:
        _extent(canvas, "extent", to_crs(bbox, opts.crs))
    dest = ET.SubElement(canvas, "destinationsrs")
    spatialrefsys(dest, opts.crs)

    project_layers_el = ET.SubElement(root, "projectlayers")
    for layer in layers:
        project_layers_el.append(_map_layer(layer, opts, tr, max_zoom))

    meta = ET.SubElement(root, "projectMetadata")
    ET.SubElement(meta, "identifier").text = opts.base_url
    ET.SubElement(meta, "language").text = opts.lang
    ET.SubElement(meta, "title").text = opts.title
    ET.SubElement(meta, "abstract").text = (
        auth_note(opts, tr) if any(layer.restricted for layer in layers) else tr("qgis.public_note")
    )
    props = ET.SubElement(root, "properties")
    # Without this flag QGIS ignores <projectCrs>.
    srs_props = ET.SubElement(props, "SpatialRefSys")
    ET.SubElement(srs_props, "ProjectionsEnabled", type="int").text = "1"
    iocmap = ET.SubElement(props, "IOCMap")
    ET.SubElement(iocmap, "authcfg", type="QString").text = opts.authcfg
    ET.SubElement(iocmap, "url", type="QString").text = opts.base_url
    if bbox:
        # The province extent is also the project's initial view (QGIS >= 3.18).
        view = ET.SubElement(root, "ProjectViewSettings", UseProjectScales="0")
        box = to_crs(bbox, opts.crs)
        default = ET.SubElement(
            view,
            "DefaultViewExtent",
            {k: repr(float(v)) for k, v in zip(("xmin", "ymin", "xmax", "ymax"), box, strict=True)},
        )
        spatialrefsys(default, opts.crs)
    ET.indent(root)
    doctype = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
    return doctype.encode() + bytes(ET.tostring(root, encoding="utf-8"))


def _union(
    boxes: Sequence[tuple[float, float, float, float] | None],
) -> tuple[float, float, float, float] | None:
    real = [b for b in boxes if b]
    if not real:
        return None
    return (
        min(b[0] for b in real),
        min(b[1] for b in real),
        max(b[2] for b in real),
        max(b[3] for b in real),
    )


def qgz(xml: bytes, name: str = "iocmap") -> bytes:
    """A .qgz: the zip of one .qgs (QGIS reads the first .qgs it finds)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{name}.qgs", xml)
    return buf.getvalue()


def valid_authcfg(value: str) -> bool:
    """True for an id QGIS's authentication manager accepts (7 lower-case letters/digits)."""
    return bool(AUTHCFG_RE.match(value))
