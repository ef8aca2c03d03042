"""The /api/reports HTTP surface: submission with photos, validation, rate limit, roles, scope."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import Engine, func, select

from geo_api.main import create_app
from geo_api.security import get_now
from layers.models.core import admin_unit
from layers.models.reports import field_report, field_report_photo, rate_bucket
from layers.settings import Settings
from layers.testing import remove_workflow_reports

Headers = Callable[..., dict[str, str]]


@pytest.fixture(scope="module", autouse=True)
def _remove_workflow_reports(seeded: Engine) -> Iterator[None]:
    """Leave the shared test database as the demo seeded it (other tests read field_reports)."""
    yield
    remove_workflow_reports(seeded)


class Clock:
    """An injectable clock the tests move by hand."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock(datetime(2040, 1, 1, 8, tzinfo=UTC))


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="module")
def client_options(media: Path, clock: Clock) -> dict[str, Any]:
    return {
        "settings": {
            "media_dir": media,
            "report_rate_burst": 10_000,
            "report_photo_max_bytes": 200_000,
        },
        "overrides": {get_now: clock},
        "base_url": "https://testserver",
    }


@pytest.fixture(scope="module")
def communes(seeded: Engine) -> list[tuple[str, float, float]]:
    pt = func.ST_PointOnSurface(admin_unit.c.geom)
    with seeded.connect() as conn:
        rows = conn.execute(
            select(admin_unit.c.code, func.ST_X(pt), func.ST_Y(pt))
            .where(admin_unit.c.level == "commune")
            .order_by(admin_unit.c.population.desc(), admin_unit.c.code)
            .limit(2)
        ).all()
    return [(str(c), float(x), float(y)) for c, x, y in rows]


def _dms(value: float) -> tuple[float, float, float]:
    d = int(value)
    m = int((value - d) * 60)
    return float(d), float(m), round((value - d - m / 60) * 3600, 4)


def jpeg(lon: float | None = None, lat: float | None = None, size: int = 64) -> bytes:
    img = Image.new("RGB", (size, size), (200, 60, 40))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x0110] = "SecretPhone 9"
    if lon is not None and lat is not None:
        exif[0x8825] = {1: "N", 2: _dms(lat), 3: "E", 4: _dms(lon)}
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif.tobytes())
    return buf.getvalue()


def png_noise(side: int) -> bytes:
    rng = np.random.default_rng(7)
    img = Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype=np.uint8))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _form(category: str, lon: float | None, lat: float | None, **extra: str) -> dict[str, Any]:
    data: dict[str, Any] = {"category": category, "description": "Rác thải tồn đọng", **extra}
    if lon is not None and lat is not None:
        data["lon"] = str(lon)
        data["lat"] = str(lat)
    return data


def _count(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        reports = conn.execute(select(func.count()).select_from(field_report)).scalar_one()
        photos = conn.execute(select(func.count()).select_from(field_report_photo)).scalar_one()
    return int(reports), int(photos)


def _files(media: Path) -> set[Path]:
    return {p for p in media.rglob("*") if p.is_file()}


def test_submit_with_exif_location_strips_exif(
    client: TestClient,
    clock: Clock,
    communes: list[tuple[str, float, float]],
    media: Path,
    auth_headers: Headers,
) -> None:
    clock.now += timedelta(days=5)
    code, lon, lat = communes[0]
    res = client.post(
        "/api/reports",
        data=_form("environment", None, None, contact_phone="0912 345 678"),
        files=[("photos", ("a.jpg", jpeg(lon, lat), "image/jpeg"))],
    )
    assert res.status_code == 201, res.text
    body = res.json()
    assert body["location_source"] == "exif" and body["commune_code"] == code
    assert abs(body["lon"] - lon) < 1e-5 and abs(body["lat"] - lat) < 1e-5
    assert "contact" not in body
    detail = client.get(f"/api/reports/{body['code']}", headers=auth_headers("operator")).json()
    assert detail["contact"] == {"phone": "0912 345 678"}
    (photo,) = detail["photos"]
    got = client.get(photo["href"], headers=auth_headers("operator"))
    assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg"
    stored = Image.open(io.BytesIO(got.content))
    assert stored.format == "JPEG" and dict(stored.getexif()) == {}
    assert b"SecretPhone" not in got.content
    # Anonymous callers cannot fetch the photo or the detail.
    assert client.get(photo["href"]).status_code == 401


@pytest.mark.parametrize(
    ("name", "payload", "ctype", "status"),
    [
        ("x.gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "image/gif", 400),
        ("x.jpg", b"<html>not an image</html>", "image/jpeg", 400),
        ("x.jpg", jpeg(size=256)[:200], "image/jpeg", 400),
        ("big.png", png_noise(400), "image/png", 413),
        ("x.bmp", b"BM" + b"\x00" * 100, "image/png", 400),
    ],
)
def test_bad_uploads_are_refused_and_nothing_is_stored(
    client: TestClient,
    seeded: Engine,
    media: Path,
    communes: list[tuple[str, float, float]],
    name: str,
    payload: bytes,
    ctype: str,
    status: int,
) -> None:
    _, lon, lat = communes[1]
    before, files_before = _count(seeded), _files(media)
    res = client.post(
        "/api/reports",
        data=_form("other", lon, lat),
        files=[
            ("photos", ("ok.jpg", jpeg(), "image/jpeg")),
            ("photos", (name, payload, ctype)),
        ],
    )
    assert res.status_code == status, res.text
    assert _count(seeded) == before and _files(media) == files_before


def test_more_than_five_photos_is_refused(
    client: TestClient, seeded: Engine, communes: list[tuple[str, float, float]]
) -> None:
    _, lon, lat = communes[1]
    before = _count(seeded)
    files = [("photos", (f"{i}.jpg", jpeg(), "image/jpeg")) for i in range(6)]
    res = client.post("/api/reports", data=_form("other", lon, lat), files=files)
    assert res.status_code == 400 and "at most 5" in res.json()["detail"]
    assert _count(seeded) == before


def test_missing_location_and_bad_fields_are_400(client: TestClient) -> None:
    assert client.post("/api/reports", data=_form("traffic", None, None)).status_code == 400
    res = client.post("/api/reports", data=_form("weather", 105.6, 18.7))
    assert res.status_code == 400 and [f.split(".")[-1] for f in res.json()["fields"]] == [
        "category"
    ]
    assert client.post("/api/reports", data=_form("traffic", 100.0, 10.0)).status_code == 400


def test_workflow_over_http_with_roles_and_rating(
    client: TestClient,
    clock: Clock,
    communes: list[tuple[str, float, float]],
    auth_headers: Headers,
) -> None:
    clock.now += timedelta(days=5)
    code_a, lon, lat = communes[0]
    code_b = communes[1][0]
    citizen = auth_headers("citizen")
    res = client.post("/api/reports", data=_form("traffic", lon, lat), headers=citizen)
    assert res.status_code == 201
    code = res.json()["code"]
    assert code in {r["code"] for r in client.get("/api/reports/mine", headers=citizen).json()}
    other_cs = auth_headers("commune_staff", [code_b])
    own_cs = auth_headers("commune_staff", [code_a])
    # Wrong commune: not found, by every route.
    assert client.post(f"/api/reports/{code}/assign", headers=other_cs).status_code == 404
    assert client.get(f"/api/reports/{code}", headers=other_cs).status_code == 404
    listed = client.get("/api/reports?limit=1000", headers=other_cs).json()
    assert code not in {r["code"] for r in listed}
    assert all(r["commune_code"] == code_b for r in listed)
    stats = client.get("/api/reports/stats?group_by=commune", headers=other_cs).json()
    assert {s["key"] for s in stats} <= {code_b}
    # Roles: a citizen or a planner may not assign.
    assert client.post(f"/api/reports/{code}/assign", headers=citizen).status_code == 403
    assert (
        client.post(f"/api/reports/{code}/assign", headers=auth_headers("planner")).status_code
        == 403
    )
    assert client.post(f"/api/reports/{code}/assign").status_code == 401
    # Illegal transition: 409.
    assert client.post(f"/api/reports/{code}/start", headers=own_cs).status_code == 409
    assert client.post(f"/api/reports/{code}/assign", headers=own_cs).status_code == 200
    assert (
        client.post(f"/api/reports/{code}/start", headers=auth_headers("operator")).status_code
        == 200
    )
    clock.now += timedelta(hours=3)
    done = client.post(
        f"/api/reports/{code}/resolve",
        headers=own_cs,
        data={"note": "Đã sửa đèn tín hiệu"},
        files={"photo": ("after.png", png_noise(32), "image/png")},
    )
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["status"] == "resolved" and body["on_time"] is True
    assert [p["kind"] for p in body["photos"]] == ["resolution"]
    assert (
        client.post(f"/api/reports/{code}/resolve", headers=own_cs, data={"note": "x"}).status_code
        == 409
    )
    rated = client.post(f"/api/reports/{code}/rating", headers=citizen, json={"rating": "hai_long"})
    assert rated.status_code == 200 and rated.json()["rating"] == "hai_long"
    mine = client.get(f"/api/reports/{code}", headers=citizen).json()
    assert mine["status"] == "resolved" and "contact" not in mine
    assert all(h["actor"] is None for h in mine["history"])
    assert client.get(f"/api/reports/{code}", headers=auth_headers("planner")).status_code == 200


def test_citizens_see_only_their_own_reports(
    client: TestClient,
    clock: Clock,
    communes: list[tuple[str, float, float]],
    auth_headers: Headers,
    seeded: Engine,
    settings: Settings,
) -> None:
    from geo_api.security import issue_token
    from layers.auth import users

    clock.now += timedelta(days=5)
    with seeded.begin() as conn:
        other = users.create_user(conn, "t_other_citizen", "a long password", "citizen")
    other_h = {"Authorization": f"Bearer {issue_token(settings, other)}"}
    _, lon, lat = communes[0]
    code = client.post(
        "/api/reports", data=_form("infrastructure", lon, lat), headers=auth_headers("citizen")
    ).json()["code"]
    assert client.get(f"/api/reports/{code}", headers=other_h).status_code == 404
    assert code not in {r["code"] for r in client.get("/api/reports/mine", headers=other_h).json()}
    assert client.get("/api/reports", headers=other_h).status_code == 403


def test_public_map_and_duplicate_over_http(
    client: TestClient, clock: Clock, communes: list[tuple[str, float, float]]
) -> None:
    clock.now += timedelta(days=5)
    _, lon, lat = communes[1]
    first = client.post("/api/reports", data=_form("urban_order", lon, lat))
    clock.now += timedelta(hours=2)
    again = client.post("/api/reports", data=_form("urban_order", lon + 0.0001, lat))
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["duplicate_of"] == first.json()["code"]
    doc = client.get("/api/reports/map?limit=10000").json()
    assert doc["type"] == "FeatureCollection" and len(doc["features"]) > 600
    for f in doc["features"][:100]:
        assert set(f["properties"]) == {"category", "status", "commune_code", "received_on"}


def test_overdue_check_raises_alerts(
    client: TestClient,
    clock: Clock,
    communes: list[tuple[str, float, float]],
    auth_headers: Headers,
) -> None:
    clock.now += timedelta(days=30)
    _, lon, lat = communes[0]
    code = client.post("/api/reports", data=_form("security", lon, lat)).json()["code"]
    op = auth_headers("operator")
    assert code not in client.post("/api/reports/overdue/check", headers=op).json()["alerted"]
    clock.now += timedelta(days=2, seconds=1)
    assert code in client.post("/api/reports/overdue/check", headers=op).json()["alerted"]
    late = client.get("/api/reports?overdue=true&limit=1000", headers=op).json()
    assert code in {r["code"] for r in late}
    assert (
        client.post("/api/reports/overdue/check", headers=auth_headers("citizen")).status_code
        == 403
    )


def test_public_submission_is_rate_limited(
    seeded: Engine, settings: Settings, communes: list[tuple[str, float, float]]
) -> None:
    limited = settings.model_copy(update={"report_rate_burst": 2, "report_rate_per_hour": 1.0})
    app = create_app(limited)
    clock = Clock(datetime(2041, 6, 1, tzinfo=UTC))
    app.dependency_overrides[get_now] = clock
    with seeded.begin() as conn:
        conn.execute(rate_bucket.delete())
    try:
        with TestClient(app) as c:
            bad = _form("weather", 105.6, 18.7)
            assert [c.post("/api/reports", data=bad).status_code for _ in range(3)] == [
                400,
                400,
                429,
            ]
            clock.now += timedelta(hours=1, seconds=1)
            assert c.post("/api/reports", data=bad).status_code == 400
            assert c.post("/api/reports", data=bad).status_code == 429
    finally:
        with seeded.begin() as conn:
            conn.execute(rate_bucket.delete())


@pytest.mark.clock
def test_the_api_raises_overdue_alerts_by_itself(
    seeded: Engine, settings: Settings, communes: list[tuple[str, float, float]], media: Path
) -> None:
    import time

    from layers.models.analytics import alert

    fast = settings.model_copy(
        update={"report_overdue_interval_s": 0.05, "media_dir": media, "report_rate_burst": 100}
    )
    app = create_app(fast)
    # Submitted four days ago by the injected clock: a traffic report (3-day SLA) is overdue now.
    app.dependency_overrides[get_now] = Clock(datetime.now(UTC) - timedelta(days=4))
    _, lon, lat = communes[1]
    with TestClient(app) as c:
        code = c.post("/api/reports", data=_form("traffic", lon, lat)).json()["code"]
        deadline = time.monotonic() + 30
        found = None
        while found is None and time.monotonic() < deadline:
            with seeded.connect() as conn:
                found = conn.execute(select(alert.c.id).where(alert.c.dedup_key == code)).scalar()
            time.sleep(0.05)
    assert found is not None


def test_accept_request_info_and_reopen_with_refusals_in_the_callers_language(
    client: TestClient,
    clock: Clock,
    communes: list[tuple[str, float, float]],
    auth_headers: Headers,
) -> None:
    clock.now += timedelta(days=7)
    code_a, lon, lat = communes[0]
    citizen = auth_headers("citizen")
    own_cs = auth_headers("commune_staff", [code_a])
    op = auth_headers("operator")
    code = client.post("/api/reports", data=_form("environment", lon, lat), headers=citizen).json()[
        "code"
    ]
    got = client.get(f"/api/reports/{code}", headers=own_cs).json()
    assert set(got["allowed_steps"]) == {"accept", "request_info", "assign", "reject"}
    # Asking for information needs the question; the refusal speaks the caller's language.
    vi = client.post(
        f"/api/reports/{code}/request-info",
        headers={**own_cs, "Accept-Language": "vi"},
        json={"note": " "},
    )
    assert vi.status_code == 400 and "ghi chú" in vi.json()["detail"]
    en = client.post(
        f"/api/reports/{code}/request-info",
        headers={**own_cs, "Accept-Language": "en-GB,en;q=0.8"},
        json={"note": ""},
    )
    assert en.status_code == 400 and "note" in en.json()["detail"]
    asked = client.post(
        f"/api/reports/{code}/request-info",
        headers=own_cs,
        json={"note": "Xin gửi thêm ảnh rõ biển số nhà"},
    )
    assert asked.status_code == 200 and asked.json()["status"] == "info_requested"
    # Only the citizen who sent it answers, and then staff may accept it.
    assert client.get(f"/api/reports/{code}", headers=citizen).json()["allowed_steps"] == [
        "provide_info"
    ]
    answered = client.post(
        f"/api/reports/{code}/info",
        headers=citizen,
        data={"note": "Số nhà 12, ngõ 3"},
        files={"photo": ("more.png", png_noise(24), "image/png")},
    )
    assert answered.status_code == 200, answered.text
    assert answered.json()["status"] == "received"
    assert [p["kind"] for p in answered.json()["photos"]] == ["information"]
    accepted = client.post(f"/api/reports/{code}/accept", headers=own_cs)
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
    # accept twice: the workflow refuses, naming the status in words, not codes.
    again = client.post(f"/api/reports/{code}/accept", headers={**own_cs, "Accept-Language": "en"})
    assert again.status_code == 409
    assert "Accepted" in again.json()["detail"] and "accepted" not in again.json()["detail"]
    for step in ("assign", "start"):
        assert client.post(f"/api/reports/{code}/{step}", headers=own_cs).status_code == 200
    done = client.post(f"/api/reports/{code}/resolve", headers=own_cs, data={"note": "Đã dọn"})
    assert done.status_code == 200
    # Commune staff may not reopen (a role refusal, in Vietnamese); the operator may.
    refused = client.post(
        f"/api/reports/{code}/reopen",
        headers={**own_cs, "Accept-Language": "vi"},
        json={"note": "x"},
    )
    assert refused.status_code == 403 and "Mở lại" in refused.json()["detail"]
    assert client.post(f"/api/reports/{code}/reopen", headers=op, json={}).status_code == 400
    clock.now += timedelta(hours=1)
    reopened = client.post(
        f"/api/reports/{code}/reopen", headers=op, json={"note": "Người dân báo rác quay lại"}
    )
    assert reopened.status_code == 200, reopened.text
    body = reopened.json()
    assert body["status"] == "in_progress" and body["resolved_at"] is None
    assert body["rating"] is None and body["due_at"] > done.json()["due_at"]
    actions = [h["action"] for h in body["history"]]
    assert actions == [
        "submit",
        "request_info",
        "provide_info",
        "accept",
        "assign",
        "start",
        "resolve",
        "reopen",
    ]
    assert all(h["actor"] for h in body["history"])
    # The citizen may not take staff steps; the planner may not reach the route at all.
    assert client.post(f"/api/reports/{code}/accept", headers=citizen).status_code == 403
    assert (
        client.post(f"/api/reports/{code}/reopen", headers=auth_headers("planner")).status_code
        == 403
    )
    # The queue sorts by SLA due time and filters by unit.
    queue = client.get("/api/reports?sort=due&limit=1000", headers=op).json()
    dues = [r["due_at"] for r in queue]
    assert dues == sorted(dues)
    unit = body["department"]
    by_unit = client.get("/api/reports", params={"department": unit}, headers=op).json()
    assert by_unit and all(r["department"] == unit for r in by_unit)
