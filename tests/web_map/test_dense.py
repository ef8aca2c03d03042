"""A dense polygon layer below z15 (Chromium): drawn from its PNG overview, still clickable, hinted.

The demo has 3,000 parcels, below the size from which the map draws a layer from its PNG
overview tiles; `?raster=1` makes the map treat it as the million-parcel layer would be.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from layers.settings import Settings
from tests.web_map.test_browser import (
    POINT_LAYERS,
    _a_parcel,
    _click_lonlat,
    map_image,
    map_page,
    settle,
    wait_for,
)

pytestmark = pytest.mark.browser

HINT = "(() => { const h = document.getElementById('zoom-hint'); return h && !h.hidden ? h.textContent : null; })()"
RASTER_SHOWN = (
    "(() => { const m = window.__iocmap.app.map;"
    " return !!m.getLayer('native-land_parcels-raster')"
    " && m.getLayoutProperty('native-land_parcels-raster', 'visibility') === 'visible'; })()"
)
SELECTED = (
    "(() => { const s = window.__iocmap.app.state.selected;"
    " return s ? {slug: s.slug, props: s.feature.properties} : null; })()"
)


@pytest.fixture(scope="module")
def dense_page(browser: Any, live_server: str, seeded: Engine, settings: Settings) -> Iterator[Any]:
    """The map with the parcels drawn from their PNG overview below z15, point layers off."""
    with map_page(browser, live_server, seeded, settings, "lang=vi&raster=1") as pg:
        # nothing but parcels and wards under the clicks
        for slug in POINT_LAYERS:
            toggle = pg.locator(f"#toggle-{slug}")
            if toggle.count():
                toggle.uncheck()
        settle(pg)
        yield pg


@pytest.fixture
def parcel(dense_page: Any) -> dict[str, Any]:
    """A parcel's inside point and natural key; the page at z14 over it, nothing selected."""
    p = _a_parcel(dense_page)
    dense_page.evaluate(
        "(() => { const a = window.__iocmap.app; a.state.selected = null;"
        " a.state.selectedCommune = null; a.state.visible.land_parcels = true; a.update(); })()"
    )
    dense_page.evaluate("c => window.__iocmap.jumpTo(c, 14)", p["c"])
    settle(dense_page)
    return p


def test_parcel_click_below_z15_opens_the_parcel(
    dense_page: Any, parcel: dict[str, Any], artifacts: Path
) -> None:
    """At z14 the parcels are a picture, yet a click on one opens that parcel's panel."""
    page = dense_page
    assert page.evaluate(RASTER_SHOWN) is True
    # no parcel polygons in the map at this zoom: the click must ask the API
    assert (
        page.evaluate(
            "window.__iocmap.app.map.queryRenderedFeatures({layers: ['native-land_parcels-fill']}).length"
        )
        == 0
    )
    _click_lonlat(page, parcel["c"])
    wait_for(page, "window.__iocmap.app.state.selected", 10)
    picked = page.evaluate(SELECTED)
    assert picked["slug"] == "land_parcels"
    assert picked["props"]["SoHieuToBanDo"] == parcel["sheet"]
    assert picked["props"]["SoThuTuThua"] == parcel["lot"]
    assert str(parcel["lot"]) in page.locator("#details-title").inner_text()
    settle(page)
    map_image(page, artifacts, "40-parcel-below-z15")


def test_pointer_resting_on_a_parcel_below_z15_shows_it(
    dense_page: Any, parcel: dict[str, Any]
) -> None:
    """A pointer resting over the overview gets the parcel's tooltip (the ward's until then)."""
    page = dense_page
    x, y = page.evaluate("ll => window.__iocmap.project(ll)", parcel["c"])
    page.mouse.move(x - 40, y)
    page.mouse.move(x, y)
    title = f"Số hiệu tờ bản đồ {parcel['sheet']} / Số thứ tự thửa {parcel['lot']}"
    text = wait_for(
        page,
        "(() => { const t = document.querySelector('.tt');"
        f" return t && t.offsetParent && t.innerText.includes({title!r}) ? t.innerText : null; }})()",
        10,
    )
    assert title in text
    # the parcel is outlined on the map (the one-feature hover source)
    outlined = page.evaluate(
        "(async () => (await window.__iocmap.app.map.getSource('native-hover').getData())"
        ".features.map(f => f.properties.SoThuTuThua))()"
    )
    assert outlined == [parcel["lot"]]
    page.mouse.move(5, 5)


def test_click_beside_the_parcels_below_z15_opens_the_ward(
    dense_page: Any, parcel: dict[str, Any]
) -> None:
    """Where the overview has no parcel, a click below z15 still opens the ward, as before."""
    page = dense_page
    # ward centres far from Vinh's parcels (westernmost first), at a zoom where the parcels'
    # overview is shown; the first one that lies in its ward on the map
    centres = page.evaluate(
        """(async () => {
          const r = await fetch('/api/layers/admin_communes/features?limit=200');
          const fc = await r.json();
          const centre = (f) => {
            let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
            const walk = (v) => {
              if (typeof v[0] !== 'number') return v.forEach(walk);
              x0 = Math.min(x0, v[0]); y0 = Math.min(y0, v[1]);
              x1 = Math.max(x1, v[0]); y1 = Math.max(y1, v[1]);
            };
            walk(f.geometry.coordinates);
            return [(x0 + x1) / 2, (y0 + y1) / 2];
          };
          return fc.features.map(centre).sort((p, q) => p[0] - q[0]).slice(0, 8);
        })()"""
    )
    far = None
    for c in centres:
        page.evaluate("c => window.__iocmap.jumpTo(c, 14)", c)
        settle(page)
        on_ward = page.evaluate(
            """c => { const m = window.__iocmap.app.map, p = m.project(c);
              return m.queryRenderedFeatures([p.x, p.y], {layers: ['communes-fill']}).length > 0; }""",
            c,
        )
        if on_ward:
            far = c
            break
    assert far is not None
    assert page.evaluate(RASTER_SHOWN) is True
    _click_lonlat(page, far)
    wait_for(page, "window.__iocmap.app.state.selected", 10)
    assert page.evaluate(SELECTED)["slug"] == "admin_communes"


def test_zoom_hint_follows_zoom_and_language(
    dense_page: Any, parcel: dict[str, Any], artifacts: Path
) -> None:
    """ "Zoom in to see individual parcels" shows while the overview is drawn, and only then."""
    page = dense_page
    assert page.evaluate(HINT) == "Phóng to để xem từng thửa"
    map_image(page, artifacts, "41-zoom-hint")
    page.evaluate("c => window.__iocmap.jumpTo(c, 15.5)", parcel["c"])
    settle(page)
    assert page.evaluate(HINT) is None
    page.evaluate("c => window.__iocmap.jumpTo(c, 14)", parcel["c"])
    settle(page)
    assert page.evaluate(HINT) == "Phóng to để xem từng thửa"
    page.evaluate("window.__iocmap.setLang('en')")
    assert page.evaluate(HINT) == "Zoom in to see individual parcels"
    page.evaluate("window.__iocmap.setLang('vi')")
    assert page.evaluate(HINT) == "Phóng to để xem từng thửa"
    # the layer switched off: no hint
    page.locator("#toggle-land_parcels").uncheck()
    settle(page)
    assert page.evaluate(HINT) is None
    page.locator("#toggle-land_parcels").check()
    settle(page)
    assert page.evaluate(HINT) == "Phóng to để xem từng thửa"
    # the province view: below the layer's minimum zoom nothing is drawn, nothing to hint
    page.evaluate("window.__iocmap.home()")
    settle(page)
    assert page.evaluate(HINT) is None
