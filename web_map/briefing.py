"""Leaders' briefing map: one standalone, offline HTML file (folium + Leaflet, assets inlined)."""

from __future__ import annotations

import base64
import html
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import folium
from branca.element import Element

PACKAGE_DIR = Path(__file__).resolve().parent
I18N_FILE = PACKAGE_DIR / "i18n.json"
VENDOR_DIRS = (
    PACKAGE_DIR / "dist" / "vendor" / "leaflet",
    PACKAGE_DIR / "node_modules" / "leaflet" / "dist",
)
BASEMAP = ("admin_communes", "admin_province")
DEFAULT_MAX_FEATURES = 5000
EXTERNAL_REF = re.compile(
    r"""<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.I
)
ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
CSS_URL = re.compile(r"url\(\s*['\"]?(?:https?:)?//", re.I)

# Keys shown in each layer's tooltip (Vietnamese twins *_vi are preferred when present).
TOOLTIP_KEYS: dict[str, tuple[str, ...]] = {
    "admin_communes": ("kind", "population", "area_km2"),
    "hospitals": ("type", "beds", "commune_name"),
    "schools": ("level", "pupils", "commune_name"),
    "tourism_sites": ("kind", "visitors_per_year", "commune_name"),
    "cameras": ("owner", "status", "commune_name"),
    "field_reports": ("category", "status", "received_at", "commune_name"),
    "land_parcels": ("KyHieuMucDichSuDung", "DienTich", "SoHieuToBanDo", "SoThuTuThua"),
}


@dataclass
class BriefingLayer:
    """One layer's features as they go into the briefing."""

    slug: str
    title: str
    style: dict[str, Any]
    geometry_type: str
    synthetic: bool
    attribution: str
    features: list[dict[str, Any]] = field(default_factory=list)
    truncated: bool = False


class BriefingError(ValueError):
    """The briefing cannot be built as asked (the CLI reports it as bad input)."""

    def __init__(self, message: str, param: str) -> None:
        """`param` names what was wrong (vendor asset, html)."""
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class BriefingSummary:
    """What export-map wrote."""

    path: Path
    layers: dict[str, int]
    truncated: tuple[str, ...]
    size_bytes: int


class Strings:
    """The web map's translation file (web_map/i18n.json), for one language."""

    def __init__(self, lang: str) -> None:
        data: dict[str, dict[str, str]] = (
            json.loads(I18N_FILE.read_text(encoding="utf-8")) if I18N_FILE.exists() else {}
        )
        self.lang = "en" if lang == "en" else "vi"
        self._vi = data.get("vi", {})
        self._cur = data.get(self.lang, {})

    def t(self, key: str, **values: object) -> str:
        """Translate a key (English falls back to Vietnamese, then to the key)."""
        text = self._cur.get(key) or self._vi.get(key) or key
        for name, value in values.items():
            text = text.replace("{" + name + "}", str(value))
        return text

    def number(self, value: float) -> str:
        """A number with the language's thousands separator (1.800 in Vietnamese)."""
        text = f"{value:,.2f}".rstrip("0").rstrip(".") if isinstance(value, float) else f"{value:,}"
        if self.lang == "vi":
            text = text.translate(str.maketrans(",.", ".,"))
        return text

    def prop(self, name: str) -> str:
        """Label of a property name."""
        key = f"prop.{name}"
        return self.t(key) if key in self._vi else name

    def value(self, value: object) -> str:
        """Label of a categorical value."""
        if value is None:
            return "—"
        if isinstance(value, bool):
            value = str(value).lower()
        key = f"value.{value}"
        return self.t(key) if key in self._vi else str(value)


def vendor_file(name: str) -> Path:
    """A Leaflet asset from the built web map (dist/vendor) or node_modules."""
    for base in VENDOR_DIRS:
        path = base / name
        if path.exists():
            return path
    raise BriefingError(
        f"Leaflet asset {name} not found: build the web map first (cd web_map && npm ci && npm run build)",
        param="vendor",
    )


def _leaflet_css() -> str:
    """Leaflet's CSS with its images turned into data: URIs (nothing is fetched)."""
    css = vendor_file("leaflet.css").read_text(encoding="utf-8")

    def inline(match: re.Match[str]) -> str:
        name = match.group(1)
        try:
            data = base64.b64encode(vendor_file(f"images/{name}").read_bytes()).decode()
        except BriefingError:
            return "url(data:,)"
        return f"url(data:image/png;base64,{data})"

    return re.sub(r"url\(\s*['\"]?images/([\w.-]+\.png)['\"]?\s*\)", inline, css)


def _script_safe(code: str) -> str:
    """Keep inlined JavaScript from closing its <script> element early."""
    return code.replace("</script", "<\\/script")


def _rgba(colour: list[int] | tuple[int, ...]) -> tuple[str, float]:
    r, g, b = colour[:3]
    a = colour[3] / 255 if len(colour) > 3 else 1.0
    return f"#{r:02x}{g:02x}{b:02x}", round(a, 3)


def _tooltip_html(layer: BriefingLayer, props: dict[str, Any], strings: Strings) -> str:
    name = props.get("name") or props.get("title") or props.get("report_code") or ""
    head = f'<div style="color:#ffc107;font-size:10px">{html.escape(layer.title)}</div>'
    rows = []
    if name:
        rows.append(f"<b>{html.escape(str(name))}</b>")
    for key in TOOLTIP_KEYS.get(layer.slug, tuple(list(props)[:3])):
        if key not in props or props[key] is None:
            continue
        raw = props.get(f"{key}_vi") if strings.lang == "vi" and props.get(f"{key}_vi") else None
        shown = raw if raw is not None else strings.value(props[key])
        if isinstance(props[key], int | float) and not isinstance(props[key], bool):
            shown = strings.number(props[key])
        elif isinstance(props[key], str) and ISO_TIME.match(props[key]):
            shown = datetime.fromisoformat(props[key]).strftime("%d/%m/%Y %H:%M")
        rows.append(
            f'<span style="color:#8ea3c2">{html.escape(strings.prop(key))}:</span> '
            f"{html.escape(str(shown))}"
        )
    return head + "<br>".join(rows)


def _add_layer(fmap: folium.Map, layer: BriefingLayer, strings: Strings) -> None:
    if not layer.features:
        # nothing in the asked bbox: folium's tooltip cannot bind to an empty collection
        return
    style = layer.style
    fill, fill_a = _rgba(style.get("fill_color") or (30, 136, 229, 160))
    line, line_a = _rgba(style.get("line_color") or (255, 255, 255, 200))
    prop = style.get("color_property")
    palette = {k: _rgba(v) for k, v in (style.get("palette") or {}).items()}
    for f in layer.features:
        props = f.get("properties") or {}
        f["properties"] = {**props, "_tip": _tooltip_html(layer, props, strings)}
        colour, alpha = (
            palette.get(str(props.get(prop)), (fill, fill_a)) if prop else (fill, fill_a)
        )
        f["properties"]["_fill"] = colour
        f["properties"]["_alpha"] = alpha
    is_point = "point" in layer.geometry_type.lower()
    radius = float(style.get("point_radius") or 6) * 0.8

    def style_fn(feature: dict[str, Any]) -> dict[str, Any]:
        p = feature["properties"]
        if is_point:
            return {
                "fill": True,
                "fillColor": p["_fill"],
                "fillOpacity": 0.9,
                "color": "#0a1020",
                "weight": 1,
            }
        return {
            "fillColor": p["_fill"],
            "fillOpacity": p["_alpha"],
            "color": line,
            "opacity": line_a,
            "weight": float(style.get("line_width") or 1),
        }

    collection = {"type": "FeatureCollection", "features": layer.features}
    interactive = layer.slug != "admin_province"
    folium.GeoJson(
        collection,
        name=layer.title,
        style_function=style_fn,
        marker=folium.CircleMarker(radius=radius, fill=True) if is_point else None,
        tooltip=folium.GeoJsonTooltip(fields=["_tip"], labels=False, sticky=True)
        if interactive
        else None,
        control=layer.slug not in BASEMAP,
        interactive=interactive,
        embed=True,
    ).add_to(fmap)


def _legend(layers: list[BriefingLayer], strings: Strings, title: str, when: datetime) -> str:
    items = []
    for layer in layers:
        if layer.slug in BASEMAP:
            continue
        colour, _ = _rgba(layer.style.get("fill_color") or (30, 136, 229, 160))
        note = f" ({strings.t('briefing.synthetic').lower()})" if layer.synthetic else ""
        items.append(
            f'<div><span class="sw" style="background:{colour}"></span>'
            f"{html.escape(layer.title)} · {strings.number(len(layer.features))}{html.escape(note)}</div>"
        )
        for value, rgba in (layer.style.get("palette") or {}).items():
            c, _ = _rgba(rgba)
            items.append(
                f'<div class="sub"><span class="sw" style="background:{c}"></span>'
                f"{html.escape(strings.value(value))}</div>"
            )
        if layer.truncated:
            items.append(
                f'<div class="sub warn">{html.escape(strings.t("briefing.truncated", n=len(layer.features)))}</div>'
            )
    stamp = when.astimezone(UTC).strftime("%d/%m/%Y %H:%M UTC")
    return f"""
<div id="briefing-panel">
  <div class="bt">{html.escape(title)}</div>
  <div class="bs">{html.escape(strings.t("briefing.generated"))}: {stamp} · {html.escape(strings.t("briefing.offline"))}</div>
  <div class="bl">{html.escape(strings.t("briefing.legend"))}</div>
  {"".join(items)}
</div>"""


BRIEFING_CSS = """
html, body { background: #070d1a; }
.leaflet-container { background: #070d1a !important; font-family: system-ui, 'Segoe UI', Roboto, 'Noto Sans', 'DejaVu Sans', sans-serif; }
#briefing-panel { position: fixed; top: 12px; left: 56px; z-index: 1000; font-family: system-ui, 'Segoe UI', Roboto, 'Noto Sans', 'DejaVu Sans', sans-serif; max-width: 320px; max-height: 90vh; overflow: auto;
  background: rgba(13,21,38,.94); color: #e3ecf7; border: 1px solid #1e2c47; border-radius: 8px; padding: 10px 12px; font-size: 12px; }
#briefing-panel .bt { font-weight: 700; font-size: 15px; }
#briefing-panel .bs { color: #8ea3c2; font-size: 11px; margin: 2px 0 8px; }
#briefing-panel .bl { color: #ffc107; text-transform: uppercase; font-size: 11px; margin-bottom: 4px; }
#briefing-panel .sub { margin-left: 18px; color: #c5d3e8; font-size: 11px; }
#briefing-panel .warn { color: #ffc107; }
#briefing-panel .sw { display: inline-block; width: 11px; height: 11px; border-radius: 50%; margin-right: 6px; border: 1px solid rgba(255,255,255,.4); vertical-align: -1px; }
.leaflet-tooltip { background: rgba(7,13,26,.96); color: #e3ecf7; border: 1px solid #2c4470; }
.leaflet-control-layers { background: rgba(13,21,38,.94); color: #e3ecf7; }
"""


def _strip_cdn(element: Any) -> None:
    """Drop folium's CDN script/stylesheet links from every element (Leaflet is inlined)."""
    for attr in ("default_js", "default_css"):
        if hasattr(element, attr):
            setattr(element, attr, [])
    for child in getattr(element, "_children", {}).values():
        _strip_cdn(child)


def build_briefing_html(
    layers: list[BriefingLayer],
    lang: str = "vi",
    title: str | None = None,
    generated_at: datetime | None = None,
) -> str:
    """Render the layers into one offline HTML page (Leaflet JS/CSS inlined, no tiles)."""
    strings = Strings(lang)
    when = generated_at or datetime.now(UTC)
    heading = title or strings.t("briefing.title")
    bounds = _bounds(layers)
    fmap = folium.Map(
        location=[(bounds[1] + bounds[3]) / 2, (bounds[0] + bounds[2]) / 2],
        zoom_start=8,
        tiles=None,
        control_scale=True,
        prefer_canvas=True,
    )
    order = sorted(layers, key=_stack_rank)
    for layer in order:
        _add_layer(fmap, layer, strings)
    fmap.fit_bounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]])
    folium.LayerControl(collapsed=False).add_to(fmap)
    root = fmap.get_root()
    root.header.add_child(
        Element(
            f'<meta name="generator" content="IOC Map export-map">\n<title>{html.escape(heading)}</title>'
        ),
        name="briefing_meta",
    )
    root.header.add_child(Element(f"<style>{_leaflet_css()}</style>"), name="leaflet_css_inline")
    root.header.add_child(
        Element(
            f"<script>{_script_safe(vendor_file('leaflet.js').read_text(encoding='utf-8'))}</script>"
        ),
        name="leaflet_js_inline",
    )
    root.header.add_child(Element(f"<style>{BRIEFING_CSS}</style>"), name="briefing_css")
    root.html.add_child(Element(_legend(order, strings, heading, when)), name="briefing_legend")
    _strip_cdn(fmap)
    page = str(root.render())
    page = page.replace("<html>", f'<html lang="{strings.lang}">', 1)
    check_offline(page)
    return page


def check_offline(page: str) -> None:
    """Refuse a page that would load any script, stylesheet, image or font from the network."""
    found = EXTERNAL_REF.search(page) or CSS_URL.search(page)
    if found:
        raise BriefingError(
            f"briefing HTML would fetch from the network: {found.group(0)[:120]}", param="html"
        )


def _stack_rank(layer: BriefingLayer) -> int:
    if layer.slug == "admin_communes":
        return 0
    if layer.slug == "admin_province":
        return 9
    return 5 if "point" in layer.geometry_type.lower() else 2


def _bounds(layers: list[BriefingLayer]) -> tuple[float, float, float, float]:
    xs: list[float] = []
    ys: list[float] = []

    def walk(coords: Any) -> None:
        if coords and isinstance(coords[0], int | float):
            xs.append(float(coords[0]))
            ys.append(float(coords[1]))
        else:
            for c in coords or []:
                walk(c)

    for layer in layers:
        for f in layer.features:
            walk((f.get("geometry") or {}).get("coordinates"))
    if not xs:
        return (103.87, 18.55, 105.82, 20.0)  # Nghệ An
    return (min(xs), min(ys), max(xs), max(ys))


def write_briefing(
    layers: list[BriefingLayer],
    out: Path,
    lang: str = "vi",
    title: str | None = None,
) -> BriefingSummary:
    """Write the layers (read by the caller, basemap first) to a standalone HTML file."""
    page = build_briefing_html(layers, lang=lang, title=title)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return BriefingSummary(
        path=out,
        layers={layer.slug: len(layer.features) for layer in layers},
        truncated=tuple(layer.slug for layer in layers if layer.truncated),
        size_bytes=out.stat().st_size,
    )
