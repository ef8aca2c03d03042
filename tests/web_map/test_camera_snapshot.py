"""The camera snapshot panel: the picture with boxes and zones, its time, and an old-picture
notice while the camera is stale (issue 16). Vietnamese and English, desktop and phone width."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import pytest
from sqlalchemy import Engine, text

from layers.settings import Settings
from layers.vision import cameras
from tests.web_map.conftest import signed_in_context

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
VIDEO = ROOT / "vision" / "data" / "video" / "street-640x352.mp4"
I18N = json.loads((ROOT / "web_map" / "i18n.json").read_text())


@pytest.fixture
def stale_ca01(seeded: Engine, settings: Settings) -> Any:
    """CA-01 with the demo zones and a real picture written 2 minutes ago by its worker."""
    from vision.demo import seed_demo_camera

    cap = cv2.VideoCapture(str(VIDEO))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 432)
    ok, frame = cap.read()
    cap.release()
    assert ok
    path = settings.media_root / "cameras" / "CA-01" / "latest.jpg"
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), frame)
    overlay = {
        "width": 640,
        "height": 352,
        "boxes": [{"track_id": 7, "label": "car", "score": 0.97, "box": [495, 262, 622, 352]}],
    }
    with seeded.begin() as conn:
        seed_demo_camera(conn)
        cameras.set_state(
            conn,
            "CA-01",
            status="online",
            last_frame_at=datetime.now(UTC) - timedelta(seconds=120),
            frame_path=str(path),
            overlay=overlay,
        )
    yield path
    with seeded.begin() as conn:
        cameras.set_state(conn, "CA-01", status="unknown")
        conn.execute(text("DELETE FROM camera_state WHERE camera_id = 'CA-01'"))
        cameras.delete_zones(conn, "CA-01")


def _open_ca01(pg: Any) -> None:
    # Only the cameras layer on, so the click lands on the camera and nothing above it.
    pg.evaluate(
        """(() => { const a = window.__iocmap.app;
             for (const l of a.state.catalog) a.state.visible[l.slug] = l.slug === 'cameras';
             a.state.selected = null; a.update(); })()"""
    )
    cam = pg.evaluate(
        """(() => { const f = window.__iocmap.app.state.data.cameras
             .find(c => c.properties.camera_id === 'CA-01');
           return f.geometry.coordinates; })()"""
    )
    pg.evaluate("c => window.__iocmap.jumpTo(c, 18)", cam)
    assert pg.evaluate("window.__iocmap.settled()") is True
    x, y = pg.evaluate("ll => window.__iocmap.project(ll)", cam)
    pg.mouse.move(x, y)
    pg.wait_for_timeout(150)
    pg.mouse.click(x, y)
    pg.wait_for_selector("#camera-card", timeout=30_000)


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_snapshot_panel_shows_time_boxes_zones_and_old_notice(
    browser: Any,
    live_server: str,
    seeded: Engine,
    settings: Settings,
    stale_ca01: Path,
    artifacts: Path,
    lang: str,
) -> None:
    context = signed_in_context(browser, live_server, seeded, settings)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    pg.set_viewport_size({"width": 1600, "height": 900})
    pg.goto(f"{live_server}/?lang={lang}")
    deadline = time.monotonic() + 60
    while pg.evaluate("document.body.dataset.ready") != "1":
        assert time.monotonic() < deadline
        pg.wait_for_timeout(100)
    _open_ca01(pg)
    img = pg.locator("#camera-snapshot")
    pg.wait_for_function(
        "() => { const i = document.getElementById('camera-snapshot'); "
        "return i && i.complete && i.naturalWidth === 640; }",
        timeout=15_000,
    )
    assert "boxes=1" in (img.get_attribute("src") or "") and "zones=1" in (
        img.get_attribute("src") or ""
    )
    t = I18N[lang]
    assert pg.locator("#camera-picture-at").is_visible()
    old = pg.locator("#camera-picture-old")
    assert old.is_visible() and old.inner_text() == t["camera.picture_old"]
    assert pg.locator("#camera-status").inner_text() == t["value.stale"]
    pg.screenshot(path=str(artifacts / f"camera-snapshot-stale-{lang}-1600.png"))
    # On a phone-sized window the panel keeps the notice in view with the picture.
    # (there the details are a bottom sheet, opened by its button; the panel is drawn anew)
    pg.set_viewport_size({"width": 390, "height": 844})
    sheet = pg.locator("#sheet-btn-right")
    sheet.wait_for(timeout=10_000)
    if not pg.evaluate("document.body.classList.contains('sheet-right')"):
        sheet.click()
    old = pg.locator("#camera-picture-old")
    old.wait_for(timeout=10_000)
    old.scroll_into_view_if_needed()
    assert old.is_visible()
    pg.screenshot(path=str(artifacts / f"camera-snapshot-stale-{lang}-390.png"))
    pg.set_viewport_size({"width": 1600, "height": 900})
    # Frames come again: within a refresh the notice goes and the camera is online.
    with seeded.begin() as conn:
        cameras.set_state(conn, "CA-01", last_frame_at=datetime.now(UTC))
    pg.wait_for_selector("#camera-picture-old", state="detached", timeout=10_000)
    assert pg.locator("#camera-status").inner_text() == t["value.online"]
    pg.screenshot(path=str(artifacts / f"camera-snapshot-live-{lang}-1600.png"))
    context.close()
    assert errors == [], errors


def _hover_ca01(pg: Any) -> str:
    """Show only the cameras, centre CA-01 and hover it; the tooltip's text."""
    pg.evaluate(
        """(() => { const a = window.__iocmap.app;
             for (const l of a.state.catalog) a.state.visible[l.slug] = l.slug === 'cameras';
             a.state.selected = null; a.update(); })()"""
    )
    cam = pg.evaluate(
        """(() => window.__iocmap.app.state.data.cameras
             .find(c => c.properties.camera_id === 'CA-01').geometry.coordinates)()"""
    )
    pg.evaluate("c => window.__iocmap.jumpTo(c, 18)", cam)
    assert pg.evaluate("window.__iocmap.settled()") is True
    x, y = pg.evaluate("ll => window.__iocmap.project(ll)", cam)
    pg.mouse.move(x - 40, y - 40)
    pg.wait_for_timeout(100)
    pg.mouse.move(x, y)
    tip = pg.locator(".tt", has_text="CA-01")
    tip.wait_for(timeout=10_000)
    return str(tip.inner_text())


def _cameras_online(pg: Any) -> tuple[int, int]:
    text = pg.inner_text("#kpis [data-kpi=cameras_online] .kpi-v")
    online, total = (int("".join(ch for ch in part if ch.isdigit())) for part in text.split("/"))
    return online, total


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_camera_tooltip_and_header_count_say_stale_until_frames_come(
    browser: Any,
    live_server: str,
    seeded: Engine,
    stale_ca01: Path,
    artifacts: Path,
    lang: str,
) -> None:
    """The worker still says "online" but its last frame is 2 minutes old: the camera's
    tooltip says stale with the time of that frame and the header does not count it; when
    frames come again both say online within a refresh."""
    from tests.web_map.test_roles import Person, _user

    op = Person(browser, live_server, {"width": 1600, "height": 900})
    op.sign_in(_user(seeded, "j_operator", "operator"), lang)
    pg = op.page
    pg.goto(f"{live_server}/?lang={lang}")
    pg.wait_for_function("() => document.body.dataset.ready === '1'", timeout=90_000)
    pg.wait_for_function(
        "() => window.__iocmap.app.state.cameraLive?.get('CA-01')?.status === 'stale'",
        timeout=30_000,
    )
    # The layer itself carries the worker's word, which the map no longer shows.
    raw = pg.evaluate(
        """(() => window.__iocmap.app.state.data.cameras
             .find(c => c.properties.camera_id === 'CA-01').properties.status)()"""
    )
    assert raw == "online"
    t = I18N[lang]
    tip = _hover_ca01(pg)
    assert f"{t['prop.status']}: {t['value.stale']}" in tip, tip
    assert t["value.online"] not in tip
    frame_line = pg.inner_text(".tt .tt-camera-frame")
    assert frame_line.startswith(f"{t['camera.last_frame']}: "), frame_line
    stale_online, total = _cameras_online(pg)
    assert total >= 51
    pg.screenshot(path=str(artifacts / f"camera-tooltip-stale-{lang}-1600.png"))
    # Frames come again: the next refresh says online, and the header counts it.
    with seeded.begin() as conn:
        cameras.set_state(conn, "CA-01", last_frame_at=datetime.now(UTC))
    pg.wait_for_function(
        "() => window.__iocmap.app.state.cameraLive?.get('CA-01')?.status === 'online'",
        timeout=30_000,
    )
    tip = _hover_ca01(pg)
    assert f"{t['prop.status']}: {t['value.online']}" in tip, tip
    assert pg.locator(".tt .tt-camera-frame").count() == 0
    assert _cameras_online(pg) == (stale_online + 1, total)
    pg.screenshot(path=str(artifacts / f"camera-tooltip-online-{lang}-1600.png"))
    op.close()
