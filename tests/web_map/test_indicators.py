"""Sector indicators in the web map (Chromium): choropleth, a hospital's charts, a sector dashboard."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import Connection, Engine, text

from layers.settings import Settings
from tests.web_map.test_browser import map_image, map_page, settle, share_near, wait_for

pytestmark = pytest.mark.browser

DAYS = 40
FIRST_DAY = date(2026, 1, 1)
# The choropleth palette for an indicator where higher is better (yt_records): red → green.
GOOD_UP = [(215, 48, 39), (252, 141, 89), (254, 224, 139), (145, 207, 96), (26, 152, 80)]


def _source_keys(conn: Connection, slug: str) -> list[str]:
    """The source keys of a layer's features, in order."""
    sql = text(
        "SELECT f.source_key FROM feature f JOIN layer l ON l.id = f.layer_id"
        " WHERE l.slug = :slug ORDER BY f.source_key"
    )
    return [r[0] for r in conn.execute(sql, {"slug": slug})]


@pytest.fixture(scope="module")
def indicator_data(seeded: Engine) -> dict[str, Any]:
    """Daily medical records (and insured) for every hospital: rising, distinct per hospital."""
    from layers.indicators import store as ind

    with seeded.begin() as conn:
        keys = _source_keys(conn, "hospitals")
        rows = [
            ind.ObservationIn(
                indicator=code,
                subject_layer="hospitals",
                subject_key=key,
                period_start=FIRST_DAY + timedelta(days=d),
                period_end=FIRST_DAY + timedelta(days=d),
                value=float(20 + 3 * i + d + (d % 7)) * share,
            )
            # records and the insured among them, so the health dashboard's rate has inputs
            for code, share in (("yt_records", 1.0), ("yt_insured", 0.9))
            for i, key in enumerate(keys)
            for d in range(DAYS)
        ]
        counts = ind.upsert_observations(conn, None, rows)
    assert not counts.rejected, counts.rejected[:3]
    return {"hospitals": len(keys)}


@pytest.fixture(scope="module")
def ind_page(
    browser: Any, live_server: str, seeded: Engine, settings: Settings, indicator_data: Any
) -> Iterator[Any]:
    """A signed-in page on the map with the indicator data in place."""
    with map_page(browser, live_server, seeded, settings) as pg:
        yield pg


def test_choropleth_by_commune(ind_page: Any, artifacts: Path) -> None:
    """Picking an indicator colours the wards by class, with a legend and a period picker."""
    page = ind_page
    page.evaluate("window.__iocmap.home()")
    page.locator('[data-lefttab="indicators"]').click()
    page.locator('.ind-sector[data-sector="yte"]').wait_for(timeout=15_000)
    assert page.locator(".ind-sector").count() == 11  # 9 sector systems + incidents (issue 21)
    before = map_image(page, artifacts, "20-before-choropleth")
    page.locator('[data-indicator="yt_records"]').click()
    page.locator("#choro-classes").wait_for(timeout=15_000)
    settle(page)
    img = map_image(page, artifacts, "21-choropleth")
    legend = page.locator("#choro-legend").inner_text()
    assert "Lượt khám chữa bệnh" in legend
    assert page.locator("#choro-classes li").count() == 6  # 5 classes + no data
    # the latest day is selected, and every day with data can be picked
    assert page.locator("#choro-period").input_value() == str(FIRST_DAY + timedelta(days=DAYS - 1))
    assert page.locator("#choro-period option").count() == DAYS
    # the wards now show the palette: several classes, absent before
    assert share_near(before, GOOD_UP, tol=18) < 0.01
    hits = [share_near(img, [c], tol=18) for c in GOOD_UP]
    assert sum(hits) > 0.15
    assert sum(1 for h in hits if h > 0.005) >= 3
    # an earlier period reloads the values
    page.locator("#choro-period").select_option(str(FIRST_DAY))
    wait_for(page, f"window.__iocmap.app.state.choropleth.period === '{FIRST_DAY}'", 15)
    page.locator("#choro-clear").click()
    assert page.evaluate("window.__iocmap.app.state.choropleth") is None


def test_click_hospital_opens_charts_with_forecast(ind_page: Any, artifacts: Path) -> None:
    """A click on a hospital shows its daily series, trend line and a 6-day forecast band."""
    page = ind_page
    page.evaluate(
        """(() => { const a = window.__iocmap.app;
             for (const l of a.state.catalog) a.state.visible[l.slug] = l.slug === 'hospitals' || l.slug.startsWith('admin');
             a.update(); })()"""
    )
    hosp = page.evaluate(
        """(() => { const f = window.__iocmap.app.state.data.hospitals
             .find(f => f.properties.type === 'provincial_hospital');
           return {c: f.geometry.coordinates, name: f.properties.name, key: f.properties.source_key}; })()"""
    )
    assert hosp["key"]
    asked: list[dict[str, list[str]]] = []
    page.on(
        "request",
        lambda req: (
            asked.append(parse_qs(urlsplit(req.url).query))
            if "/api/indicators/yt_records?" in req.url and "subject=" in req.url
            else None
        ),
    )
    page.evaluate("c => window.__iocmap.jumpTo(c, 16)", hosp["c"])
    settle(page)
    x, y = page.evaluate("ll => window.__iocmap.project(ll)", hosp["c"])
    page.mouse.move(x, y)
    page.wait_for_timeout(150)
    page.mouse.click(x, y)
    page.locator("#ind-chart").wait_for(timeout=20_000)
    assert page.locator("#details-title").inner_text() == hosp["name"]
    assert page.locator("#ind-select").input_value() == "yt_records"
    # the charts were asked for by the clicked feature's source_key, not matched by position
    assert asked, "no indicator request for the hospital"
    assert asked[0]["subject"] == [hosp["key"]]
    assert asked[0]["level"] == ["feature"]
    assert asked[0]["forecast"] == ["6"]
    chart = page.locator("#ind-chart")
    assert chart.locator(".ind-series").count() >= 1
    assert chart.locator(".ind-trend").count() == 1
    assert chart.locator(".ind-band").count() == 1
    assert chart.locator(".ind-forecast").count() == 1
    # the series rises by a day a day: the trend says so, in green (higher is better)
    assert "▲" in page.locator("#ind-latest").inner_text()
    assert page.locator("#ind-latest .trend.good").count() == 1
    page.screenshot(path=str(artifacts / "22-hospital-charts-page.png"))
    page.evaluate(
        """(() => { const a = window.__iocmap.app;
             for (const l of a.state.catalog) a.state.visible[l.slug] = true;
             a.state.selected = null; a.update(); })()"""
    )


def test_sector_dashboard_top_and_bottom(ind_page: Any, artifacts: Path) -> None:
    """The health dashboard lists the KPIs with totals, by period, by unit, top and bottom units."""
    page = ind_page
    page.locator("#nav-dashboard").click()
    page.locator('.dash-tabs [data-sector="yte"]').click()
    card = page.locator('.dash-kpi[data-indicator="yt_records"]')
    card.wait_for(timeout=20_000)
    assert page.locator("#dash-title").inner_text() == "Y tế"
    assert card.locator(".dash-top li").count() == 5
    assert card.locator(".dash-bottom li").count() == 5
    assert card.locator(".dash-byunit li").count() == 10
    assert card.locator(".dash-bars .bar").count() >= 2
    # the highest unit is a provincial or regional hospital with the largest value
    top = card.locator(".dash-top li").first.inner_text()
    bottom = card.locator(".dash-bottom li").first.inner_text()
    assert top != bottom
    page.screenshot(path=str(artifacts / "23-dashboard-yte.png"))
    page.locator("#lang-toggle").click()
    card.wait_for(timeout=10_000)
    wait_for(page, "document.getElementById('dash-title')?.innerText === 'Health operations'", 10)
    page.locator("#lang-toggle").click()
    page.locator("#nav-map").click()
    page.locator("#map").wait_for(state="visible")


def _month(d: date, back: int) -> date:
    """The first day of the month `back` months before d's."""
    m = d.year * 12 + d.month - 1 - back
    return date(m // 12, m % 12 + 1, 1)


def test_dashboard_running_month_is_not_the_headline(
    ind_page: Any, seeded: Engine, artifacts: Path
) -> None:
    """Visitors up to this month: the headline is last month, this month shows as in progress."""
    from layers.indicators import store as ind

    today = ind.today_local()
    months = [_month(today, k) for k in (3, 2, 1, 0)]
    with seeded.begin() as conn:
        keys = _source_keys(conn, "tourism_sites")[:6]
        rows = [
            ind.ObservationIn(
                indicator="dl_visitors",
                subject_layer="tourism_sites",
                subject_key=key,
                period_start=m,
                period_end=_month(m, -1) - timedelta(days=1),
                # the running month has only its first days: far below the others
                value=100.0 + 10 * j if m != months[-1] else 5.0,
            )
            for key in keys
            for j, m in enumerate(months)
        ]
        counts = ind.upsert_observations(conn, None, rows)
    assert not counts.rejected, counts.rejected[:3]
    page = ind_page
    page.goto(page.url.split("#")[0] + "#/dashboard/dulich")
    card = page.locator('.dash-kpi[data-indicator="dl_visitors"]')
    card.wait_for(timeout=20_000)
    assert card.get_attribute("data-grain") == "month"
    last_month, this_month = months[-2], months[-1]
    # headline: last (complete) month, labelled by the KPI's monthly grain
    head = card.locator(".dash-head")
    assert head.locator(".dash-period").get_attribute("data-period") == str(last_month)
    assert f"{last_month.month:02d}/{last_month.year}" in head.inner_text()
    assert card.locator(".dash-latest").inner_text().startswith(str(len(keys) * 120))
    # the running month: beside it, flagged, and a lighter bar
    cur = card.locator(".dash-current")
    assert cur.get_attribute("data-period") == str(this_month)
    assert "đang cập nhật" in cur.inner_text()
    assert f"{this_month.month:02d}/{this_month.year}" in cur.inner_text()
    assert card.locator(".dash-bars .bar.partial").count() == 1
    assert card.locator(f'.dash-bars .bar.partial[data-period="{this_month}"]').count() == 1
    page.screenshot(path=str(artifacts / "25-dashboard-in-progress.png"))
    page.locator("#nav-map").click()
    page.locator("#map").wait_for(state="visible")


def test_signed_out_sees_a_sign_in_prompt(
    browser: Any, live_server: str, indicator_data: Any, artifacts: Path
) -> None:
    """Without a session the indicator tab asks to sign in instead of failing."""
    context = browser.new_context(viewport={"width": 1440, "height": 810})
    page = context.new_page()
    page.goto(f"{live_server}/?lang=vi")
    assert wait_for(page, "document.body.dataset.ready", 60) == "1"
    page.locator('[data-lefttab="indicators"]').click()
    prompt = page.locator("#ind-signin")
    prompt.wait_for(timeout=10_000)
    assert "đăng nhập" in prompt.inner_text().lower()
    page.screenshot(path=str(artifacts / "24-indicators-signed-out.png"))
    context.close()
