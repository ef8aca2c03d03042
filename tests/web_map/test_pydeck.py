"""The client's pydeck map (geo_api.client.to_pydeck) opens in Chromium with no network."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from geo_api.client import IocMap, offline_html
from layers.auth import users
from layers.errors import NotFoundError

PASSWORD = "pydeck planner password"


@pytest.mark.browser
def test_pydeck_html_draws_its_layers_offline(
    live_server: str, seeded: Engine, browser: Any, artifacts: Path, tmp_path: Path
) -> None:
    """Features, H3 cells and the basemap are drawn; nothing is fetched; no console errors."""
    from analytics import h3jobs

    with seeded.begin() as conn:
        try:
            users.get_user(conn, "pydeck_planner")
        except NotFoundError:
            users.create_user(conn, "pydeck_planner", PASSWORD, "planner")
    h3jobs.refresh_layer(seeded, "schools")
    with IocMap(live_server, username="pydeck_planner", password=PASSWORD) as ioc:
        deck = ioc.to_pydeck(layers=["hospitals", "schools"], h3="schools")
    out = artifacts / "pydeck-analyst-map.html"
    out.write_text(offline_html(deck), encoding="utf-8")

    page = browser.new_page(viewport={"width": 1200, "height": 800})
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(out.as_uri())
    page.wait_for_function(
        "() => typeof deckInstance !== 'undefined' && deckInstance.layerManager"
        " && deckInstance.layerManager.getLayers().length >= 4",
        polling=250,
        timeout=60_000,
    )
    page.wait_for_timeout(1500)
    ids = page.evaluate(
        "() => deckInstance.layerManager.getLayers().filter(l => !l.parent).map(l => l.id)"
    )
    assert {"basemap-communes", "h3-schools", "layer-hospitals", "layer-schools"} <= set(ids)
    counts = page.evaluate(
        "() => Object.fromEntries(deckInstance.layerManager.getLayers()"
        ".filter(l => !l.parent).map(l => [l.id, (l.props.data.features || l.props.data).length]))"
    )
    assert counts["basemap-communes"] == 130
    assert counts["layer-hospitals"] == 151
    assert counts["layer-schools"] == 1800
    assert counts["h3-schools"] > 10
    page.screenshot(path=str(artifacts / "pydeck-analyst-map.png"))
    assert [u for u in requests if not u.startswith(("file:", "data:", "blob:"))] == []
    assert errors == []
    page.close()
