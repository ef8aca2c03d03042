"""Authentication: OAuth2 password flow, session cookies, token checks, startup refusal, headers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from geo_api.cli import app as cli_app
from geo_api.main import create_app
from geo_api.security import InsecureConfigurationError, issue_token
from layers.auth import audit, users
from layers.models.reports import app_user, rate_bucket
from layers.settings import Settings

PASSWORD = "a very long password"


@pytest.fixture(scope="module")
def client_options(seeded: Engine) -> dict[str, Any]:
    with seeded.begin() as conn:
        users.create_user(conn, "auth_planner", PASSWORD, "planner")
        users.create_user(conn, "auth_gone", PASSWORD, "operator")
        conn.execute(rate_bucket.delete())
    # No user-lookup cache here: disabling a user must show at the very next request.
    return {"settings": {"auth_cache_s": 0.0}, "base_url": "https://testserver"}


def test_password_flow_issues_a_working_jwt(client: TestClient, settings: Settings) -> None:
    res = client.post("/api/auth/token", data={"username": "auth_planner", "password": PASSWORD})
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["token_type"] == "bearer" and body["user"]["role"] == "planner"
    claims = jwt.decode(
        body["access_token"],
        settings.signing_key(),
        algorithms=["HS256"],
        issuer="iocmap",
    )
    assert claims["role"] == "planner" and claims["exp"] > claims["iat"]
    me = client.get("/api/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200 and me.json()["username"] == "auth_planner"


def test_wrong_credentials_are_401_and_me_needs_a_token(client: TestClient) -> None:
    bad = client.post("/api/auth/token", data={"username": "auth_planner", "password": "nope"})
    assert bad.status_code == 401 and bad.headers["www-authenticate"] == "Bearer"
    unknown = client.post("/api/auth/token", data={"username": "nobody", "password": "nope"})
    assert unknown.status_code == 401 and unknown.json()["detail"] == bad.json()["detail"]
    assert client.get("/api/auth/me").status_code == 401


def test_session_cookie_is_httponly_secure_strict(client: TestClient) -> None:
    res = client.post("/api/auth/login", json={"username": "auth_planner", "password": PASSWORD})
    assert res.status_code == 200
    cookie = res.headers["set-cookie"].lower()
    assert "httponly" in cookie and "secure" in cookie and "samesite=strict" in cookie
    assert client.get("/api/auth/me").json()["role"] == "planner"
    # A cookie-carrying write from another site is refused (CSRF defence in depth).
    evil = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    assert client.post("/api/auth/logout", headers=evil).status_code == 403
    assert (
        client.post("/api/auth/logout", headers={"Origin": "https://evil.example"}).status_code
        == 403
    )
    assert client.get("/api/auth/me").status_code == 200
    out = client.post("/api/auth/logout", headers={"Origin": "https://testserver"})
    assert out.status_code == 200
    client.cookies.clear()
    assert client.get("/api/auth/me").status_code == 401


@pytest.mark.clock
def test_expired_tampered_and_disabled_tokens_are_refused(
    client: TestClient, seeded: Engine, settings: Settings
) -> None:
    with seeded.begin() as conn:
        user = users.get_user(conn, "auth_gone")
    old = issue_token(settings, user, datetime.now(UTC) - timedelta(days=2))
    assert client.get("/api/auth/me", headers={"Authorization": f"Bearer {old}"}).status_code == 401
    good = issue_token(settings, user)
    forged = jwt.encode(
        {**jwt.decode(good, options={"verify_signature": False}), "role": "admin"},
        "another-secret-of-sufficient-length-123",
        algorithm="HS256",
    )
    assert (
        client.get("/api/auth/me", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    )
    none_alg = jwt.encode(
        jwt.decode(good, options={"verify_signature": False}), None, algorithm="none"
    )
    assert (
        client.get("/api/auth/me", headers={"Authorization": f"Bearer {none_alg}"}).status_code
        == 401
    )
    assert (
        client.get("/api/auth/me", headers={"Authorization": f"Bearer {good}"}).status_code == 200
    )
    with seeded.begin() as conn:
        users.set_active(conn, "auth_gone", False)
    assert (
        client.get("/api/auth/me", headers={"Authorization": f"Bearer {good}"}).status_code == 401
    )


def test_changing_a_password_revokes_earlier_tokens(client: TestClient, seeded: Engine) -> None:
    with seeded.begin() as conn:
        users.create_user(conn, "auth_rotates", PASSWORD, "planner")
    form = {"username": "auth_rotates", "password": PASSWORD}
    before = client.post("/api/auth/token", data=form).json()["access_token"]
    me = client.get("/api/auth/me", headers={"Authorization": f"Bearer {before}"})
    assert me.status_code == 200
    with seeded.begin() as conn:
        users.set_password(conn, "auth_rotates", "another long password")
    stale = client.get("/api/auth/me", headers={"Authorization": f"Bearer {before}"})
    assert stale.status_code == 401
    form["password"] = "another long password"
    after = client.post("/api/auth/token", data=form).json()["access_token"]
    assert (
        client.get("/api/auth/me", headers={"Authorization": f"Bearer {after}"}).status_code == 200
    )
    # the stamp is a digest, never the hash itself
    claims = jwt.decode(after, options={"verify_signature": False})
    with seeded.connect() as conn:
        stored = conn.execute(
            select(app_user.c.password_hash).where(app_user.c.username == "auth_rotates")
        ).scalar_one()
    assert claims["cst"] and claims["cst"] not in stored


def test_login_attempts_are_rate_limited(seeded: Engine, settings: Settings) -> None:
    with seeded.begin() as conn:
        conn.execute(rate_bucket.delete())
    strict = settings.model_copy(update={"login_rate_burst": 3, "login_rate_per_minute": 0.001})
    try:
        with TestClient(create_app(strict)) as c:
            codes = [
                c.post("/api/auth/token", data={"username": "x1", "password": "y"}).status_code
                for _ in range(4)
            ]
        assert codes == [401, 401, 401, 429]
        with seeded.connect() as conn:
            throttled = audit.list_entries(conn, action="login_throttled", actor="x1")
        assert throttled and throttled[0]["status"] == 429
    finally:
        with seeded.begin() as conn:
            conn.execute(rate_bucket.delete())


def test_production_refuses_the_default_secret(settings: Settings) -> None:
    with pytest.raises(InsecureConfigurationError, match="IOC_SECRET_KEY"):
        create_app(
            settings.model_copy(update={"secret_key": SecretStr("change-me-dev-only-secret")})
        )
    with pytest.raises(InsecureConfigurationError, match="32"):
        create_app(
            settings.model_copy(
                update={"environment": "production", "secret_key": SecretStr("short")}
            )
        )
    create_app(
        settings.model_copy(update={"environment": "production", "secret_key": SecretStr("k" * 48)})
    )


def test_security_headers_on_every_response(client: TestClient) -> None:
    for url in ("/health", "/api/layers", "/api/reports/map?limit=1", "/nope"):
        res = client.get(url)
        csp = res.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "worker-src 'self' blob:" in csp and "img-src 'self' data: blob:" in csp
        assert res.headers["x-content-type-options"] == "nosniff"
        assert res.headers["referrer-policy"] == "strict-origin-when-cross-origin"
        assert res.headers["x-frame-options"] == "DENY"
    # the API docs are served from the app's own files (issue 17): no CDN in their policy
    docs_csp = client.get("/docs").headers["content-security-policy"]
    assert "https:" not in docs_csp and "script-src 'self' 'unsafe-inline'" in docs_csp


def test_request_size_limit(client: TestClient, settings: Settings) -> None:
    small = settings.model_copy(update={"max_request_bytes": 1000})
    with TestClient(create_app(small)) as c:
        res = c.post("/api/auth/login", json={"username": "auth_planner", "password": "x" * 5000})
        assert res.status_code == 413
        ok = c.post("/api/auth/login", json={"username": "auth_planner", "password": PASSWORD})
        assert ok.status_code == 200
        # Without a Content-Length (chunked), the body is counted as it streams in.
        chunks = iter([b'{"username": "auth_planner", ', b'"password": "' + b"x" * 5000 + b'"}'])
        streamed = c.post(
            "/api/auth/login", content=chunks, headers={"Content-Type": "application/json"}
        )
        assert streamed.status_code == 413


def test_cors_is_configurable(seeded: Engine, settings: Settings) -> None:
    cors = settings.model_copy(update={"cors_origins": ["https://ioc.nghean.gov.vn"]})
    with TestClient(create_app(cors)) as c:
        res = c.get("/health", headers={"Origin": "https://ioc.nghean.gov.vn"})
        assert res.headers["access-control-allow-origin"] == "https://ioc.nghean.gov.vn"
        other = c.get("/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_cli_user_add_reads_the_password_from_stdin(seeded: Engine, settings: Settings) -> None:
    env = {"IOC_DATABASE_URL": seeded.url.render_as_string(hide_password=False)}
    with seeded.connect() as conn:
        unit = users.demo_commune_code(conn)
    assert unit
    runner = CliRunner()
    res = runner.invoke(
        cli_app,
        ["user", "add", "cli_ward", "--role", "commune_staff", "--unit", unit],
        input="cli password 123\n",
        env=env,
    )
    assert res.exit_code == 0, res.output
    assert "commune_staff" in res.output
    again = runner.invoke(
        cli_app, ["user", "add", "cli_ward", "--role", "citizen"], input="whatever123\n", env=env
    )
    assert again.exit_code == 1 and "already exists" in again.output
    bad = runner.invoke(cli_app, ["user", "add", "cli_x", "--role", "king"], input="x\n", env=env)
    assert bad.exit_code == 1 and "unknown role" in bad.output
    with seeded.begin() as conn:
        user = users.authenticate(conn, "cli_ward", "cli password 123", datetime.now(UTC))
    assert user.admin_units == (unit,)


def test_guesses_from_one_address_never_lock_the_owner_out(
    seeded: Engine, settings: Settings
) -> None:
    """Item 9 of issue 14: backoff per (account, address), not a lockout anyone can trigger."""
    from geo_api.security import get_now

    with seeded.begin() as conn:
        conn.execute(rate_bucket.delete())
        users.create_user(conn, "pair_owner", PASSWORD, "planner")
    s = settings.model_copy(
        update={"login_free_failures": 5, "login_backoff_base_s": 2.0, "login_rate_burst": 100}
    )
    app = create_app(s)
    t = [datetime(2026, 5, 1, 8, 0, tzinfo=UTC)]
    app.dependency_overrides[get_now] = lambda: t[0]
    wrong = {"username": "pair_owner", "password": "wrong guess"}
    right = {"username": "pair_owner", "password": PASSWORD}
    try:
        with TestClient(app, client=("203.0.113.9", 4000)) as attacker:
            codes = [attacker.post("/api/auth/token", data=wrong).status_code for _ in range(10)]
            assert codes[:5] == [401] * 5 and 429 in codes[5:]
            res = attacker.post("/api/auth/token", data=right)
            assert res.status_code == 429 and int(res.headers["retry-after"]) >= 1
        with TestClient(app, client=("198.51.100.7", 4000)) as owner:
            assert owner.post("/api/auth/token", data=right).status_code == 200
        # The wait doubles per failure and ends: the attacker's pair may try again later.
        t[0] += timedelta(minutes=20)
        with TestClient(app, client=("203.0.113.9", 4000)) as attacker:
            assert attacker.post("/api/auth/token", data=wrong).status_code == 401
            assert attacker.post("/api/auth/token", data=wrong).status_code == 429
    finally:
        with seeded.begin() as conn:
            conn.execute(rate_bucket.delete())
