"""The web map in Debian's Chromium against a live server on the seeded demo database."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image
from sqlalchemy import Engine

from layers.settings import Settings
from tests.web_map.conftest import signed_in_context

pytestmark = pytest.mark.browser

COMMUNE_FILL = (38, 50, 72)  # admin_communes fill over the dark background
PROVINCE_LINE = (255, 193, 7)  # admin_province outline
SCHOOL_GREENS = [(165, 214, 167), (102, 187, 106), (56, 142, 60), (27, 94, 32)]
CAMERA_CYANS = [(0, 151, 167), (0, 229, 255)]
# land_parcels palette (alpha 200) as drawn over the wards' fill (alpha 200 over #070d1a)
PARCEL_PALETTE = [
    (239, 154, 154),
    (255, 204, 188),
    (255, 245, 157),
    (197, 225, 165),
    (206, 147, 216),
    (176, 190, 197),
    (188, 170, 164),
    (144, 202, 249),
]


def _over(top: tuple[int, int, int], alpha: float, under: tuple[int, int, int]) -> tuple[int, ...]:
    return tuple(round(t * alpha + u * (1 - alpha)) for t, u in zip(top, under, strict=True))


WARD_ON_BG = _over(COMMUNE_FILL, 200 / 255, (7, 13, 26))
PARCEL_COLOURS = [_over(c, 200 / 255, WARD_ON_BG) for c in PARCEL_PALETTE]
POINT_LAYERS = ("schools", "hospitals", "tourism_sites", "field_reports", "cameras", "agencies")


def wait_for(pg: Any, expression: str, timeout_s: float = 30.0) -> Any:
    """Poll a JS expression until truthy (wait_for_function would need 'unsafe-eval' in the CSP)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = pg.evaluate(expression)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {expression}")
        pg.wait_for_timeout(100)


@pytest.fixture(scope="module")
def page(browser: Any, live_server: str, seeded: Engine, settings: Settings) -> Iterator[Any]:
    """One 1440x810 page on the map for the module, Vietnamese, fully loaded, real CSP."""
    outside: list[str] = []

    def watch(pg: Any, errors: list[str]) -> None:
        pg.on(
            "console",
            lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None,
        )
        pg.on(
            "request",
            lambda req: (
                outside.append(req.url)
                if not req.url.startswith((live_server, "data:", "blob:"))
                else None
            ),
        )

    with map_page(browser, live_server, seeded, settings, watch=watch) as pg:
        yield pg
    assert outside == [], f"the map fetched from outside: {outside}"


@contextmanager
def map_page(
    browser: Any,
    live_server: str,
    engine: Engine,
    settings: Settings,
    query: str = "lang=vi",
    watch: Callable[[Any, list[str]], None] | None = None,
) -> Iterator[Any]:
    """A signed-in page on the map, loaded and settled; closed on exit, with no page error.

    `watch(page, errors)` adds listeners before the page loads; what they append fails too.
    """
    context = signed_in_context(browser, live_server, engine, settings)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    if watch is not None:
        watch(pg, errors)
    pg.goto(f"{live_server}/?{query}")
    assert wait_for(pg, "document.body.dataset.ready", 60) == "1"
    settle(pg)
    yield pg
    context.close()
    assert errors == [], errors


@pytest.fixture
def fresh(page: Any) -> Any:
    """The shared page back at the province view with every layer on and nothing selected."""
    page.evaluate(
        """(() => { const a = window.__iocmap.app;
             for (const l of a.state.catalog) a.state.visible[l.slug] = true;
             a.state.selected = null; a.state.selectedCommune = null; a.state.view = 'vector';
             a.state.results = []; a.state.highlight = null;
             Object.assign(a.state.draw, {mode: null, points: [], center: null, area: null, areaLabel: null});
             a.update(); window.__iocmap.home(); })()"""
    )
    settle(page)
    return page


def settle(pg: Any) -> None:
    """Wait until the map is idle and every layer and tile has loaded."""
    assert pg.evaluate("window.__iocmap.settled()") is True


def map_image(pg: Any, artifacts: Path, name: str) -> Image.Image:
    """Screenshot the map area (saved as an artifact) and return it as RGB."""
    png = pg.locator("#map").screenshot()
    (artifacts / f"{name}.png").write_bytes(png)
    pg.screenshot(path=str(artifacts / f"{name}-page.png"))
    return Image.open(io.BytesIO(png)).convert("RGB")


def share_near(img: Image.Image, colours: list[tuple[int, int, int]], tol: int = 26) -> float:
    """Share of pixels within tol (per channel) of any of the colours."""
    small = img.resize((img.width // 2, img.height // 2), Image.Resampling.NEAREST)
    data = list(small.getdata())
    hits = 0
    for px in data:
        for c in colours:
            if abs(px[0] - c[0]) <= tol and abs(px[1] - c[1]) <= tol and abs(px[2] - c[2]) <= tol:
                hits += 1
                break
    return hits / len(data)


def distinct_colours(img: Image.Image) -> int:
    """How many distinct (quantised) colours the image has."""
    small = img.resize((img.width // 4, img.height // 4), Image.Resampling.NEAREST)
    return len({(r // 8, g // 8, b // 8) for r, g, b in small.getdata()})


def test_map_renders_layers_not_blank(fresh: Any, artifacts: Path) -> None:
    """The first view shows the wards, the province outline and the sector points."""
    page = fresh
    img = map_image(page, artifacts, "01-map-vi")
    assert distinct_colours(img) > 40
    assert share_near(img, [COMMUNE_FILL]) > 0.10
    assert share_near(img, [PROVINCE_LINE], tol=40) > 0.002
    assert share_near(img, SCHOOL_GREENS, tol=20) > 0.001
    # Vietnamese by default, every sector in the panel
    assert page.locator("#layers-h").inner_text().upper() == "LỚP DỮ LIỆU"
    sectors = page.locator(".sector").evaluate_all("els => els.map(e => e.dataset.sector)")
    assert {"admin", "health", "education", "tourism", "security", "feedback", "land"} <= set(
        sectors
    )
    assert "Trường học" in page.locator('.layer[data-layer="schools"]').inner_text()


def test_toggle_layer_off_and_on(fresh: Any, artifacts: Path) -> None:
    """Unchecking schools removes its green dots; checking it brings them back."""
    page = fresh
    before = share_near(map_image(page, artifacts, "02-schools-on"), SCHOOL_GREENS, tol=20)
    page.locator("#toggle-schools").uncheck()
    settle(page)
    after = share_near(map_image(page, artifacts, "03-schools-off"), SCHOOL_GREENS, tol=20)
    assert after < before * 0.6
    ids = page.evaluate("window.__iocmap.app.overlay._deck.layerManager.getLayers().map(l => l.id)")
    assert not any(i.startswith("layer-schools") for i in ids)
    page.locator("#toggle-schools").check()
    settle(page)
    again = share_near(map_image(page, artifacts, "04-schools-again"), SCHOOL_GREENS, tol=20)
    assert again > after


def _click_lonlat(pg: Any, lonlat: list[float]) -> None:
    x, y = pg.evaluate("ll => window.__iocmap.project(ll)", lonlat)
    pg.mouse.move(x, y)
    pg.wait_for_timeout(150)
    pg.mouse.click(x, y)


def test_click_camera_opens_its_panel(fresh: Any, artifacts: Path) -> None:
    """A click on a camera shows its panel: snapshot area, status, detections, and its cone."""
    page = fresh
    cam = page.evaluate(
        "(() => { const f = window.__iocmap.app.state.data.cameras[0];"
        " return {c: f.geometry.coordinates, name: f.properties.name}; })()"
    )
    page.evaluate("c => window.__iocmap.jumpTo(c, 17)", cam["c"])
    settle(page)
    _click_lonlat(page, cam["c"])
    page.wait_for_selector("#camera-card", timeout=10_000)
    assert page.locator("#details-title").inner_text() == cam["name"]
    assert page.locator("#camera-status").is_visible()
    assert page.locator("#camera-events").is_visible()
    # the view cones are drawn (by maplibre with the camera points, or by deck without tiles)
    cones = page.evaluate(
        """(() => { const m = window.__iocmap.app.map;
          const shown = m.getLayer('native-camera-cones-fill')
            && m.getLayoutProperty('native-camera-cones-fill', 'visibility') === 'visible';
          const deck = window.__iocmap.app.overlay._deck.layerManager.getLayers();
          return {native: shown ? m.querySourceFeatures('native-camera-cones').length : 0,
                  deck: deck.some(l => l.id === 'camera-cones')}; })()"""
    )
    assert cones["native"] > 0 or cones["deck"], cones
    settle(page)
    img = map_image(page, artifacts, "05-camera")
    assert share_near(img, CAMERA_CYANS, tol=40) > 0.002


def test_click_commune_shows_kpi_card(fresh: Any, artifacts: Path) -> None:
    """A click on a ward opens its KPI card and scopes the KPI strip to it."""
    page = fresh
    for slug in (
        "schools",
        "hospitals",
        "tourism_sites",
        "field_reports",
        "cameras",
        "land_parcels",
    ):
        page.locator(f"#toggle-{slug}").uncheck()
    target = page.evaluate(
        """(() => {
          const f = window.__iocmap.app.state.data.admin_communes
            .slice().sort((a, b) => b.properties.area_km2 - a.properties.area_km2)[0];
          let best = null;
          const ring = f.geometry.type === 'Polygon' ? f.geometry.coordinates[0] : f.geometry.coordinates[0][0];
          let sx = 0, sy = 0; for (const p of ring) { sx += p[0]; sy += p[1]; }
          best = [sx / ring.length, sy / ring.length];
          return {name: f.properties.name, c: best, code: f.properties.code};
        })()"""
    )
    page.evaluate("c => window.__iocmap.jumpTo(c, 10)", target["c"])
    settle(page)
    _click_lonlat(page, target["c"])
    page.wait_for_selector("#commune-card", timeout=10_000)
    title = page.locator("#details-title").inner_text()
    picked_code = page.evaluate(
        "window.__iocmap.app.state.selectedCommune && window.__iocmap.app.state.selectedCommune.properties.code"
    )
    assert picked_code is not None
    assert "Xã/phường" in page.locator(".kpi-scope").inner_text()
    assert title in page.locator(".kpi-scope").inner_text()
    map_image(page, artifacts, "06-commune")


def test_switch_language(fresh: Any, artifacts: Path) -> None:
    """The EN button switches every panel to English and back to Vietnamese."""
    page = fresh
    page.locator("#lang-toggle").click()
    assert page.evaluate("document.documentElement.lang") == "en"
    assert page.locator("#layers-h").inner_text().upper() == "LAYERS"
    assert "Schools" in page.locator('.layer[data-layer="schools"]').inner_text()
    assert "Population" in page.locator("#kpis").inner_text()
    map_image(page, artifacts, "07-english")
    page.locator("#lang-toggle").click()
    assert page.evaluate("document.documentElement.lang") == "vi"
    assert "Dân số" in page.locator("#kpis").inner_text()


def test_h3_view(fresh: Any, artifacts: Path) -> None:
    """The H3 view draws coloured hexagons with a legend and its resolution."""
    page = fresh
    page.locator('[data-view="h3"]').click()
    page.wait_for_selector("#h3-legend", timeout=10_000)
    wait_for(page, "window.__iocmap.app.state.h3.cells.length > 0", 20)
    settle(page)
    img = map_image(page, artifacts, "08-h3")
    ramp = [(13, 71, 161), (0, 151, 167), (0, 229, 255), (255, 235, 59), (255, 152, 0)]
    assert share_near(img, ramp, tol=60) > 0.003
    assert "H3" in page.locator("#h3-legend").inner_text()
    page.locator('[data-view="heatmap"]').click()
    settle(page)
    map_image(page, artifacts, "09-heatmap")
    page.locator('[data-view="vector"]').click()


def test_polygon_query_lists_results(fresh: Any, artifacts: Path) -> None:
    """Draw a polygon around central Vinh, run 'within' on schools, see highlighted results."""
    page = fresh
    centre = page.evaluate(
        """(() => { const c = window.__iocmap.app.state.data.cameras
             .filter(f => f.properties.owner === 'vms_vinh').map(f => f.geometry.coordinates);
           const src = c.length ? c : window.__iocmap.app.state.data.schools.map(f => f.geometry.coordinates);
           return [src.reduce((a, p) => a + p[0], 0) / src.length, src.reduce((a, p) => a + p[1], 0) / src.length]; })()"""
    )
    page.evaluate("c => window.__iocmap.jumpTo(c, 12.5)", centre)
    settle(page)
    page.locator('.tab[data-tab="query"]').click()
    page.locator('[data-tool="polygon"]').click()
    d = 0.03
    for dx, dy in ((-d, -d), (d, -d), (d, d), (-d, d)):
        x, y = page.evaluate("ll => window.__iocmap.project(ll)", [centre[0] + dx, centre[1] + dy])
        page.mouse.click(x, y)
        page.wait_for_timeout(120)
    page.locator("#query-finish").click()
    page.locator("#query-preset").select_option("within")
    page.locator("#query-target").select_option("schools")
    page.locator("#query-run").click()
    page.wait_for_selector("#query-results tr >> nth=1", timeout=15_000)
    rows = page.locator("#query-results tr").count() - 1
    assert rows > 0
    # the Map API's /api/query/within answered (the browser fallback is for when it is absent)
    assert page.evaluate("window.__iocmap.app.state.query.source") == "server"
    assert page.evaluate("window.__iocmap.app.state.results.length") >= rows
    page.locator("#query-results tr >> nth=1").click()
    assert page.evaluate("window.__iocmap.app.state.highlight !== null")
    settle(page)
    img = map_image(page, artifacts, "10-query")
    assert share_near(img, [(255, 64, 129)], tol=40) > 0.0005


# The field reports as maplibre draws them (a circle layer on their own vector tile source):
# who draws them, the source's tile URL and how many distinct points its loaded tiles hold.
FIELD_REPORT_POINTS = """(() => {
  const map = window.__iocmap.app.map;
  const src = map.getSource('native-field_reports');
  const feats = map.querySourceFeatures('native-field_reports', {sourceLayer: 'field_reports'});
  const ids = new Set(feats.map(f => f.id ?? JSON.stringify(f.geometry.coordinates)));
  const drawn = map.getLayer('native-field_reports-circle')
    && map.getLayoutProperty('native-field_reports-circle', 'visibility') === 'visible';
  return {type: drawn ? 'maplibre' : null, data: src.tiles[0], n: ids.size};
})()"""


def test_time_slider_filters_reports_through_tiles(fresh: Any, artifacts: Path) -> None:
    """A 30-day window reloads the field report tiles with ?datetime= and draws fewer points."""
    page = fresh
    tm = page.evaluate("window.__iocmap.app.state.time")
    # the slider's ends sit on whole hours, so the server caches the filtered tiles
    assert tm["min"] % 3_600_000 == 0 and tm["max"] % 3_600_000 == 0
    before = page.evaluate(FIELD_REPORT_POINTS)
    assert before["type"] == "maplibre" and "datetime" not in before["data"]
    assert before["n"] > 0
    urls: list[str] = []
    page.on(
        "request", lambda req: urls.append(req.url) if "/tiles/field_reports/" in req.url else None
    )
    page.locator("#time-window").select_option("30")
    settle(page)
    tm = page.evaluate("window.__iocmap.app.state.time")
    assert tm["to"] - tm["from"] <= 30 * 86400000
    assert tm["from"] % 3_600_000 == 0
    after = page.evaluate(FIELD_REPORT_POINTS)
    # still tiles (no GeoJSON fallback), now filtered by the server
    assert after["type"] == "maplibre"
    frm = page.evaluate("ms => new Date(ms).toISOString().replace('.000Z', 'Z')", tm["from"])
    assert f"datetime={frm}/.." in after["data"]
    asked = [parse_qs(urlsplit(u).query).get("datetime") for u in urls]
    assert asked and all(a == [f"{frm}/.."] for a in asked), urls[:3]
    assert 0 < after["n"] < before["n"]
    map_image(page, artifacts, "11-time-window")
    page.locator("#time-play").click()
    page.wait_for_timeout(800)
    assert page.evaluate("window.__iocmap.app.state.time.playing") is True
    page.locator("#time-play").click()
    played = page.evaluate("window.__iocmap.app.state.time")
    assert (played["to"] - played["min"]) % played["step"] == 0
    page.locator("#time-window").select_option("0")
    settle(page)
    assert "datetime" not in page.evaluate(FIELD_REPORT_POINTS)["data"]


def test_alert_feed_live_fly_and_acknowledge(fresh: Any, seeded: Engine, artifacts: Path) -> None:
    """A new alert arrives over SSE, a click flies the map to it, and it can be acknowledged."""
    from layers.analytics import alerts as adb

    page = fresh
    page.locator('.tab[data-tab="feed"]').click()
    lonlat = (105.68, 18.68)
    with seeded.begin() as conn:
        rule_id = adb.save_rule(conn, "webmap_test_rule", "Web map test", "critical", True, {})
        new, _ = adb.write_alerts(
            conn,
            [
                adb.AlertWrite(
                    rule_id=rule_id,
                    dedup_key="webmap-test-1",
                    severity="critical",
                    title="Ùn tắc giao thông nút Quang Trung",
                    area_kind="point",
                    area_ref="webmap-test-1",
                    geom_wkb=adb.point_wkb(*lonlat),
                )
            ],
        )
    item = page.locator(f'#feed-list li[data-key="alert-{new[0]}"]')
    item.wait_for(timeout=20_000)
    assert "Ùn tắc giao thông" in item.inner_text()
    item.locator(".ftitle").click()
    settle(page)
    centre = page.evaluate("window.__iocmap.app.map.getCenter().toArray()")
    assert abs(centre[0] - lonlat[0]) < 0.01 and abs(centre[1] - lonlat[1]) < 0.01
    map_image(page, artifacts, "12-alert")
    # acknowledging asks for an optional note first (issue 17)
    item.locator("button[data-alert-step=ack]").click()
    item.locator("button[data-confirm=ack]").click()
    page.locator(f'#feed-list li[data-key="alert-{new[0]}"].acked').wait_for(timeout=10_000)
    with seeded.connect() as conn:
        assert adb.get_alert(conn, new[0])["status"] == "acknowledged"


def test_import_page_dry_run(fresh: Any, artifacts: Path, tmp_path: Path) -> None:
    """GIS staff upload a GeoJSON, see the detected format, CRS and schema in a dry run."""
    page = fresh
    src = tmp_path / "tram_bom.geojson"
    src.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "geometry": {"type": "Point", "coordinates": [105.6 + i / 100, 18.7]},
                        "properties": {"ten": f"Trạm bơm {i}", "cong_suat": 10 * i},
                    }
                    for i in range(1, 6)
                ],
            }
        ),
        encoding="utf-8",
    )
    page.locator("#nav-import").click()
    page.locator("#imp-form").wait_for(timeout=10_000)
    page.locator("#imp-file").set_input_files(str(src))
    page.locator("#imp-layer").fill("webmap_tram_bom")
    page.locator("#imp-dry").click()
    page.locator("#imp-report").wait_for(timeout=30_000)
    report = page.locator("#imp-report").inner_text()
    assert "4326" in report
    assert "cong_suat" in report and "ten" in report
    page.screenshot(path=str(artifacts / "13-import-page.png"))
    page.locator("#nav-map").click()
    page.locator("#map").wait_for(state="visible")


def _a_parcel(page: Any) -> dict[str, Any]:
    """One parcel of the demo: its inside point and its natural key (from the features API)."""
    return page.evaluate(
        """(async () => {
          const r = await fetch('/api/layers/land_parcels/features?limit=50');
          const fc = await r.json();
          // a parcel near the middle of the returned ones, away from the tile edges' odds
          const f = fc.features[Math.floor(fc.features.length / 2)];
          const ring = f.geometry.type === 'Polygon' ? f.geometry.coordinates[0] : f.geometry.coordinates[0][0];
          const pts = ring.slice(0, -1);
          const c = [pts.reduce((a, p) => a + p[0], 0) / pts.length, pts.reduce((a, p) => a + p[1], 0) / pts.length];
          return {c, sheet: f.properties.SoHieuToBanDo, lot: f.properties.SoThuTuThua};
        })()"""
    )


def test_parcels_drawn_by_maplibre_and_clickable(fresh: Any, artifacts: Path) -> None:
    """At z16 over Vinh the parcels are drawn (maplibre, from tiles); a click opens the parcel."""
    page = fresh
    for slug in POINT_LAYERS:
        toggle = page.locator(f"#toggle-{slug}")
        if toggle.count():
            toggle.uncheck()
    parcel = _a_parcel(page)
    page.evaluate("c => window.__iocmap.jumpTo(c, 16)", parcel["c"])
    settle(page)
    assert page.evaluate("window.__iocmap.parcelsRenderer()") == "maplibre"
    # drawn by maplibre from /tiles, not by deck.gl
    ids = page.evaluate("window.__iocmap.app.overlay._deck.layerManager.getLayers().map(l => l.id)")
    assert not any(i.startswith("layer-land_parcels") for i in ids)
    img = map_image(page, artifacts, "14-parcels-z16")
    with_parcels = share_near(img, PARCEL_COLOURS, tol=24)
    assert with_parcels > 0.02
    # the layer panel's toggle hides them
    page.locator("#toggle-land_parcels").uncheck()
    settle(page)
    assert page.evaluate("window.__iocmap.parcelsRenderer()") is None
    without = share_near(map_image(page, artifacts, "15-parcels-off"), PARCEL_COLOURS, tol=24)
    assert without < with_parcels * 0.3
    page.locator("#toggle-land_parcels").check()
    settle(page)
    page.evaluate("c => window.__iocmap.jumpTo(c, 17)", parcel["c"])
    settle(page)
    _click_lonlat(page, parcel["c"])
    wait_for(page, "window.__iocmap.app.state.selected", 10)
    picked = page.evaluate(
        "(() => { const s = window.__iocmap.app.state.selected;"
        " return {slug: s.slug, props: s.feature.properties}; })()"
    )
    assert picked["slug"] == "land_parcels"
    assert picked["props"]["SoHieuToBanDo"] == parcel["sheet"]
    assert picked["props"]["SoThuTuThua"] == parcel["lot"]
    title = page.locator("#details-title").inner_text()
    assert str(parcel["lot"]) in title
    assert "KyHieuMucDichSuDung" not in page.locator("#tab-details").inner_text()  # labelled
    settle(page)
    map_image(page, artifacts, "16-parcel-selected")
