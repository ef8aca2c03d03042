"""What is around an incident, and its after-action report (HTML and PDF, no browser).

The map figure is drawn by matplotlib (Agg) from PostGIS geometries; the PDF is laid out by
reportlab with the DejaVu Sans font matplotlib ships (it covers Vietnamese).
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
import shapely
from sqlalchemy import Connection

from layers.incidents import store

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
Translate = Callable[[str], str]
SEVERITY_COLORS = {1: "#fbc02d", 2: "#fb8c00", 3: "#e53935", 4: "#8e24aa"}
NEAREST_N = 5
# The layer POST /api/query/flood-exposure writes by default (the newest extent replaces it).
FLOOD_EXTENT_LAYER = "flood_extent"


def around(conn: Connection, incident_id: int, *, with_cameras: bool) -> dict[str, Any]:
    """Nearest hospitals (with beds), police, fire and 115 posts; cameras, schools and people
    inside the affected radius, and inside its part under the flood extent where one exists."""
    inc = store.get_incident(conn, incident_id)

    def slim(rows: list[dict[str, Any]], *keys: str) -> list[dict[str, Any]]:
        out = []
        for r in rows:
            p = r["properties"] or {}
            d = {
                "id": r["id"],
                "name": r["name"],
                "lng": r["lng"],
                "lat": r["lat"],
                "distance_m": round(float(r["distance_m"]), 0),
            }
            d.update({k: p.get(k) for k in keys})
            out.append(d)
        return out

    population, communes = store.population_within(conn, incident_id)
    schools = store.within(conn, incident_id, "schools", 200)
    out: dict[str, Any] = {
        "incident_id": incident_id,
        "radius_m": inc["radius_m"],
        "hospitals": slim(
            store.nearest(conn, incident_id, "hospitals", NEAREST_N), "beds", "type", "type_vi"
        ),
        "police": slim(
            store.nearest(conn, incident_id, "agencies", 3, ["cong_an_xa", "cong_an_tinh"]),
            "kind",
            "ma_don_vi",
        ),
        "fire": slim(
            store.nearest(conn, incident_id, "agencies", 3, ["pccc"]), "kind", "ma_don_vi"
        ),
        "ambulance": slim(
            store.nearest(conn, incident_id, "agencies", 3, ["cap_cuu_115"]), "kind", "ma_don_vi"
        ),
        "schools": slim(schools, "level", "pupils"),
        "pupils": sum(int((s["properties"] or {}).get("pupils") or 0) for s in schools),
        "population": round(population),
        "communes": communes,
        "cameras": None,
    }
    out["flood"] = _flood(conn, incident_id, slim)
    if with_cameras:
        cams = slim(store.within(conn, incident_id, "cameras", 50), "camera_id", "owner")
        for c in cams:
            c["snapshot"] = f"/api/cameras/{c['camera_id']}/snapshot.jpg"
        out["cameras"] = cams
    return out


def _flood(
    conn: Connection, incident_id: int, slim: Callable[..., list[dict[str, Any]]]
) -> dict[str, Any] | None:
    """People and schools inside both the radius and the flood extent, where one was written."""
    info = store.flood_extent_info(conn, FLOOD_EXTENT_LAYER)
    if info is None:
        return None
    area_m2, people, communes = store.population_in_flood(conn, incident_id, FLOOD_EXTENT_LAYER)
    schools = store.within_flood(conn, incident_id, FLOOD_EXTENT_LAYER, "schools", 200)
    hospitals = store.within_flood(conn, incident_id, FLOOD_EXTENT_LAYER, "hospitals", 200)
    props = info["properties"]
    return {
        "layer": info["layer"],
        "synthetic": info["synthetic"],
        "written_at": info["written_at"],
        "source": props.get("source"),
        "level_m": props.get("level_m"),
        "flooded_km2": round(area_m2 / 1e6, 4),
        "population": round(people),
        "communes": communes,
        "schools": slim(schools, "level", "pupils"),
        "pupils": sum(int((s["properties"] or {}).get("pupils") or 0) for s in schools),
        "hospitals": slim(hospitals, "beds", "type", "type_vi"),
        "beds": sum(int((h["properties"] or {}).get("beds") or 0) for h in hospitals),
        "assumption": "commune population x share of the commune's area under water",
    }


def _fmt(value: float, digits: int, lang: str) -> str:
    """A number as the reader writes it: 12.345,67 in Vietnamese, 12,345.67 in English."""
    text = f"{value:,.{digits}f}"
    return text if lang == "en" else text.translate(str.maketrans(",.", ".,"))


def _flood_section(fl: dict[str, Any] | None, t: Translate) -> dict[str, Any] | None:
    """The flood figures of the incident panel (inside the radius, under the newest extent)."""
    if fl is None:
        return None
    lang = t("inc.lang")
    source = str(fl["source"] or "—") + (
        f" ({t('inc.flood.synthetic')})" if fl["synthetic"] else ""
    )
    facts = [
        (t("inc.flood.area"), f"{_fmt(fl['flooded_km2'], 2, lang)} km²"),
        (t("inc.flood.population"), _fmt(fl["population"], 0, lang)),
        (
            t("inc.flood.schools"),
            f"{len(fl['schools'])} ({_fmt(fl['pupils'], 0, lang)} {t('inc.pupils')})",
        ),
        (
            t("inc.flood.hospitals"),
            f"{len(fl['hospitals'])} ({_fmt(fl['beds'], 0, lang)} {t('inc.beds')})",
        ),
        (t("inc.flood.communes"), ", ".join(fl["communes"]) or t("inc.flood.none_under")),
        (
            t("inc.flood.level"),
            f"{_fmt(float(fl['level_m']), 1, lang)} m" if fl["level_m"] is not None else "—",
        ),
        (t("inc.flood.source"), source),
        (t("inc.flood.written"), _local(fl["written_at"])),
    ]
    under = [
        (t("inc.flood.schools"), x["name"], f"{_fmt(x['pupils'] or 0, 0, lang)} {t('inc.pupils')}")
        for x in fl["schools"]
    ] + [
        (t("inc.flood.hospitals"), x["name"], f"{_fmt(x['beds'] or 0, 0, lang)} {t('inc.beds')}")
        for x in fl["hospitals"]
    ]
    return {"facts": facts, "under": under, "note": t("inc.flood.assumption")}  # fmt: skip


def _local(ts: datetime | None) -> str:
    return ts.astimezone(TZ).strftime("%d/%m/%Y %H:%M") if ts else "—"


def _minutes(a: datetime | None, b: datetime | None) -> str:
    if a is None or b is None:
        return "—"
    m = (b - a).total_seconds() / 60
    return f"{m:.0f}′" if m < 120 else f"{m / 60:.1f} h"


def _log_text(entry: dict[str, Any], t: Translate) -> str:
    d = entry["detail"] or {}
    a = entry["action"]
    if a == "status":
        return f"{t('inc.status.' + (entry['from_status'] or 'new'))} → {t('inc.status.' + entry['to_status'])}"
    if a in ("task_ack", "task_done"):
        late = "" if d.get("on_time", True) else f" ({t('inc.late')})"
        return f"{d.get('title', '')}{late}"
    if a == "task_note":
        return (d.get("note") or "") + (f" [{t('inc.photo')}]" if d.get("photo") else "")
    if a == "escalated":
        return f"{d.get('title', '')} — {d.get('agency', '')} → {t('inc.commander')}: {d.get('commander', '')}"
    if a == "directive":
        return str(d.get("text", ""))
    if a == "linked":
        return f"{t('inc.link.' + str(d.get('kind')))} {d.get('ref', '')}"
    if a == "tasks_created":
        return f"{d.get('sop', '')} v{d.get('version', '')}: {len(d.get('tasks', []))}"
    if a == "updated":
        return ", ".join(
            f"{k}: {v.get('from')} → {v.get('to')}" for k, v in d.items() if k != "geometry"
        )
    return ""  # fmt: skip


def build(conn: Connection, inc: dict[str, Any], t: Translate) -> dict[str, Any]:
    """Everything the report shows, as plain values (strings already translated)."""
    ar = around(conn, int(inc["id"]), with_cameras=False)
    lang = t("inc.lang")
    png = map_png(
        conn,
        inc,
        ar,
        {
            k: t(f"inc.legend.{k}")
            for k in ("hospitals", "police", "fire", "ambulance", "flood", "incident")
        },
    )
    timeline = [
        {
            "at": _local(e["at"]),
            "actor": e["actor"],
            "action": t(f"inc.log.{e['action']}"),
            "text": _log_text(e, t),
        }
        for e in inc["log"]
    ]
    tasks = [
        {
            "no": k,
            "title": x["title"],
            "origin": t(f"inc.origin.{x['origin']}"),
            "owner": x["agency_name"] or t(f"inc.role.{x['role'] or 'commander'}"),
            "status": t(f"inc.task.{x['status']}"),
            "created": _local(x["created_at"]),
            "due": _local(x["due_at"]),
            "ack": f"{_local(x['acknowledged_at'])} {x['acknowledged_by'] or ''}".strip(),
            "done": f"{_local(x['completed_at'])} {x['completed_by'] or ''}".strip(),
            "on_time": (
                t("inc.on_time")
                if x["completed_at"] is not None and x["completed_at"] <= x["due_at"]
                else t("inc.late")
                if x["completed_at"] is not None or x["escalated_at"] is not None
                else "—"
            ),
            "notes": [f"{_local(n['at'])} {n['actor']}: {n['note']}" for n in x["notes"] if n["note"]],
        }
        for k, x in enumerate(inc["tasks"], start=1)
    ]  # fmt: skip
    who: dict[str, set[str]] = {}
    for e in inc["log"]:
        who.setdefault(e["actor"], set()).add(t(f"inc.log.{e['action']}"))
    return {
        "t": t,
        "title": f"{t('inc.report.title')} #{inc['id']}",
        "inc": inc,
        "facts": [
            (t("inc.field.title"), inc["title"]),
            (t("inc.field.type"), t(f"inc.type.{inc['type']}")),
            (t("inc.field.severity"), str(inc["severity"])),
            (t("inc.field.status"), t(f"inc.status.{inc['status']}")),
            (t("inc.field.commune"), inc["commune_name"] or "—"),
            (t("inc.field.radius"), f"{inc['radius_m']:.0f} m"),
            (t("inc.commander"), inc["commander"] or "—"),
            (t("inc.field.sop"), f"{inc['sop']['title_vi']} v{inc['sop']['version']}" if inc["sop"] else "—"),
            (t("inc.field.opened"), f"{_local(inc['opened_at'])} ({inc['opened_by']})"),
            (t("inc.kpi.confirm"), _minutes(inc["opened_at"], inc["confirmed_at"])),
            (t("inc.kpi.close"), _minutes(inc["opened_at"], inc["closed_at"])),
            (t("inc.field.population"), _fmt(ar["population"], 0, lang)),
            (t("inc.field.schools"), f"{len(ar['schools'])} ({_fmt(ar['pupils'], 0, lang)} {t('inc.pupils')})"),
        ],
        "flood": _flood_section(ar["flood"], t),
        "timeline": timeline,
        "tasks": tasks,
        "links": [(t(f"inc.link.{x['kind']}"), x["ref"], x["title"]) for x in inc["links"]],
        "who": sorted((k, ", ".join(sorted(v))) for k, v in who.items()),
        "hospitals": [(h["name"], h.get("beds"), f"{h['distance_m'] / 1000:.1f} km") for h in ar["hospitals"]],
        "map_png": png,
        "generated": _local(datetime.now(TZ)),
    }  # fmt: skip


def map_png(
    conn: Connection, inc: dict[str, Any], ar: dict[str, Any], labels: dict[str, str]
) -> bytes:
    """The incident, its affected radius, the communes around and the resources, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from layers.incidents.store import commune_shapes_in

    lng, lat = float(inc["lng"]), float(inc["lat"])
    # Metres to degrees near the incident: good to a fraction of a percent at this scale.
    r_lat = float(inc["radius_m"]) / 111_320
    r_lng = r_lat / math.cos(math.radians(lat))
    span = max(r_lat * 3, 0.02)
    extent = (
        lng - span / math.cos(math.radians(lat)),
        lat - span,
        lng + span / math.cos(math.radians(lat)),
        lat + span,
    )
    rows = commune_shapes_in(conn, extent)
    fig, ax = plt.subplots(figsize=(6.4, 5.0), dpi=110)
    for name, wkb in rows:
        g = shapely.from_wkb(bytes(wkb))
        if g.is_empty:
            continue
        for poly in getattr(g, "geoms", [g]):
            if poly.geom_type != "Polygon":
                continue
            xs, ys = poly.exterior.xy
            ax.fill(xs, ys, facecolor="#eef2f7", edgecolor="#90a4ae", linewidth=0.6)
        c = g.representative_point()
        ax.annotate(name, (c.x, c.y), fontsize=6, color="#546e7a", ha="center")
    if ar.get("flood") is not None:
        # the newest flood extent under the incident (the water the flood figures count)
        first = True
        for wkb in store.flood_extent_in(conn, FLOOD_EXTENT_LAYER, extent):
            for poly in _polygons(shapely.from_wkb(wkb)):
                xs, ys = poly.exterior.xy
                ax.fill(
                    xs,
                    ys,
                    facecolor="#1e78ff",
                    alpha=0.45,
                    edgecolor="#1565c0",
                    linewidth=0.6,
                    label=labels.get("flood", "flood") if first else None,
                )
                first = False
    geom = shapely.geometry.shape(inc["geometry"])
    color = SEVERITY_COLORS.get(int(inc["severity"]), "#e53935")
    if geom.geom_type != "Point":
        for poly in getattr(geom, "geoms", [geom]):
            xs, ys = poly.exterior.xy
            ax.fill(xs, ys, facecolor=color, alpha=0.35, edgecolor=color)
    theta = [i * 2 * math.pi / 96 for i in range(97)]
    ax.plot(
        [lng + r_lng * math.cos(a) for a in theta],
        [lat + r_lat * math.sin(a) for a in theta],
        color=color,
        linewidth=1.5,
        linestyle="--",
    )
    ax.scatter(
        [lng],
        [lat],
        s=120,
        c=color,
        edgecolors="white",
        linewidths=1.5,
        zorder=5,
        marker="o",
        label=labels.get("incident", "incident"),
    )
    for key, mk, col in (
        ("hospitals", "P", "#00897b"),
        ("police", "s", "#2e7d32"),
        ("fire", "^", "#d32f2f"),
        ("ambulance", "D", "#0097a7"),
    ):
        pts = ar.get(key) or []
        ax.scatter(
            [p["lng"] for p in pts],
            [p["lat"] for p in pts],
            marker=mk,
            c=col,
            s=36,
            zorder=4,
            label=labels.get(key, key),
        )
    ax.set_xlim(extent[0], extent[2])
    ax.set_ylim(extent[1], extent[3])
    ax.set_aspect(1 / math.cos(math.radians(lat)))
    ax.tick_params(labelsize=6)
    ax.legend(fontsize=6, loc="lower right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()  # fmt: skip


_HTML = jinja2.Environment(autoescape=True).from_string(
    """<!doctype html>
<html lang="{{ t('inc.lang') }}"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body{font-family:"DejaVu Sans",Arial,sans-serif;margin:24px;color:#1c2733;font-size:14px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:16px;margin:22px 0 8px;border-bottom:1px solid #ccd}
table{border-collapse:collapse;width:100%} td,th{border:1px solid #d5dbe3;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#eef2f7} .facts td:first-child{width:28%;color:#455a64} img{max-width:100%}
.muted{color:#607d8b;font-size:12px}
</style></head><body>
<h1>{{ title }}</h1><div class="muted">{{ t('inc.report.generated') }} {{ generated }}</div>
<h2>{{ t('inc.report.summary') }}</h2>
<table class="facts">{% for k, v in facts %}<tr><td>{{ k }}</td><td>{{ v }}</td></tr>{% endfor %}</table>
{% if flood %}<h2>{{ t('inc.report.flood') }}</h2>
<table class="facts" id="flood">{% for k, v in flood.facts %}<tr><td>{{ k }}</td><td>{{ v }}</td></tr>{% endfor %}</table>
{% if flood.under %}<table>{% for k, n, x in flood.under %}<tr><td>{{ k }}</td><td>{{ n }}</td><td>{{ x }}</td></tr>{% endfor %}</table>{% endif %}
<div class="muted">{{ flood.note }}</div>{% endif %}
<h2>{{ t('inc.report.map') }}</h2><img alt="map" src="data:image/png;base64,{{ map_b64 }}">
<h2>{{ t('inc.report.timeline') }}</h2>
<table><tr><th>{{ t('inc.report.time') }}</th><th>{{ t('inc.report.actor') }}</th><th>{{ t('inc.report.action') }}</th><th></th></tr>
{% for e in timeline %}<tr><td>{{ e.at }}</td><td>{{ e.actor }}</td><td>{{ e.action }}</td><td>{{ e.text }}</td></tr>{% endfor %}</table>
<h2>{{ t('inc.report.tasks') }}</h2>
<table><tr><th>#</th><th>{{ t('inc.report.task') }}</th><th>{{ t('inc.report.owner') }}</th><th>{{ t('inc.report.status') }}</th><th>{{ t('inc.report.due') }}</th><th>{{ t('inc.report.ack') }}</th><th>{{ t('inc.report.done') }}</th><th>{{ t('inc.on_time') }}</th></tr>
{% for x in tasks %}<tr><td>{{ x.no }}</td><td>{{ x.title }} <span class="muted">({{ x.origin }})</span>{% for n in x.notes %}<div class="muted">{{ n }}</div>{% endfor %}</td><td>{{ x.owner }}</td><td>{{ x.status }}</td><td>{{ x.due }}</td><td>{{ x.ack }}</td><td>{{ x.done }}</td><td>{{ x.on_time }}</td></tr>{% endfor %}</table>
<h2>{{ t('inc.report.who') }}</h2>
<table>{% for k, v in who %}<tr><td>{{ k }}</td><td>{{ v }}</td></tr>{% endfor %}</table>
<h2>{{ t('inc.report.links') }}</h2>
<table>{% for k, r, ti in links %}<tr><td>{{ k }}</td><td>{{ r }}</td><td>{{ ti }}</td></tr>{% else %}<tr><td>—</td></tr>{% endfor %}</table>
<h2>{{ t('inc.report.hospitals') }}</h2>
<table>{% for n, b, d in hospitals %}<tr><td>{{ n }}</td><td>{{ b }} {{ t('inc.beds') }}</td><td>{{ d }}</td></tr>{% endfor %}</table>
</body></html>"""
)


def _polygons(g: Any) -> list[Any]:
    """The polygons of a geometry (an intersection may also hold lines and points)."""
    if g.is_empty:
        return []
    if g.geom_type == "Polygon":
        return [g]
    return [p for part in getattr(g, "geoms", []) for p in _polygons(part)]


def render_html(doc: dict[str, Any]) -> str:
    """The report as one self-contained HTML page (the map inlined as PNG)."""
    return _HTML.render(**doc, map_b64=base64.b64encode(doc["map_png"]).decode())


def _fonts() -> tuple[str, str]:
    import matplotlib
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    base = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    if "DejaVu" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont("DejaVu", str(base / "DejaVuSans.ttf")))
        pdfmetrics.registerFont(TTFont("DejaVu-Bold", str(base / "DejaVuSans-Bold.ttf")))
    return "DejaVu", "DejaVu-Bold"


def _flood_story(
    flood: dict[str, Any] | None,
    t: Translate,
    p: Callable[..., Any],
    table: Callable[..., Any],
    h2: Any,
    small: Any,
    mm: float,
) -> list[Any]:
    """The PDF's flood section: its figures, what is under water, and how people are counted."""
    if flood is None:
        return []
    out = [
        p(t("inc.report.flood"), h2),
        # a label column wide enough to keep each figure on its label's line
        table([[k, v] for k, v in flood["facts"]], [88 * mm, 87 * mm], header=False),
    ]
    if flood["under"]:
        out.append(
            table([list(x) for x in flood["under"]], [50 * mm, 90 * mm, 35 * mm], header=False)
        )
    out.append(p(flood["note"], small))
    return out  # fmt: skip


def render_pdf(doc: dict[str, Any]) -> bytes:
    """The report as an A4 PDF (reportlab): summary, map, timeline, tasks, who did what."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    font, bold = _fonts()
    t: Translate = doc["t"]
    body = ParagraphStyle("b", fontName=font, fontSize=8, leading=10)
    h1 = ParagraphStyle("h1", fontName=bold, fontSize=15, leading=19, spaceAfter=4)
    h2 = ParagraphStyle("h2", fontName=bold, fontSize=11, leading=14, spaceBefore=8, spaceAfter=4)
    small = ParagraphStyle("s", parent=body, fontSize=7, textColor=colors.HexColor("#607d8b"))

    def p(text: object, style: ParagraphStyle = body) -> Paragraph:
        from xml.sax.saxutils import escape

        return Paragraph(escape(str(text if text is not None else "—")), style)

    def table(rows: list[list[Any]], widths: list[float], header: bool = True) -> Table:
        tb = Table(
            [[c if isinstance(c, Paragraph) else p(c) for c in r] for r in rows],
            colWidths=widths,
            repeatRows=1 if header else 0,
        )
        style = [
            ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#cfd8dc")),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ]
        if header:
            style.append(("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eef2f7")))
        tb.setStyle(TableStyle(style))
        return tb  # fmt: skip

    story: list[Any] = [
        p(doc["title"], h1),
        p(f"{t('inc.report.generated')} {doc['generated']}", small),
        p(t("inc.report.summary"), h2),
        table([[k, v] for k, v in doc["facts"]], [50 * mm, 125 * mm], header=False),
        *_flood_story(doc["flood"], t, p, table, h2, small, mm),
        p(t("inc.report.map"), h2),
        Image(io.BytesIO(doc["map_png"]), width=150 * mm, height=117 * mm),
        p(t("inc.report.timeline"), h2),
        table(
            [[t("inc.report.time"), t("inc.report.actor"), t("inc.report.action"), ""]]
            + [[e["at"], e["actor"], e["action"], e["text"]] for e in doc["timeline"]],
            [27 * mm, 28 * mm, 35 * mm, 85 * mm],
        ),
        p(t("inc.report.tasks"), h2),
        table(
            [["#", t("inc.report.task"), t("inc.report.owner"), t("inc.report.status"), t("inc.report.due"), t("inc.report.ack"), t("inc.report.done"), t("inc.on_time")]]
            + [[x["no"], x["title"] + "".join("\n" + n for n in x["notes"]), x["owner"], x["status"], x["due"], x["ack"], x["done"], x["on_time"]] for x in doc["tasks"]],
            [7 * mm, 42 * mm, 30 * mm, 17 * mm, 20 * mm, 22 * mm, 22 * mm, 15 * mm],
        ),
        p(t("inc.report.who"), h2),
        table([[k, v] for k, v in doc["who"]] or [["—", ""]], [40 * mm, 135 * mm], header=False),
        p(t("inc.report.links"), h2),
        table([list(x) for x in doc["links"]] or [["—", "", ""]], [30 * mm, 30 * mm, 115 * mm], header=False),
        Spacer(1, 4 * mm),
    ]  # fmt: skip
    buf = io.BytesIO()
    SimpleDocTemplate(
        buf,
        pagesize=A4,
        leftMargin=16 * mm,
        rightMargin=16 * mm,
        topMargin=14 * mm,
        bottomMargin=14 * mm,
        title=doc["title"],
        author="IOC Map",
    ).build(story)
    return buf.getvalue()
