"""What a leader sees (Chromium): dashboards that fit their cards, a tidy legend, no 401 noise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.web_map.test_browser import settle, wait_for
from tests.web_map.test_indicators import ind_page, indicator_data  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser


def test_dashboard_cards_fit_and_name_their_periods(ind_page: Any, artifacts: Path) -> None:  # noqa: F811
    """Every KPI card holds its lists (no overflow, one line per value) and names its periods."""
    page = ind_page
    page.goto(page.url.split("#")[0] + "#/dashboard/yte")
    card = page.locator('.dash-kpi[data-indicator="yt_records"]')
    card.wait_for(timeout=20_000)
    page.screenshot(path=str(artifacts / "30-dashboard-fits.png"))
    overflow = page.evaluate(
        "[...document.querySelectorAll('.dash-kpi')]"
        ".filter(c => c.scrollWidth > c.clientWidth + 1).map(c => c.dataset.indicator)"
    )
    assert overflow == []
    wrapped = page.evaluate(
        "[...document.querySelectorAll('.dash-kpi .uval')]"
        ".filter(v => v.getClientRects().length !== 1 || v.offsetHeight > 20).length"
    )
    assert wrapped == 0
    # the bars say which periods they are, and the newest is the last label
    ticks = card.locator(".dash-bars text.tick").evaluate_all("ns => ns.map(n => n.textContent)")
    assert ticks and ticks[-1].count("/") == 2
    # long unit names are abbreviated the usual way, the full name kept in the tooltip
    pairs = card.locator(".dash-byunit .uname").evaluate_all(
        "ns => ns.map(n => [n.getAttribute('title'), n.textContent])"
    )
    assert pairs
    for full, shown in pairs:
        if full.startswith("Trạm y tế "):
            assert shown == "TYT " + full.removeprefix("Trạm y tế "), (full, shown)
        elif full.startswith("Bệnh viện "):
            assert shown.startswith("BV") and len(shown) < len(full), (full, shown)
    page.locator("#nav-map").click()
    page.locator("#map").wait_for(state="visible")


def test_choropleth_legend_never_repeats_a_bound(ind_page: Any) -> None:  # noqa: F811
    """A class whose bounds print alike reads as one value ("2"), never "2 – 2"."""
    page = ind_page
    page.locator("#nav-map").click()
    page.locator("#map").wait_for(state="visible")
    page.evaluate("window.__iocmap.home()")
    page.locator('[data-lefttab="indicators"]').click()
    page.locator('.ind-item[data-indicator="yt_records"]').click()
    page.locator("#choro-classes").wait_for(timeout=15_000)
    labels = page.locator("#choro-classes li[data-class]").all_inner_texts()
    assert len(labels) == 5
    for label in labels:
        parts = [p.strip() for p in label.split("–")]
        assert len(parts) in (1, 2) and (len(parts) == 1 or parts[0] != parts[1]), label
    page.locator("#choro-clear").click()
    page.locator('[data-lefttab="layers"]').click()


def test_signed_out_visitor_gets_no_401s(
    browser: Any,
    live_server: str,
    indicator_data: Any,  # noqa: F811
    artifacts: Path,
) -> None:
    """Signed out, sensitive layers and the feed ask to sign in instead of failing requests."""
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="vi-VN")
    page = context.new_page()
    failed: list[str] = []
    page.on(
        "response",
        lambda r: (
            failed.append(f"{r.status} {r.url}")
            if r.status >= 400 and "/api/auth/me" not in r.url
            else None
        ),
    )
    page.goto(f"{live_server}/?lang=vi")
    assert wait_for(page, "document.body.dataset.ready", 60) == "1"
    settle(page)
    page.screenshot(path=str(artifacts / "31-signed-out.png"))
    assert failed == []
    assert "error" not in (page.locator("#status").get_attribute("class") or "")
    # restricted layers are not even listed to a signed-out visitor (issue 14, item 11)
    for slug in ("cameras", "land_parcels"):
        assert page.locator(f'.layer[data-layer="{slug}"]').count() == 0
    page.locator('[data-tab="feed"]').click()
    assert page.locator("#feed-signin").is_visible()
    context.close()
