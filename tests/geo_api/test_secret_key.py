"""Item 6 of issue 14: a random signing key is created at first start in the state directory
(mode 0600); the published development key is used nowhere; IOC_SECRET_KEY still overrides."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine

from geo_api.main import create_app
from geo_api.security import InsecureConfigurationError, issue_token
from layers.auth import users
from layers.settings import SECRET_FILE, Settings

PUBLISHED = "change-me-dev-only-secret"


def test_first_start_creates_a_private_random_key(
    seeded: Engine, settings: Settings, tmp_path: Path
) -> None:
    s = settings.model_copy(update={"state_dir": tmp_path / "state", "secret_key": None})
    app = create_app(s)
    path = s.state_dir / SECRET_FILE
    assert path.exists() and stat.S_IMODE(path.stat().st_mode) == 0o600
    key = path.read_text().strip()
    assert len(key) == 64 and key != PUBLISHED
    assert create_app(s) is not None and path.read_text().strip() == key  # kept, not replaced
    other = settings.model_copy(update={"state_dir": tmp_path / "other", "secret_key": None})
    assert other.signing_key() != key

    with seeded.begin() as conn:
        user = users.create_user(conn, "key_admin", "a long password 1", "admin")
    good = issue_token(s, user)
    assert jwt.decode(good, key, algorithms=["HS256"], issuer="iocmap")["role"] == "admin"
    # An admin token re-signed with the published key (and a later expiry) is refused.
    claims = jwt.decode(good, key, algorithms=["HS256"], issuer="iocmap")
    claims["exp"] = int((datetime.now(UTC) + timedelta(days=30)).timestamp())
    forged = jwt.encode(claims, PUBLISHED, algorithm="HS256")
    with TestClient(app) as c:
        assert c.get("/api/auth/me", headers={"Authorization": f"Bearer {good}"}).status_code == 200
        assert (
            c.get("/api/auth/me", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
        )


def test_ioc_secret_key_overrides_and_the_published_key_is_refused(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IOC_SECRET_KEY", "r" * 48)
    monkeypatch.setenv("IOC_STATE_DIR", str(tmp_path))
    s = Settings(environment="test")
    create_app(s)
    assert s.signing_key() == "r" * 48 and not (tmp_path / SECRET_FILE).exists()
    for env in ("development", "production"):
        with pytest.raises(InsecureConfigurationError, match="IOC_SECRET_KEY"):
            create_app(
                settings.model_copy(update={"environment": env, "secret_key": SecretStr(PUBLISHED)})
            )
