"""The incident panel in Chromium: sign in through the page, open an incident on the map,
confirm it, see its SOP tasks, timeline and surroundings; an agency officer works a task."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from layers.auth import users
from layers.errors import NotFoundError
from layers.models.core import admin_unit
from tests.web_map.test_browser import wait_for

PASSWORD = "incident test password"


@pytest.fixture(scope="module")
def people(seeded: Engine) -> dict[str, Any]:
    """An operator and the officer of the most populous commune's UBND, and where that is."""
    pt = func.ST_PointOnSurface(admin_unit.c.geom)
    with seeded.begin() as conn:
        code, x, y = conn.execute(
            select(admin_unit.c.code, func.ST_X(pt), func.ST_Y(pt))
            .where(admin_unit.c.level == "commune", admin_unit.c.valid_to.is_(None))
            .order_by(admin_unit.c.population.desc(), admin_unit.c.code)
            .limit(1)
        ).one()
        for name, role, units in (
            ("t_inc_operator", "operator", []),
            ("t_inc_agency", "agency_staff", [f"000.{code}.00.H40"]),
            ("t_inc_admin", "admin", []),
            ("t_inc_planner", "planner", []),
        ):
            try:
                users.get_user(conn, name)
            except NotFoundError:
                users.create_user(conn, name, PASSWORD, role, units)
    return {"code": code, "lng": float(x), "lat": float(y)}


def _page(
    browser: Any, live_server: str, width: int, height: int, locale: str
) -> tuple[Any, Any, list[str]]:
    context = browser.new_context(viewport={"width": width, "height": height}, locale=locale)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    # Console errors fail the test, except the browser's own "failed to load resource" lines:
    # the map's other layers answer 401/403 to roles without access by design (the sign-in
    # probe, land parcels for operators, cameras for agency staff). Our routes must never fail.
    pg.on(
        "console",
        lambda m: (
            errors.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    mine = ("/api/incidents", "/api/tasks", "/api/sops")
    pg.on(
        "response",
        lambda r: (
            errors.append(f"{r.status} {r.url}")
            # a 404 right after a create is retried by the page (the commit races the response)
            if r.status >= 400 and r.status != 404 and any(p in r.url for p in mine)
            else None
        ),
    )
    return context, pg, errors


def _sign_in(pg: Any, live_server: str, name: str, lang: str) -> None:
    pg.goto(f"{live_server}/?lang={lang}")
    assert wait_for(pg, "document.body.dataset.ready", 60) == "1"
    pg.click("#login-btn")
    pg.fill("#login-user", name)
    pg.fill("#login-pass", PASSWORD)
    with pg.expect_navigation():
        pg.click("#login-dialog button[type=submit]")
    assert wait_for(pg, "document.body.dataset.ready", 60) == "1"
    assert wait_for(pg, "document.getElementById('login-btn').dataset.user") == name


@pytest.fixture(scope="module")
def opened(
    browser: Any, live_server: str, people: dict[str, Any], artifacts: Path
) -> Iterator[dict[str, Any]]:
    """An operator opens a flood incident on the map, through the page, and confirms it."""
    context, pg, errors = _page(browser, live_server, 1600, 900, "vi-VN")
    _sign_in(pg, live_server, "t_inc_operator", "vi")
    pg.click("[data-tab=incidents]")
    pg.click("#inc-pick")
    pg.evaluate(f"window.__iocmap.jumpTo([{people['lng']}, {people['lat']}], 13)")
    pg.wait_for_timeout(600)
    x, y = pg.evaluate(f"window.__iocmap.project([{people['lng']}, {people['lat']}])")
    pg.mouse.click(x, y)
    pg.wait_for_selector("#inc-new")
    pg.select_option("#inc-new select[name=type]", "flood")
    pg.select_option("#inc-new select[name=severity]", "3")
    pg.fill("#inc-new input[name=title]", "Ngập sâu khu dân cư khối 5")
    pg.fill("#inc-new input[name=radius_m]", "800")
    pg.click("#inc-new button[type=submit]")
    pg.wait_for_selector(".inc-head")
    pg.click("[data-to=confirmed]")
    pg.wait_for_selector(".inc-task[data-status=open]")
    wait_for(pg, "document.getElementById('inc-pop')")
    pg.wait_for_timeout(800)
    pg.screenshot(path=str(artifacts / "incident-panel-vi-1600.png"))
    yield {"page": pg, "errors": errors}
    context.close()
    assert errors == [], errors


def test_operator_opens_and_confirms_an_incident(opened: dict[str, Any], artifacts: Path) -> None:
    pg = opened["page"]
    head = pg.inner_text(".inc-head")
    assert "Ngập sâu khu dân cư khối 5" in head
    assert pg.get_attribute(".inc-facts dd[data-status]", "data-status") == "confirmed"
    tasks = pg.locator(".inc-task").count()
    assert tasks >= 7  # the flood SOP at severity 3
    text = pg.inner_text("#tab-incidents")
    assert (
        "UBND" in text
        and "Sở Xây dựng" in text
        and "Trung tâm cấp cứu 115" in text
        or "Trạm cấp cứu 115" in text
    )
    assert "Đã xác nhận" in text and "Dòng thời gian" in text
    assert int(pg.inner_text("#inc-pop").replace(".", "")) > 0
    # the incident is on the map with its radius (deck layers)
    ids = pg.evaluate("window.__iocmap.app.overlay._deck.layerManager.getLayers().map(l => l.id)")
    assert "incidents-point" in ids and "incidents-radius" in ids
    # English
    pg.evaluate("window.__iocmap.setLang('en')")
    pg.wait_for_timeout(400)
    text_en = pg.inner_text("#tab-incidents")
    assert "Confirmed" in text_en and "Timeline" in text_en and "inc." not in text_en
    pg.screenshot(path=str(artifacts / "incident-panel-en-1600.png"))
    pg.evaluate("window.__iocmap.setLang('vi')")


def test_the_panel_counts_people_under_a_flood_extent(
    opened: dict[str, Any], seeded: Engine, people: dict[str, Any], artifacts: Path
) -> None:
    import shapely

    from layers.features.registry import delete_layer
    from layers.rasters.extent import write_extent

    pg = opened["page"]
    assert pg.locator("#inc-flood").count() == 0  # no flood analysis yet: nothing claimed
    x, y = people["lng"], people["lat"]
    with seeded.begin() as conn:
        write_extent(
            conn,
            "flood_extent",
            shapely.box(x - 0.05, y - 0.05, x + 0.05, y + 0.05),
            {"source": "test_dem", "level_m": 4.0},
            True,
        )
    try:
        pg.click("#inc-back")
        pg.click(".inc-item:has-text('Ngập sâu khu dân cư khối 5')")
        pg.wait_for_selector("#inc-flood")
        flooded = int(pg.inner_text("#inc-flood-pop").replace(".", ""))
        assert flooded == int(pg.inner_text("#inc-pop").replace(".", "")) > 0
        assert "Trong vùng ngập" in pg.inner_text("#inc-flood")
        pg.locator("#inc-flood").scroll_into_view_if_needed()
        pg.screenshot(path=str(artifacts / "incident-flood-vi-1600.png"))
    finally:
        with seeded.begin() as conn:
            delete_layer(conn, "flood_extent")


def test_agency_officer_works_a_task_on_a_phone(
    opened: dict[str, Any], browser: Any, live_server: str, artifacts: Path
) -> None:
    context, pg, errors = _page(browser, live_server, 390, 844, "vi-VN")
    try:
        _sign_in(pg, live_server, "t_inc_agency", "vi")
        # on a phone the right panel is a sheet behind its button
        if pg.locator("#sheet-btn-right").is_visible():
            pg.click("#sheet-btn-right")
        pg.click("[data-tab=incidents]")
        pg.wait_for_selector(".inc-task")
        text = pg.inner_text("#tab-incidents")
        assert "Ngập sâu khu dân cư khối 5" in text and "Sở Xây dựng" not in text
        task = pg.locator(".inc-task[data-status=open]").first
        tid = task.get_attribute("data-task")
        task.locator("[data-act=ack]").click()
        pg.wait_for_selector(f".inc-task[data-task='{tid}'][data-status=acknowledged]")
        pg.screenshot(path=str(artifacts / "incident-tasks-vi-390.png"))
        # the operator's panel follows live (SSE): the timeline shows the acknowledgement
        op = opened["page"]
        wait_for(
            op,
            "document.getElementById('tab-incidents').innerText.includes('Tiếp nhận nhiệm vụ')",
            20,
        )
        op.screenshot(path=str(artifacts / "incident-live-vi-1600.png"))
    finally:
        context.close()
    assert errors == [], errors


def test_operator_opens_an_incident_from_an_alert_in_the_feed(
    browser: Any, live_server: str, seeded: Engine, people: dict[str, Any], artifacts: Path
) -> None:
    import shapely

    from layers.analytics import alerts as adb

    with seeded.begin() as conn:
        rule_id = adb.save_rule(
            conn, "flood_water_level", "Ngập", "critical", False, {"slug": "flood_water_level"}
        )
        new, _ = adb.write_alerts(
            conn,
            [
                adb.AlertWrite(
                    rule_id=rule_id,
                    dedup_key="web-flood-1",
                    severity="critical",
                    title="Cảm biến ngập: 0,7 m tại cầu Bến Thủy",
                    area_kind="point",
                    area_ref="web-flood-1",
                    geom_wkb=bytes(shapely.to_wkb(shapely.Point(people["lng"], people["lat"]))),
                )
            ],
        )
    context, pg, errors = _page(browser, live_server, 1600, 900, "vi-VN")
    try:
        _sign_in(pg, live_server, "t_inc_operator", "vi")
        pg.click("[data-tab=feed]")
        pg.click(f"[data-open-incident='alert-{new[0]}']")
        pg.wait_for_selector(".inc-head")
        assert "Cảm biến ngập: 0,7 m" in pg.inner_text(".inc-head")
        text = pg.inner_text("#tab-incidents")
        assert "Ngập lụt" in text and f"Cảnh báo {new[0]}" in text
        pg.screenshot(path=str(artifacts / "incident-from-alert-vi-1600.png"))
    finally:
        context.close()
    assert errors == [], errors


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_operator_opens_an_incident_from_a_citizen_report(
    browser: Any, live_server: str, people: dict[str, Any], artifacts: Path, lang: str
) -> None:
    import httpx

    words = {"vi": "Cây đổ chắn ngang đường sau mưa lớn", "en": "Fallen tree blocks the road"}
    r = httpx.post(
        f"{live_server}/api/reports",
        data={
            # one report per language, apart (two alike nearby are merged as duplicates)
            "category": {"vi": "urban_order", "en": "environment"}[lang],
            "description": f"{words[lang]} ({lang})",
            "lon": str(people["lng"] + {"vi": 0.001, "en": -0.004}[lang]),
            "lat": str(people["lat"] + {"vi": 0.001, "en": -0.004}[lang]),
        },
        timeout=30,
    )
    assert r.status_code == 201, r.text
    code = r.json()["code"]
    context, pg, errors = _page(browser, live_server, 1600, 900, f"{lang}-VN")
    try:
        _sign_in(pg, live_server, "t_inc_operator", lang)
        pg.click("#nav-reports")
        pg.wait_for_selector(f"#rep-queue tr[data-code='{code}']", timeout=30_000)
        pg.click(f"#rep-queue tr[data-code='{code}']")
        pg.wait_for_selector(f"#rep-detail[data-code='{code}']")
        button = pg.locator("#rep-open-incident")
        assert button.inner_text().strip() == {"vi": "Mở sự cố", "en": "Open incident"}[lang]
        pg.screenshot(path=str(artifacts / f"incident-report-button-{lang}-1600.png"))
        button.click()
        pg.wait_for_selector(".inc-head", timeout=30_000)
        assert wait_for(pg, "!document.getElementById('mapview').hidden")
        assert words[lang] in pg.inner_text(".inc-head")
        wait_for(pg, f"document.getElementById('tab-incidents').innerText.includes('{code}')")
        text = pg.inner_text("#tab-incidents")
        assert "inc." not in text
        pg.wait_for_timeout(600)
        pg.screenshot(path=str(artifacts / f"incident-from-report-{lang}-1600.png"))
    finally:
        context.close()
    assert errors == [], errors


def _nearest_report(seeded: Engine, lng: float, lat: float) -> tuple[str, float, float]:
    """The code and place of the field_reports feature nearest a point, as the map draws it."""
    from layers.models.core import feature, layer

    here = func.ST_SetSRID(func.ST_MakePoint(lng, lat), 4326)
    with seeded.connect() as conn:
        code, x, y = conn.execute(
            select(feature.c.source_key, func.ST_X(feature.c.geom), func.ST_Y(feature.c.geom))
            .join(layer, layer.c.id == feature.c.layer_id)
            .where(layer.c.slug == "field_reports")
            .order_by(feature.c.geom.op("<->")(here))
            .limit(1)
        ).one()
    return str(code), float(x), float(y)


def _click_on_map(pg: Any, slug: str, lnglat: tuple[float, float], wanted: str) -> None:
    """Only `slug` on the map; click its feature at `lnglat` and step the chooser (several
    features under the pointer) until the details card shows `wanted`."""
    pg.evaluate(
        """async s => { const a = window.__iocmap.app;
             for (const l of a.state.catalog) a.state.visible[l.slug] = l.slug === s;
             a.state.selected = null; a.update();
             await a.loadLayer(a.state.bySlug[s]); a.redraw(); }""",
        slug,
    )
    pg.evaluate("c => window.__iocmap.jumpTo(c, 18)", list(lnglat))
    assert pg.evaluate("window.__iocmap.settled()") is True
    x, y = pg.evaluate("ll => window.__iocmap.project(ll)", list(lnglat))
    pg.mouse.move(x, y)
    pg.wait_for_timeout(150)
    pg.mouse.click(x, y)
    pg.wait_for_selector("#details-title", timeout=30_000)
    for _ in range(12):
        if pg.locator(wanted).count():
            return
        if not pg.locator("#pick-next").count():
            break
        pg.click("#pick-next")
        pg.wait_for_timeout(200)
    pg.wait_for_selector(wanted, timeout=15_000)


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_operator_opens_an_incident_from_a_report_on_the_map(
    browser: Any,
    live_server: str,
    seeded: Engine,
    people: dict[str, Any],
    artifacts: Path,
    lang: str,
) -> None:
    # one report per language, apart: each opens its own incident
    shift = {"vi": 0.01, "en": -0.01}[lang]
    code, x, y = _nearest_report(seeded, people["lng"] + shift, people["lat"] + shift)
    context, pg, errors = _page(browser, live_server, 1600, 900, f"{lang}-VN")
    try:
        _sign_in(pg, live_server, "t_inc_operator", lang)
        button = f"#details-open-incident[data-open-incident='report-{code}']"
        _click_on_map(pg, "field_reports", (x, y), button)
        assert pg.inner_text(button).strip() == {"vi": "Mở sự cố", "en": "Open incident"}[lang]
        # a report is opened from (and linked to) itself, not as a bare point
        assert pg.locator("#details-open-here").count() == 0
        pg.screenshot(path=str(artifacts / f"incident-map-report-card-{lang}-1600.png"))
        # the same card on a phone: the details are a bottom sheet
        pg.set_viewport_size({"width": 390, "height": 844})
        sheet = pg.locator("#sheet-btn-right")
        sheet.wait_for(timeout=10_000)
        if not pg.evaluate("document.body.classList.contains('sheet-right')"):
            sheet.click()
        pg.locator(button).scroll_into_view_if_needed()
        assert pg.locator(button).is_visible()
        pg.screenshot(path=str(artifacts / f"incident-map-report-card-{lang}-390.png"))
        pg.set_viewport_size({"width": 1600, "height": 900})
        pg.wait_for_timeout(300)
        pg.click(button)
        pg.wait_for_selector(".inc-head", timeout=30_000)
        link = {"vi": "Phản ánh", "en": "Citizen report"}[lang]
        wait_for(
            pg,
            f"document.querySelector('.inc-links').innerText.includes('{link} {code}')",
            20,
        )
        text = pg.inner_text("#tab-incidents")
        assert pg.get_attribute(".inc-facts dd[data-status]", "data-status") == "new"
        assert "inc." not in text
        pg.wait_for_timeout(500)
        pg.screenshot(path=str(artifacts / f"incident-from-map-report-{lang}-1600.png"))
    finally:
        context.close()
    assert errors == [], errors


def test_a_planner_sees_the_report_card_without_the_open_incident_button(
    browser: Any, live_server: str, seeded: Engine, people: dict[str, Any], artifacts: Path
) -> None:
    code, x, y = _nearest_report(seeded, people["lng"], people["lat"] + 0.02)
    context, pg, errors = _page(browser, live_server, 1600, 900, "vi-VN")
    try:
        _sign_in(pg, live_server, "t_inc_planner", "vi")
        # planners read incidents but may not open one (POST /api/incidents is operators')
        _click_on_map(pg, "field_reports", (x, y), f"#tab-details:has-text('{code}')")
        assert pg.locator("#details-open-incident").count() == 0
        assert pg.locator("#details-open-here").count() == 0
        pg.screenshot(path=str(artifacts / "incident-map-report-card-planner-vi-1600.png"))
    finally:
        context.close()
    assert errors == [], errors


def test_a_camera_event_and_any_feature_open_an_incident_from_the_map(
    browser: Any, live_server: str, seeded: Engine, artifacts: Path
) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import text

    from layers.vision import events

    with seeded.connect() as conn:
        cam = conn.execute(
            text(
                "SELECT f.properties->>'camera_id', ST_X(f.geom), ST_Y(f.geom) FROM feature f"
                " JOIN layer l ON l.id = f.layer_id WHERE l.slug = 'cameras'"
                " ORDER BY f.properties->>'camera_id' LIMIT 1"
            )
        ).one()
    cam_id, x, y = str(cam[0]), float(cam[1]), float(cam[2])
    with seeded.begin() as conn:
        events.ensure_partitions(conn, [datetime.now(UTC)])
        (eid,) = events.insert_events(
            conn,
            [
                events.EventIn(
                    camera_id=cam_id,
                    event_type="crowd",
                    observed_at=datetime.now(UTC),
                    class_name="person",
                    confidence=0.91,
                    lon=x,
                    lat=y,
                )
            ],
        )
    context, pg, errors = _page(browser, live_server, 1600, 900, "vi-VN")
    try:
        _sign_in(pg, live_server, "t_inc_operator", "vi")
        _click_on_map(pg, "cameras", (x, y), f"[data-open-incident='event-{eid}']")
        # any feature: "open an incident here" puts the new-incident form at its place
        assert pg.locator("#details-open-here").is_visible()
        pg.screenshot(path=str(artifacts / "incident-map-camera-event-vi-1600.png"))
        pg.click(f"[data-open-incident='event-{eid}']")
        pg.wait_for_selector(".inc-head", timeout=30_000)
        wait_for(
            pg,
            f"document.querySelector('.inc-links').innerText.includes('Sự kiện camera {eid}')",
            20,
        )
        assert "An ninh, tụ tập đông người" in pg.inner_text(
            "#tab-incidents"
        )  # the type from the event
        pg.click("[data-tab=details]")
        pg.click("#details-open-here")
        pg.wait_for_selector("#inc-new")
        assert f"{y:.5f}, {x:.5f}" in pg.inner_text("#inc-new")
        pg.screenshot(path=str(artifacts / "incident-map-open-here-vi-1600.png"))
    finally:
        context.close()
        with seeded.begin() as conn:
            conn.execute(text("DELETE FROM detection_event WHERE id = :i"), {"i": eid})
    assert errors == [], errors


def test_admin_edits_an_sop_in_the_page_as_a_new_version(
    browser: Any, live_server: str, people: dict[str, Any], artifacts: Path
) -> None:
    context, pg, errors = _page(browser, live_server, 1600, 900, "vi-VN")
    try:
        _sign_in(pg, live_server, "t_inc_admin", "vi")
        pg.click("[data-tab=incidents]")
        pg.click("[data-incview=sops]")
        pg.wait_for_selector("#sop-pick option[value=crowd_response]", state="attached")
        before = pg.inner_text("#sop-pick option[value=crowd_response]")
        version = int(before.rsplit("(v", 1)[1].rstrip(")"))
        pg.select_option("#sop-pick", "crowd_response")
        pg.wait_for_selector(".sop-step[data-step='1']")
        steps = pg.locator(".sop-step").count()
        pg.fill(".sop-step[data-step='1'] .sop-sla", "12")
        pg.fill("#sop-note", "Rút ngắn thời hạn bước 1")
        pg.click("#sop-save")
        after = f"(v{version + 1})"
        wait_for(
            pg,
            "document.querySelector('#sop-pick option[value=crowd_response]')"
            f".textContent.endsWith('{after}')",
            20,
        )
        text = pg.inner_text("#tab-incidents")
        assert f"v{version + 1}" in text and "t_inc_admin" in text
        assert "Rút ngắn thời hạn bước 1" in text
        assert pg.locator(".sop-step").count() == steps
        assert pg.input_value(".sop-step[data-step='1'] .sop-sla") == "12"
        pg.screenshot(path=str(artifacts / "incident-sop-editor-vi-1600.png"))
    finally:
        context.close()
    assert errors == [], errors
