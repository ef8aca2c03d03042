"""Find, read and share the map (issue 18), in Debian's Chromium against a live server.

Search spellings, shared links in a new profile, back/forward, measuring, the attribute table,
PNG/PDF exports, the phone layout, the video wall, the light theme, sign-out and dialogs.
Screenshots go to test-artifacts/web_map/mapux-*.png.
"""

from __future__ import annotations

import math
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image
from pyproj import Geod
from sqlalchemy import Engine, text

from layers.settings import Settings
from tests.web_map.conftest import admin_token

DESKTOP = {"width": 1600, "height": 900}
PHONE = {"width": 390, "height": 844}
# Where each spelling must land (lon, lat inside the place; the map's centre comes near it).
CUA_LO = (105.725, 18.79)
VINH = (105.70, 18.70)
HUNG_NGUYEN = (105.64, 18.68)


def wait_for(pg: Any, expression: str, timeout_s: float = 30.0) -> Any:
    """Poll a JS expression until truthy (wait_for_function would need 'unsafe-eval')."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = pg.evaluate(expression)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {expression}")
        pg.wait_for_timeout(100)


@contextmanager
def open_page(
    browser: Any,
    live_server: str,
    engine: Engine,
    settings: Settings,
    query: str = "lang=vi",
    viewport: dict[str, int] | None = None,
    signed_in: bool = True,
) -> Iterator[tuple[Any, list[str]]]:
    """A fresh browser profile on the map, loaded and settled; yields (page, console errors)."""
    context = browser.new_context(
        viewport=viewport or DESKTOP, locale="vi-VN", accept_downloads=True
    )
    if signed_in:
        context.add_cookies(
            [
                {
                    "name": settings.session_cookie_name,
                    "value": admin_token(engine, settings),
                    "url": live_server,
                }
            ]
        )
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on(
        "console",
        lambda m: (
            errors.append(m.text) if m.type == "error" or "cannot fit" in m.text.lower() else None
        ),
    )
    pg.goto(f"{live_server}/?{query}")
    assert wait_for(pg, "document.body.dataset.ready", 90) == "1"
    assert pg.evaluate("window.__iocmap.settled()") is True
    try:
        yield pg, errors
    finally:
        context.close()


def centre(pg: Any) -> tuple[float, float, float]:
    """(lon, lat, zoom) of the map."""
    c = pg.evaluate(
        "(() => { const m = window.__iocmap.app.map; const c = m.getCenter(); return [c.lng, c.lat, m.getZoom()]; })()"
    )
    return float(c[0]), float(c[1]), float(c[2])


def idle(pg: Any) -> None:
    """Wait for the map to stop and the URL writer's debounce to pass."""
    pg.wait_for_timeout(300)
    pg.evaluate("window.__iocmap.idle()")
    pg.wait_for_timeout(1100)


def near(a: tuple[float, float], b: tuple[float, float], km: float) -> bool:
    """Whether two lon/lat points are within `km` of each other."""
    dx = (a[0] - b[0]) * 111.32 * math.cos(math.radians(a[1]))
    dy = (a[1] - b[1]) * 110.57
    return math.hypot(dx, dy) <= km


def search(pg: Any, q: str) -> list[str]:
    """Type a query, wait for the results, choose the first; returns the result labels."""
    box = pg.locator("#search-input")
    box.fill("")
    box.fill(q)
    wait_for(
        pg,
        "!document.getElementById('search-results').hidden && document.querySelectorAll('.sr-item').length > 0",
        20,
    )
    labels: list[str] = pg.locator(".sr-item .sr-main").all_inner_texts()
    box.press("Enter")
    idle(pg)
    return labels


@pytest.mark.parametrize(
    ("q", "where", "km"),
    [
        ("cua lo", CUA_LO, 3.0),
        ("Cửa Lò", CUA_LO, 3.0),
        ("TP Vinh", VINH, 3.0),
        ("hung nguyen", HUNG_NGUYEN, 3.0),
        ("18.81, 105.72", (105.72, 18.81), 0.05),
        ("597910.3, 2065297.7", (105.68, 18.67), 0.05),
    ],
)
def test_search_spellings_land_on_the_place(
    browser: Any,
    live_server: str,
    seeded: Engine,
    settings: Settings,
    artifacts: Path,
    q: str,
    where: tuple[float, float],
    km: float,
) -> None:
    with open_page(browser, live_server, seeded, settings) as (pg, _errors):
        labels = search(pg, q)
        lon, lat, zoom = centre(pg)
        assert near((lon, lat), where, km), (q, labels[:3], lon, lat)
        assert zoom > 9
        # the chosen place is highlighted on the map
        assert pg.evaluate("(window.__iocmap.app.searchHit || []).length") > 0
        assert pg.evaluate("!!window.__iocmap.app.map.getLayer('search-hit-line')")
        slug = "".join(c if c.isalnum() else "-" for c in q.lower())
        pg.screenshot(path=str(artifacts / f"mapux-search-{slug}.png"))


def test_shared_link_restores_view_and_layers_in_a_new_profile(
    browser: Any, live_server: str, seeded: Engine, settings: Settings, artifacts: Path
) -> None:
    with open_page(browser, live_server, seeded, settings) as (pg, _errors):
        pg.evaluate("window.__iocmap.jumpTo([105.70, 18.75], 12.5)")
        idle(pg)
        pg.locator("#toggle-schools").uncheck()
        pg.evaluate("window.__iocmap.app.state.view")
        idle(pg)
        url = pg.url
        assert "z=12.50" in url and "schools" not in url.split("l=")[1].split("&")[0]
    with open_page(browser, live_server, seeded, settings, query=url.split("?", 1)[1]) as (
        pg2,
        _errors,
    ):
        lon, lat, zoom = centre(pg2)
        assert abs(lon - 105.70) < 1e-4 and abs(lat - 18.75) < 1e-4 and abs(zoom - 12.5) < 0.01
        assert pg2.evaluate("window.__iocmap.app.state.visible.schools") is False
        assert pg2.evaluate("window.__iocmap.app.state.visible.hospitals") is True
        assert not pg2.locator("#toggle-schools").is_checked()
        pg2.screenshot(path=str(artifacts / "mapux-shared-link.png"))


def _scale_km(pg: Any) -> float:
    """The length the map's scale bar stands for, in km."""
    label = pg.locator(".maplibregl-ctrl-scale").inner_text().strip()
    value, unit = label.split()
    return float(value) / (1000.0 if unit == "m" else 1.0)


def _url_view(url: str) -> tuple[float, float, float]:
    """(lon, lat, zoom) written in a URL's ?c=&z=."""
    query = parse_qs(urlsplit(url).query)
    lon, lat = (float(v) for v in query["c"][0].split(","))
    return lon, lat, float(query["z"][0])


def _inside_province(engine: Engine, lon: float, lat: float) -> bool:
    """Whether a point lies inside Nghệ An's current boundary."""
    with engine.connect() as conn:
        return bool(
            conn.execute(
                text(
                    "SELECT bool_or(ST_Intersects(geom, ST_SetSRID(ST_MakePoint(:x, :y), 4326)))"
                    " FROM admin_unit WHERE level = 'province' AND valid_to IS NULL"
                ),
                {"x": lon, "y": lat},
            ).scalar_one()
        )


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_opened_on_another_page_the_map_shows_the_province(
    browser: Any,
    live_server: str,
    seeded: Engine,
    settings: Settings,
    artifacts: Path,
    size: str,
) -> None:
    viewport = DESKTOP if size == "desktop" else PHONE
    with open_page(
        browser, live_server, seeded, settings, query="lang=vi#/reports", viewport=viewport
    ) as (pg, errors):
        assert pg.evaluate("document.getElementById('mapview').hidden") is True
        # while the map is hidden, the URL records no view of its stand-in size
        assert "c=" not in urlsplit(pg.url).query
        pg.locator("#nav-map").click()
        wait_for(pg, "!document.getElementById('mapview').hidden")
        idle(pg)
        pg.screenshot(path=str(artifacts / f"mapux-first-on-reports-{size}.png"))
        lon, lat, zoom = centre(pg)
        km = _scale_km(pg)
        assert 5 <= km <= 100, km
        assert _inside_province(seeded, lon, lat), (lon, lat)
        url_lon, url_lat, url_zoom = _url_view(pg.url)
        assert abs(url_lon - lon) < 1e-4 and abs(url_lat - lat) < 1e-4, (pg.url, lon, lat)
        assert abs(url_zoom - zoom) < 0.01, (pg.url, zoom)
        # the very view the province button gives at this size
        pg.evaluate("window.__iocmap.home()")
        home = centre(pg)
        assert near(home[:2], (lon, lat), 0.5) and abs(home[2] - zoom) < 0.05, (home, zoom)
        # that first view is no step of its own: back returns to the reports page
        pg.go_back()
        wait_for(pg, "document.getElementById('mapview').hidden")
        assert errors == [], errors


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_a_shared_view_opened_on_another_page_is_restored(
    browser: Any,
    live_server: str,
    seeded: Engine,
    settings: Settings,
    artifacts: Path,
    size: str,
) -> None:
    viewport = DESKTOP if size == "desktop" else PHONE
    query = "lang=en&c=105.70000,18.75000&z=12.50#/reports"
    with open_page(browser, live_server, seeded, settings, query=query, viewport=viewport) as (
        pg,
        errors,
    ):
        assert _url_view(pg.url) == (105.70, 18.75, 12.5)
        pg.locator("#nav-map").click()
        wait_for(pg, "!document.getElementById('mapview').hidden")
        idle(pg)
        pg.screenshot(path=str(artifacts / f"mapux-shared-on-reports-{size}.png"))
        lon, lat, zoom = centre(pg)
        assert abs(lon - 105.70) < 1e-4 and abs(lat - 18.75) < 1e-4 and abs(zoom - 12.5) < 0.01
        assert _url_view(pg.url) == (105.70, 18.75, 12.5)
        assert _scale_km(pg) < 5
        assert errors == [], errors


def test_shared_link_restores_mode_time_window_and_selection(
    browser: Any, live_server: str, seeded: Engine, settings: Settings, artifacts: Path
) -> None:
    with seeded.connect() as conn:
        fid, name = conn.execute(
            text(
                "SELECT f.id, f.properties->>'name' FROM feature f JOIN layer l ON l.id = f.layer_id"
                " WHERE l.slug = 'hospitals' ORDER BY f.id LIMIT 1"
            )
        ).one()
    with open_page(browser, live_server, seeded, settings) as (pg, _errors):
        pg.locator("#time-window").select_option("30")
        idle(pg)
        pg.locator("[data-view=h3]").click()
        idle(pg)
        search(pg, name)
        wait_for(pg, "window.__iocmap.app.state.selected")
        idle(pg)
        query = parse_qs(urlsplit(pg.url).query)
        assert query["m"] == ["h3"] and query["w"] == ["30"] and "t" in query
        assert query["sel"] == [f"hospitals/{fid}"]
        tm = pg.evaluate("(({from, to}) => [from, to])(window.__iocmap.app.state.time)")
        url = pg.url
    with open_page(browser, live_server, seeded, settings, query=url.split("?", 1)[1]) as (
        pg2,
        errors,
    ):
        wait_for(pg2, "window.__iocmap.app.state.selected")
        state = pg2.evaluate(
            "(({view, time, selected}) => [view, time.from, time.to, time.windowDays,"
            " selected.slug, String(selected.feature.id)])(window.__iocmap.app.state)"
        )
        assert state[0] == "h3" and state[3] == 30, state
        # the link carries the window to the minute
        assert abs(state[1] - tm[0]) < 60_000 and abs(state[2] - tm[1]) < 60_000, (state, tm)
        assert state[4:] == ["hospitals", str(fid)], state
        assert name in pg2.locator("#tab-details").inner_text()
        assert pg2.locator("[data-view=h3]").get_attribute("class").split().count("active") == 1
        pg2.screenshot(path=str(artifacts / "mapux-shared-mode-time-selection.png"))
        assert errors == [], errors
    # a link to the hot spots draws them, as the button does
    with open_page(
        browser, live_server, seeded, settings, query="lang=en&m=hotspots&h=field_reports"
    ) as (pg3, errors):
        wait_for(
            pg3,
            "window.__iocmap.app.state.hotspots && !window.__iocmap.app.state.hotspots.loading",
        )
        assert pg3.evaluate("window.__iocmap.app.state.view") == "hotspots"
        assert pg3.evaluate("window.__iocmap.app.state.hotspots.slug") == "field_reports"
        assert pg3.locator("#hotspot-legend").count() == 1
        assert errors == [], errors


def test_labels_name_wards_and_points_without_overlap(
    browser: Any, live_server: str, seeded: Engine, settings: Settings, artifacts: Path
) -> None:
    with seeded.connect() as conn:
        name, lon, lat = conn.execute(
            text(
                "SELECT f.properties->>'name', ST_X(f.geom), ST_Y(f.geom) FROM feature f"
                " JOIN layer l ON l.id = f.layer_id WHERE l.slug = 'hospitals'"
                " ORDER BY f.id LIMIT 1"
            )
        ).one()
    boxes = (
        "[...document.querySelectorAll('#map-labels .map-label.KIND')].map(n => {"
        " const r = n.getBoundingClientRect(); return [n.textContent, r.left, r.top, r.right,"
        " r.bottom]; })"
    )

    def overlaps(rects: list[list[Any]]) -> list[tuple[str, str]]:
        out = []
        for i, a in enumerate(rects):
            for b in rects[i + 1 :]:
                w = min(a[3], b[3]) - max(a[1], b[1])
                h = min(a[4], b[4]) - max(a[2], b[2])
                if w > 2 and h > 2:
                    out.append((a[0], b[0]))
        return out

    with open_page(browser, live_server, seeded, settings) as (pg, errors):
        # the whole province: no ward names crowding the map
        pg.evaluate("window.__iocmap.home()")
        idle(pg)
        assert pg.evaluate(boxes.replace("KIND", "commune")) == []
        pg.evaluate("window.__iocmap.jumpTo([105.68, 18.72], 11)")
        idle(pg)
        wards = pg.evaluate(boxes.replace("KIND", "commune"))
        assert len(wards) >= 5, wards
        assert overlaps(wards) == []
        assert "Cửa Lò" in [w[0] for w in wards]
        pg.screenshot(path=str(artifacts / "mapux-labels-wards.png"))
        pg.evaluate(f"window.__iocmap.jumpTo([{lon}, {lat}], 15.5)")
        idle(pg)
        points = pg.evaluate(boxes.replace("KIND", "point"))
        assert name in [p[0] for p in points], points
        everything = points + pg.evaluate(boxes.replace("KIND", "commune"))
        assert overlaps(everything) == []
        pg.screenshot(path=str(artifacts / "mapux-labels-points.png"))
        assert errors == [], errors


def test_back_and_forward_step_through_views(
    browser: Any, live_server: str, seeded: Engine, settings: Settings
) -> None:
    with open_page(browser, live_server, seeded, settings) as (pg, _errors):
        pg.evaluate("window.__iocmap.jumpTo([105.60, 18.70], 11)")
        idle(pg)
        pg.evaluate("window.__iocmap.jumpTo([105.20, 19.30], 10)")
        idle(pg)
        pg.evaluate("window.__iocmap.jumpTo([104.50, 19.10], 9)")
        idle(pg)
        pg.go_back()
        idle(pg)
        assert near(centre(pg)[:2], (105.20, 19.30), 0.05)
        pg.go_back()
        idle(pg)
        assert near(centre(pg)[:2], (105.60, 18.70), 0.05)
        pg.go_forward()
        idle(pg)
        lon, lat, zoom = centre(pg)
        assert near((lon, lat), (105.20, 19.30), 0.05) and abs(zoom - 10) < 0.01


def test_measure_a_known_segment(
    browser: Any, live_server: str, seeded: Engine, settings: Settings, artifacts: Path
) -> None:
    a, b = (105.60, 18.70), (105.70, 18.76)
    expected = Geod(ellps="WGS84").inv(a[0], a[1], b[0], b[1])[2]
    with open_page(browser, live_server, seeded, settings, query="lang=en") as (pg, _errors):
        pg.evaluate("window.__iocmap.jumpTo([105.65, 18.73], 12)")
        idle(pg)
        pg.locator("#tool-measure").click()
        wait_for(pg, "!!document.getElementById('measure-panel')")
        for p in (a, b):
            x, y = pg.evaluate(f"window.__iocmap.project([{p[0]}, {p[1]}])")
            pg.mouse.click(x, y)
            pg.wait_for_timeout(200)
        measured = float(pg.locator("#measure-out").get_attribute("data-meters") or 0)
        assert abs(measured - expected) / expected < 0.01, (measured, expected)
        assert "km" in pg.locator("#measure-out").inner_text()
        pg.screenshot(path=str(artifacts / "mapux-measure-en.png"))
        # area of a triangle: m² and ha shown
        pg.locator("[data-measure=area]").click()
        for p in (a, b, (105.60, 18.76)):
            x, y = pg.evaluate(f"window.__iocmap.project([{p[0]}, {p[1]}])")
            pg.mouse.click(x, y)
            pg.wait_for_timeout(200)
        assert "ha" in pg.locator("#measure-out").inner_text()
        # measuring never opened a feature's details
        assert pg.evaluate("window.__iocmap.app.state.selected") is None


def test_attribute_table_filters_parcels_like_the_server(
    browser: Any, live_server: str, seeded: Engine, settings: Settings, artifacts: Path
) -> None:
    with seeded.connect() as conn:
        expected = conn.execute(
            text(
                "SELECT count(*) FROM feature f JOIN layer l ON l.id = f.layer_id"
                " WHERE l.slug = 'land_parcels'"
                " AND upper(f.properties->>'KyHieuMucDichSuDung') LIKE '%ONT%'"
            )
        ).scalar_one()
    assert expected > 0
    with open_page(browser, live_server, seeded, settings) as (pg, _errors):
        pg.locator("#tool-table").click()
        wait_for(pg, "!!document.getElementById('table-layer')")
        pg.locator("#table-layer").select_option("land_parcels")
        wait_for(pg, "!!document.querySelector('[data-filter=KyHieuMucDichSuDung]')")
        f = pg.locator("[data-filter=KyHieuMucDichSuDung]")
        f.fill("ONT")
        f.press("Enter")
        wait_for(pg, f"document.getElementById('table-count').dataset.total === '{expected}'", 30)
        rows = pg.locator("#table-body tr").count()
        assert rows == min(50, expected)
        cells = pg.locator("#table-body tr td:nth-child(6)").all_inner_texts()
        assert all("ONT" in c for c in cells)
        # only the parcels within the map's view, on request
        pg.evaluate("window.__iocmap.jumpTo([105.68, 18.68], 14)")
        idle(pg)
        bbox = pg.evaluate(
            "(() => { const b = window.__iocmap.app.map.getBounds();"
            " return [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()]"
            ".map(v => Number(v.toFixed(6))); })()"
        )
        with seeded.connect() as conn:
            in_view = conn.execute(
                text(
                    "SELECT count(*) FROM feature f JOIN layer l ON l.id = f.layer_id"
                    " WHERE l.slug = 'land_parcels'"
                    " AND upper(f.properties->>'KyHieuMucDichSuDung') LIKE '%ONT%'"
                    " AND ST_Intersects(f.geom, ST_MakeEnvelope(:w, :s, :e, :n, 4326))"
                ),
                dict(zip("wsen", bbox, strict=True)),
            ).scalar_one()
        assert in_view < expected
        pg.locator("#table-inview").check()
        wait_for(pg, f"document.getElementById('table-count').dataset.total === '{in_view}'", 30)
        pg.locator("#table-inview").uncheck()
        wait_for(pg, f"document.getElementById('table-count').dataset.total === '{expected}'", 30)
        # sorted by area, descending, on the server
        pg.locator("[data-sort=DienTich]").click()
        pg.locator("[data-sort=DienTich]").click()
        wait_for(pg, "document.querySelector('th[aria-sort=descending]')")
        pg.wait_for_timeout(800)
        before = pg.evaluate("window.__iocmap.app.map.getCenter().toArray()")
        pg.locator("#table-body tr").first.click()
        idle(pg)
        after = pg.evaluate("window.__iocmap.app.map.getCenter().toArray()")
        assert before != after
        assert pg.evaluate("window.__iocmap.app.state.selected.slug") == "land_parcels"
        with pg.expect_download() as dl:
            pg.locator("#table-csv").click()
        csv = Path(dl.value.path()).read_text(encoding="utf-8-sig").strip().splitlines()
        assert len(csv) == expected + 1
        pg.screenshot(path=str(artifacts / "mapux-table-vi.png"))


def _legend_ink(img: Image.Image, box: tuple[int, int, int, int]) -> int:
    """Number of clearly coloured (non-white, non-grey) pixels in a box of the page."""
    crop = img.convert("RGB").crop(box)
    data = crop.tobytes()
    return sum(
        1 for i in range(0, len(data), 3) if max(data[i : i + 3]) - min(data[i : i + 3]) > 60
    )


def test_png_and_pdf_exports_open_and_show_the_legend(
    browser: Any,
    live_server: str,
    seeded: Engine,
    settings: Settings,
    artifacts: Path,
    tmp_path: Path,
) -> None:
    with open_page(browser, live_server, seeded, settings, query="lang=en") as (pg, errors):
        pg.evaluate("window.__iocmap.jumpTo([105.68, 18.72], 11)")
        idle(pg)
        pg.locator("#tool-print").click()
        wait_for(pg, "!!document.getElementById('print-dialog')")
        pg.screenshot(path=str(artifacts / "mapux-print-dialog-en.png"))
        with pg.expect_download() as dl:
            pg.locator("#print-png").click()
        png = tmp_path / "map.png"
        dl.value.save_as(png)
        pg.locator("#print-paper").select_option("A3")
        with pg.expect_download() as dl2:
            pg.locator("#print-pdf").click()
        pdf = tmp_path / "map.pdf"
        dl2.value.save_as(pdf)
        pg.locator("#print-paper").select_option("A4")
        pg.locator("#print-orient").select_option("portrait")
        with pg.expect_download() as dl4:
            pg.locator("#print-pdf").click()
        portrait = tmp_path / "portrait.pdf"
        dl4.value.save_as(portrait)
        with pg.expect_download() as dl3:
            pg.locator("#print-briefing").click()
        html = Path(dl3.value.path()).read_text(encoding="utf-8")
        assert "leaflet" in html.lower() and "unpkg" not in html
        pg.keyboard.press("Escape")
        wait_for(pg, "!document.getElementById('print-dialog')")
        assert errors == []
    img = Image.open(png)
    img.load()
    assert img.size == (1754, 1240)  # A4 landscape at 150 dpi
    (artifacts / "mapux-export.png").write_bytes(png.read_bytes())
    # the legend column (right of the map) holds the layers' colour swatches
    assert _legend_ink(img, (1330, 120, 1740, 900)) > 500
    subprocess.run(
        ["pdftoppm", "-r", "60", "-png", "-singlefile", str(pdf), str(tmp_path / "page")],
        check=True,
    )
    page = Image.open(tmp_path / "page.png")
    page.load()
    (artifacts / "mapux-export-pdf.png").write_bytes((tmp_path / "page.png").read_bytes())
    w, h = page.size
    assert w > h  # A3 landscape
    assert abs(w / h - 420 / 297) < 0.01
    assert _legend_ink(page, (int(w * 0.77), int(h * 0.1), w - 5, int(h * 0.7))) > 100
    subprocess.run(
        ["pdftoppm", "-r", "60", "-png", "-singlefile", str(portrait), str(tmp_path / "tall")],
        check=True,
    )
    tall = Image.open(tmp_path / "tall.png")
    tall.load()
    (artifacts / "mapux-export-pdf-portrait.png").write_bytes((tmp_path / "tall.png").read_bytes())
    w, h = tall.size
    assert h > w and abs(h / w - 297 / 210) < 0.01  # A4 portrait
    # the legend runs under the map on a portrait page
    assert _legend_ink(tall, (5, int(h * 0.72), w - 5, h - 5)) > 100


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_phone_layout(
    browser: Any,
    live_server: str,
    seeded: Engine,
    settings: Settings,
    artifacts: Path,
    lang: str,
) -> None:
    with open_page(
        browser, live_server, seeded, settings, query=f"lang={lang}", viewport=PHONE
    ) as (pg, errors):
        assert "Map cannot fit" not in " ".join(errors)
        r = pg.evaluate(
            "(() => { const r = document.querySelector('#map canvas').getBoundingClientRect();"
            " const top = document.getElementById('topbar').getBoundingClientRect().height;"
            " const vis = Math.min(r.bottom, innerHeight) - Math.max(r.top, 0);"
            " return [r.width * vis / (innerWidth * innerHeight), top]; })()"
        )
        assert r[0] >= 0.6 and r[1] <= 64, r
        pg.screenshot(path=str(artifacts / f"mapux-phone-{lang}.png"))
        # every control visible on the page is at least 44 px tall or wide enough to tap
        small = pg.evaluate(
            "[...document.querySelectorAll('button, select, input[type=search]')]"
            ".filter(b => b.getClientRects().length && getComputedStyle(b).visibility !== 'hidden')"
            ".filter(b => { const r = b.getBoundingClientRect(); return r.height < 44 && r.bottom > 0; })"
            ".map(b => b.id || b.className || b.textContent)"
        )
        assert small == [], small
        n_layers = pg.evaluate(
            "Object.values(window.__iocmap.app.state.visible).filter(Boolean).length"
        )
        # a tap on the map never unticks a layer
        pg.mouse.click(195, 400)
        pg.wait_for_timeout(500)
        assert (
            pg.evaluate("Object.values(window.__iocmap.app.state.visible).filter(Boolean).length")
            == n_layers
        )
        for sheet in ("left", "right", "tools"):
            pg.locator(f"#sheet-btn-{sheet}").click()
            pg.wait_for_timeout(300)
            assert pg.evaluate(f"document.body.classList.contains('sheet-{sheet}')")
            others = [s for s in ("left", "right", "tools") if s != sheet]
            assert not any(
                pg.evaluate(f"document.body.classList.contains('sheet-{o}')") for o in others
            )
            pg.screenshot(path=str(artifacts / f"mapux-phone-{lang}-{sheet}.png"))
            pg.locator(f"#sheet-btn-{sheet}").click()
            pg.wait_for_timeout(200)
            assert not pg.evaluate(f"document.body.classList.contains('sheet-{sheet}')")
        # the tools from the tools sheet: each opens and closes
        for tool, panel, close in (
            ("table", "#attr-table", "#table-close"),
            ("measure", "#measure-panel", "#measure-close"),
            ("print", "#print-dialog", None),
            ("views", "#views-dialog", None),
        ):
            pg.locator("#sheet-btn-tools").click()
            pg.locator(f"#tool-{tool}").click()
            wait_for(pg, f"!!document.querySelector('{panel}')")
            pg.screenshot(path=str(artifacts / f"mapux-phone-{lang}-{tool}.png"))
            if close:
                pg.locator(close).click()
            else:
                pg.keyboard.press("Escape")
            wait_for(pg, f"!document.querySelector('{panel}')")
        # the time bar keeps its width
        width = pg.evaluate("document.getElementById('timebar').getBoundingClientRect().width")
        assert width > 300
        search(pg, "cua lo")
        pg.screenshot(path=str(artifacts / f"mapux-phone-{lang}-search.png"))
        assert errors == [], errors


def test_video_wall_rotates_without_console_errors(
    browser: Any, live_server: str, seeded: Engine, settings: Settings, artifacts: Path
) -> None:
    with open_page(browser, live_server, seeded, settings) as (pg, errors):
        for name, state in (("Vinh", "c=105.68,18.68&z=12"), ("Cửa Lò", "c=105.72,18.81&z=12.5")):
            pg.evaluate(
                "([n, s]) => fetch('/api/views', {method: 'POST', headers: {'Content-Type':"
                " 'application/json'}, body: JSON.stringify({name: n, state: s, rotate_s: 5})})"
                ".then(r => r.status)",
                [f"wall {name} {time.time_ns()}", state],
            )
        pg.locator("#tool-wall").click()
        wait_for(pg, "document.body.classList.contains('wall')")
        views = wait_for(
            pg, "window.__iocmap.app.wall && window.__iocmap.app.wall.views.length", 20
        )
        assert views >= 2
        # one full rotation and back to the first view
        wait_for(pg, f"Number(document.body.dataset.wallRotations) >= {views + 1}", 5 * views + 30)
        pg.screenshot(path=str(artifacts / "mapux-wall-vi.png"))
        pg.keyboard.press("Escape")
        wait_for(pg, "!document.body.classList.contains('wall')")
        assert errors == [], errors


def test_light_theme_sign_out_menu_and_dialog_keys(
    browser: Any, live_server: str, seeded: Engine, settings: Settings, artifacts: Path
) -> None:
    with open_page(browser, live_server, seeded, settings, query="lang=en") as (pg, errors):
        pg.locator("#tool-theme").click()
        wait_for(pg, "document.documentElement.dataset.theme === 'light'")
        pg.evaluate("window.__iocmap.jumpTo([105.68, 18.70], 11)")
        idle(pg)
        assert "theme=light" in pg.url
        pg.screenshot(path=str(artifacts / "mapux-light-en.png"))
        pg.locator("#login-btn").click()
        wait_for(pg, "!!document.getElementById('user-menu')")
        assert pg.locator("#menu-signout").inner_text() == "Sign out"
        pg.keyboard.press("Escape")
        wait_for(pg, "!document.getElementById('user-menu')")
        pg.locator("#tool-theme").click()
        wait_for(pg, "document.documentElement.dataset.theme !== 'light'")
        assert errors == [], errors
    with open_page(browser, live_server, seeded, settings, signed_in=False) as (pg, _errors):
        pg.locator("#login-btn").click()
        wait_for(pg, "!!document.getElementById('login-dialog')")
        # focus stays inside the dialog
        for _ in range(6):
            pg.keyboard.press("Tab")
            assert pg.evaluate(
                "document.getElementById('login-dialog').contains(document.activeElement)"
            )
        pg.keyboard.press("Escape")
        wait_for(pg, "!document.getElementById('login-dialog')")
