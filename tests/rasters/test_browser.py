"""Flood mode and the 3D terrain view in Debian's Chromium, on a demo with the synthetic rasters."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import Engine

from ingest.demo_rasters import seed_demo_rasters
from layers import migrate
from layers.db import make_engine
from layers.demo.seed import seed_demo
from layers.settings import Settings
from layers.testing import create_database, drop_database, settings_for
from tests.conftest import live_server_for
from tests.web_map.conftest import admin_token
from tests.web_map.test_browser import wait_for

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "rasters"


@pytest.fixture(scope="module")
def flood_server(
    base_settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
    dist: Path,
) -> Iterator[tuple[str, Engine, Settings]]:
    """A demo database with the synthetic DEM and flood depth (coarse: 250 m), served live."""
    name = create_database(base_settings, "iocmap_flood")
    settings = settings_for(base_settings, name, tmp_path_factory.mktemp("flood-state"))
    settings = settings.model_copy(update={"raster_demo_res_m": 250.0, "web_dist_dir": dist})
    engine = make_engine(settings)
    migrate.upgrade(engine)
    seed_demo(engine, settings.model_copy(update={"demo_parcels": 500}))
    seed_demo_rasters(engine, settings)
    with live_server_for(settings) as base:
        yield base, engine, settings
    engine.dispose()
    drop_database(base_settings, name)


def open_map(
    browser: Any,
    server: tuple[str, Engine, Settings],
    lang: str,
    size: tuple[int, int],
) -> tuple[Any, Any, list[str]]:
    """A page on the map signed in as a leader (who may see every layer), loaded and settled."""
    base, engine, settings = server
    context = browser.new_context(viewport={"width": size[0], "height": size[1]}, locale="vi-VN")
    context.add_cookies(
        [
            {
                "name": settings.session_cookie_name,
                "value": admin_token(engine, settings),
                "url": base,
            }
        ]
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(f"{base}/?lang={lang}")
    assert wait_for(page, "document.body.dataset.ready", 90) == "1"
    assert page.evaluate("window.__iocmap.settled()") is True
    return context, page, errors


def blue_share(png: bytes) -> float:
    """Share of pixels in the flood extent's blue."""
    img = np.asarray(Image.open(__import__("io").BytesIO(png)).convert("RGB")).astype(int)
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    return float(((b > 150) & (b > r + 60) & (b > g + 20)).mean())


@pytest.mark.parametrize(
    ("lang", "size"), [("vi", (1600, 900)), ("en", (390, 844))], ids=["desktop-vi", "phone-en"]
)
def test_flood_mode_slider_redraws_extent_and_table(
    browser: Any,
    flood_server: tuple[str, Engine, Settings],
    lang: str,
    size: tuple[int, int],
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context, page, errors = open_map(browser, flood_server, lang, size)
    phone = size[0] < 700

    def layer_sheet() -> None:
        # On a phone the layer panel is a bottom sheet, opened and closed by its button.
        if phone:
            page.locator("#sheet-btn-left").click()

    layer_sheet()
    # The DEM is in the layer panel with its legend once switched on.
    page.locator("#toggle-dem_nghe_an").check()
    wait_for(page, "document.querySelector('[data-raster-legend=dem_nghe_an] .ramp')")
    assert page.evaluate("window.__iocmap.settled()") is True
    page.locator("#flood-toggle").click()
    wait_for(page, "document.querySelector('#flood-table')", 60)
    low = page.locator("#flood-totals b").first.inner_text()
    page.screenshot(path=str(ARTIFACTS / f"flood-low-{lang}-{size[0]}.png"))
    # Raise the water: the extent grows and the table follows.
    page.evaluate(
        """(() => { const s = document.getElementById('flood-level'); s.value = '18';
             s.dispatchEvent(new Event('input', {bubbles: true})); })()"""
    )
    wait_for(page, "document.body.dataset.floodLevel === '18'", 60)
    assert page.evaluate("window.__iocmap.settled()") is True
    high = page.locator("#flood-totals b").first.inner_text()
    assert int(high.replace(".", "").replace(",", "")) > int(low.replace(".", "").replace(",", ""))
    rows = page.locator("#flood-table tbody tr").count()
    assert rows >= 1
    layer_sheet()  # the map, not the sheet, for the extent's pixels
    shot = page.screenshot(path=str(ARTIFACTS / f"flood-high-{lang}-{size[0]}.png"))
    assert blue_share(shot) > 0.002
    layer_sheet()
    # The 1-in-100-year depth raster as the source.
    page.locator("#flood-src-depth").check()
    wait_for(page, "document.body.dataset.floodLevel === 'depth'", 60)
    assert page.locator("#flood-table tbody tr").count() >= 1
    page.screenshot(path=str(ARTIFACTS / f"flood-100y-{lang}-{size[0]}.png"))
    # The slider never writes a layer; saving the flood does, on request.
    page.locator("#flood-save").click()
    wait_for(page, "document.querySelector('#flood-saved')", 60)
    assert "flood_extent" in page.locator("#flood-saved").inner_text()
    context.close()
    assert errors == [], errors


def test_terrain_3d_view_tilts(browser: Any, flood_server: tuple[str, Engine, Settings]) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context, page, errors = open_map(browser, flood_server, "vi", (1600, 900))
    flat = page.screenshot()
    page.locator("#terrain-toggle").click()
    wait_for(page, "document.body.dataset.terrain === '1'")
    # The meshes are drawn tile by tile; wait for a few of them (far tiles keep streaming in
    # at this pitch, so "every tile loaded" is not the right signal here).
    wait_for(
        page,
        """window.__iocmap.app.overlay._deck.layerManager.getLayers()
             .filter(l => l.id.startsWith('terrain-3d-tiles-') && l.isLoaded).length >= 4""",
        90,
    )
    page.wait_for_timeout(1500)
    assert page.evaluate("window.__iocmap.app.map.getPitch()") > 40
    layers = page.evaluate(
        "window.__iocmap.app.overlay._deck.layerManager.getLayers().map(l => l.id)"
    )
    assert any(i.startswith("terrain-3d") for i in layers)
    tilted = page.screenshot(path=str(ARTIFACTS / "terrain-3d-vi-1600.png"))
    assert tilted != flat
    # Leaders can turn it: bearing follows a right-drag.
    page.evaluate("window.__iocmap.app.map.setBearing(35)")
    page.wait_for_timeout(3000)
    page.screenshot(path=str(ARTIFACTS / "terrain-3d-turned-vi-1600.png"))
    page.locator("#terrain-toggle").click()
    wait_for(page, "document.body.dataset.terrain === '0'")
    context.close()
    assert errors == [], errors
