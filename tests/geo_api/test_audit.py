"""The audit trail: writes, logins, snapshot views and exports are recorded; only admins read it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from geo_api import security
from layers.auth import users

Headers = Callable[..., dict[str, str]]


@pytest.fixture(scope="module")
def client_options(seeded: Engine) -> dict[str, Any]:
    with seeded.begin() as conn:
        users.create_user(conn, "audit_leader", "a long password", "leader")
    return {"settings": {"report_rate_burst": 100_000}}


def _entries(client: TestClient, admin: dict[str, str], **params: str) -> list[dict[str, object]]:
    res = client.get("/api/audit", params=params, headers=admin)
    assert res.status_code == 200
    return res.json()  # type: ignore[no-any-return]


def test_only_admins_read_the_audit_log(client: TestClient, auth_headers: Headers) -> None:
    assert client.get("/api/audit").status_code == 401
    for role in ("leader", "operator", "gis_staff", "citizen"):
        assert client.get("/api/audit", headers=auth_headers(role)).status_code == 403
    assert client.get("/api/audit", headers=auth_headers("admin")).status_code == 200


def test_logins_and_failures_are_recorded(client: TestClient, auth_headers: Headers) -> None:
    ua = {"User-Agent": "audit-test/1.0"}
    ok = client.post(
        "/api/auth/token",
        data={"username": "audit_leader", "password": "a long password"},
        headers=ua,
    )
    assert ok.status_code == 200
    bad = client.post(
        "/api/auth/token", data={"username": "audit_leader", "password": "wrong"}, headers=ua
    )
    assert bad.status_code == 401
    admin = auth_headers("admin")
    (login,) = _entries(client, admin, action="login", actor="audit_leader", limit="1")
    assert login["role"] == "leader" and login["ip"] == "testclient"
    assert login["user_agent"] == "audit-test/1.0" and login["at"]
    (failed,) = _entries(client, admin, action="login_failed", actor="audit_leader", limit="1")
    assert failed["status"] == 401


def test_writes_are_recorded_with_who_what_where(
    client: TestClient, auth_headers: Headers, seeded: Engine
) -> None:
    admin = auth_headers("admin")
    res = client.post(
        "/api/reports", data={"category": "weather", "description": "x", "lon": "1", "lat": "1"}
    )
    assert res.status_code == 400
    (entry,) = _entries(client, admin, action="report_submit", limit="1")
    assert entry["actor"] == "anonymous" and entry["method"] == "POST"
    assert entry["path"] == "/api/reports" and entry["status"] == 400
    op = auth_headers("operator")
    client.post("/api/reports/overdue/check", headers=op)
    (check,) = _entries(client, admin, action="POST /api/reports/overdue/check", limit="1")
    assert check["actor"].startswith("t_operator") and check["role"] == "operator"
    # Refused writes are recorded too.
    client.post("/api/reports/PA-0/assign", headers=auth_headers("citizen"))
    (refused,) = _entries(client, admin, action="POST /api/reports/{code}/assign", limit="1")
    assert refused["status"] == 403 and refused["details"]["params"] == {"code": "PA-0"}


def test_snapshot_views_and_imports_are_recorded(
    client: TestClient, auth_headers: Headers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(security, "ENFORCE_ALL", True)
    admin = auth_headers("admin")
    op = auth_headers("operator")
    client.get("/api/cameras/cam-404/snapshot.jpg", headers=op)
    (view,) = _entries(client, admin, action="camera_snapshot", limit="1")
    assert view["role"] == "operator" and view["details"]["params"] == {"camera_id": "cam-404"}
    client.post("/api/imports", headers=auth_headers("gis_staff"))
    (imp,) = _entries(client, admin, action="import", limit="1")
    assert imp["role"] == "gis_staff"
    # Reads are not audited (they would drown the trail), except the flagged ones.
    before = _entries(client, admin, limit="1")[0]["id"]
    client.get("/api/layers", headers=op)
    assert _entries(client, admin, limit="1")[0]["id"] == before
