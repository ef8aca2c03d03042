"""Fixtures of the web map tests: the built bundle, a live uvicorn server and Debian's Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from layers import migrate
from layers.db import make_engine
from layers.settings import Settings
from layers.testing import create_database, drop_database, settings_for
from tests.conftest import CHROMIUM, CHROMIUM_ARGS, DIST, WEB_MAP, live_server_for  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "web_map"


# The map is checked against exact demo contents (51 cameras, the demo's layers), so these
# tests get a pristine demo database of their own instead of the session's shared one, which
# other packages' tests add layers and rows to.
def admin_token(engine: Engine, settings: Settings) -> str:
    """A session token of an admin: cameras, alerts and imports need a signed-in role."""
    from geo_api.security import issue_token
    from layers.auth import users
    from layers.errors import NotFoundError

    with engine.begin() as conn:
        try:
            user = users.get_user(conn, "t_web_admin")
        except NotFoundError:
            user = users.create_user(conn, "t_web_admin", "web admin password", "admin")
    return issue_token(settings, user)


def signed_in_context(browser: Any, live_server: str, engine: Engine, settings: Settings) -> Any:
    """A 1440x810 Vietnamese browser context carrying an admin's session cookie."""
    context = browser.new_context(viewport={"width": 1440, "height": 810}, locale="vi-VN")
    context.add_cookies(
        [
            {
                "name": settings.session_cookie_name,
                "value": admin_token(engine, settings),
                "url": live_server,
            }
        ]
    )
    return context


@pytest.fixture(scope="session")
def settings(
    base_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    """Settings on a database private to the web map tests."""
    name = create_database(base_settings, "iocmap_web")
    yield settings_for(base_settings, name, tmp_path_factory.mktemp("web-state"))
    drop_database(base_settings, name)


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Iterator[Engine]:
    """Engine on the web map tests' migrated database."""
    eng = make_engine(settings)
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def seeded(engine: Engine, settings: Settings) -> Engine:
    """The pristine demo for the web map tests."""
    from layers.demo.seed import seed_demo

    seed_demo(engine, settings)
    return engine


@pytest.fixture(scope="session")
def live_server(seeded: Engine, settings: Settings, dist: Path) -> Iterator[str]:
    """A real uvicorn serving the web map and the API; yields its base URL."""
    with live_server_for(settings.model_copy(update={"web_dist_dir": dist})) as base:
        yield base


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots go (gitignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
