"""Item 6 of issue 14: a random signing key is created at first start in the state directory
(mode 0600); the published development key is used nowhere; IOC_SECRET_KEY still overrides."""

from __future__ import annotations

import stat
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine

from geo_api.main import create_app
from geo_api.security import InsecureConfigurationError, issue_token
from layers.auth import signing, users
from layers.models.cluster import cluster_secret
from layers.settings import SECRET_FILE, Settings

PUBLISHED = "change-me-dev-only-secret"


def test_first_start_takes_the_shared_key_from_the_database(
    seeded: Engine, settings: Settings, tmp_path: Path
) -> None:
    """Issue 23: replicas with state directories of their own share one signing key, kept
    in the database (created once) and copied into each state directory (mode 0600)."""
    s = settings.model_copy(update={"state_dir": tmp_path / "state", "secret_key": None})
    app = create_app(s)
    path = s.state_dir / SECRET_FILE
    assert not path.exists()  # settled by the lifespan, with the database, not before
    with TestClient(app):
        pass
    assert path.exists() and stat.S_IMODE(path.stat().st_mode) == 0o600
    key = path.read_text().strip()
    with seeded.connect() as conn:
        assert signing.stored_secret(conn, signing.SIGNING_KEY, "ignored") == key
    assert len(key) == 64 and key != PUBLISHED
    with TestClient(create_app(s)):
        assert path.read_text().strip() == key  # kept, not replaced
    other = settings.model_copy(update={"state_dir": tmp_path / "other", "secret_key": None})
    with TestClient(create_app(other)):
        assert other.signing_key() == key  # another replica: the same key

    with seeded.begin() as conn:
        user = users.create_user(conn, "key_admin", "a long password 1", "admin")
    good = issue_token(s, user)
    assert jwt.decode(good, key, algorithms=["HS256"], issuer="iocmap")["role"] == "admin"
    # An admin token re-signed with the published key (and a later expiry) is refused.
    claims = jwt.decode(good, key, algorithms=["HS256"], issuer="iocmap")
    claims["exp"] = int((datetime.now(UTC) + timedelta(days=30)).timestamp())
    forged = jwt.encode(claims, PUBLISHED, algorithm="HS256")
    with TestClient(create_app(other)) as c:
        # signed by one replica, accepted by the other
        assert c.get("/api/auth/me", headers={"Authorization": f"Bearer {good}"}).status_code == 200
        assert (
            c.get("/api/auth/me", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
        )


def test_an_existing_state_key_is_kept(seeded: Engine, settings: Settings, tmp_path: Path) -> None:
    """Installs from before issue 23 keep STATE_DIR/secret_key (their sessions survive)."""
    state = tmp_path / "old"
    state.mkdir()
    (state / SECRET_FILE).write_text("o" * 64 + "\n")
    s = settings.model_copy(update={"state_dir": state, "secret_key": None})
    assert signing.ensure_shared_signing_key(seeded, s) == "o" * 64
    with TestClient(create_app(s)):
        assert s.signing_key() == "o" * 64


def test_replicas_starting_together_agree_on_one_key(
    seeded: Engine, settings: Settings, tmp_path: Path
) -> None:
    """The race-safe insert: whoever starts first, every replica ends with the same key."""
    with seeded.begin() as conn:
        conn.execute(cluster_secret.delete())
    keys: list[str] = []

    def start(i: int) -> None:
        s = settings.model_copy(update={"state_dir": tmp_path / f"r{i}", "secret_key": None})
        keys.append(signing.ensure_shared_signing_key(seeded, s))

    threads = [threading.Thread(target=start, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(keys) == 6 and len(set(keys)) == 1


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
