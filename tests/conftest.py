"""Session fixtures: a real PostGIS (the project's cluster or IOC_DATABASE_URL), migrated once."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import pytest
from sqlalchemy import Engine

from layers import cluster, migrate
from layers.db import make_engine
from layers.errors import NotFoundError
from layers.indicators.store import ObservationIn
from layers.settings import Settings
from layers.testing import create_database, drop_database, settings_for

if TYPE_CHECKING:
    import pandas as pd


ROOT = Path(__file__).resolve().parents[1]
WEB_MAP = ROOT / "web_map"
DIST = WEB_MAP / "dist"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="session")
def dist() -> Path:
    """The built web map; built here with npm when the setup step has not done it yet."""
    if not (DIST / "index.html").exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("web_map/dist is not built and npm is missing: run ./scripts/setup")
        if not (WEB_MAP / "node_modules").is_dir():
            subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=WEB_MAP, check=True)
        subprocess.run([npm, "run", "build"], cwd=WEB_MAP, check=True)
    return DIST


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Debian's Chromium driven by Playwright (never a downloaded browser build)."""
    if not CHROMIUM.exists():
        pytest.skip(
            "Debian's Chromium is not installed at /usr/bin/chromium (apt-get install chromium)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    """Settings as the environment gives them, with the cluster running."""
    settings = Settings(environment="test")
    cluster.ensure_running(settings)
    return settings


@pytest.fixture(scope="session")
def test_db_name(base_settings: Settings) -> Iterator[str]:
    """A throwaway database for this test session, dropped at the end."""
    name = create_database(base_settings, "iocmap_test")
    yield name
    drop_database(base_settings, name)


@pytest.fixture(scope="session")
def settings(
    base_settings: Settings, test_db_name: str, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    """Settings that point every component at the throwaway, migrated database."""
    return settings_for(base_settings, test_db_name, tmp_path_factory.mktemp("state"))


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Iterator[Engine]:
    """Engine on the migrated test database."""
    eng = make_engine(settings)
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def seeded(engine: Engine, settings: Settings) -> Engine:
    """The test database with the demo seeded once (3,000 parcels to keep it quick).

    Shared by the whole session: tests may add rows of their own, so assert on what you
    wrote, or use a directory-level override (see tests/web_map/conftest.py) for a pristine demo.
    """
    from layers.demo.seed import seed_demo

    seed_demo(engine, settings)
    return engine


@pytest.fixture
def fresh_db(base_settings: Settings) -> Iterator[Engine]:
    """An empty, unmigrated database of its own, for migration tests."""
    name = create_database(base_settings, "iocmap_fresh")
    eng = make_engine(base_settings, name)
    yield eng
    eng.dispose()
    drop_database(base_settings, name)


_AUTH_CACHE = pytest.StashKey[dict[tuple[str, str, tuple[str, ...]], dict[str, str]]]()


@pytest.fixture
def auth_headers(
    engine: Engine, settings: Settings, request: pytest.FixtureRequest
) -> Callable[..., dict[str, str]]:
    """Factory: auth_headers(role, units=()) -> a bearer header of a test user with that role.

    Users are created once per database (function scope, so directory-level `engine`
    overrides get their own users); commune_staff default to the most populous commune
    (so they need the `seeded` database).
    """
    import secrets

    from geo_api.security import issue_token
    from layers.auth import users

    cache = request.config.stash.setdefault(_AUTH_CACHE, {})
    db = engine.url.render_as_string(hide_password=True)

    def make(role: str, units: Sequence[str] = ()) -> dict[str, str]:
        key = (db, role, tuple(units))
        if key not in cache:
            with engine.begin() as conn:
                unit_list = list(units)
                if role == "commune_staff" and not unit_list:
                    code = users.demo_commune_code(conn)
                    assert code, "commune_staff needs admin units: use the `seeded` fixture"
                    unit_list = [code]
                if role == "agency_staff" and not unit_list:
                    from layers.incidents.store import demo_agency_code

                    agency = demo_agency_code(conn)
                    assert agency, "agency_staff needs an agency: use the `seeded` fixture"
                    unit_list = [agency]
                name = "t_" + role + "".join(f"_{u}" for u in unit_list)
                try:
                    user = users.get_user(conn, name)
                except NotFoundError:
                    user = users.create_user(conn, name, secrets.token_urlsafe(16), role, unit_list)
            cache[key] = {"Authorization": f"Bearer {issue_token(settings, user)}"}
        return cache[key]

    return make


def hospital_observations(df: pd.DataFrame) -> list[ObservationIn]:
    """yt_records and yt_insured observations of daily hospital rows (key, day, records, insured)."""
    return [
        ObservationIn(
            indicator=code,
            subject_layer="hospitals",
            subject_key=r.key,
            period_start=r.day,
            period_end=r.day,
            value=getattr(r, col),
        )
        for r in df.itertuples(index=False)
        for code, col in (("yt_records", "records"), ("yt_insured", "insured"))
    ]


@pytest.fixture(scope="module")
def client_options() -> dict[str, Any]:
    """How `client` builds its app; a module overrides this fixture to change it.

    Keys: `settings` (Settings field updates), `base_url` (https:// for secure cookies),
    `overrides` (FastAPI dependency overrides). Setup the app needs first goes here too.
    """
    return {}


@pytest.fixture(scope="module")
def client(seeded: Engine, settings: Settings, client_options: dict[str, Any]) -> Iterator[Any]:
    """A TestClient of create_app over the seeded demo, its lifespan running (one per module)."""
    from fastapi.testclient import TestClient

    from geo_api.main import create_app

    app = create_app(settings.model_copy(update=client_options.get("settings", {})))
    app.dependency_overrides.update(client_options.get("overrides", {}))
    # Errors come in the caller's language (Vietnamese without a header); these tests read the
    # English messages, and the i18n tests ask for each language themselves.
    with TestClient(
        app,
        base_url=client_options.get("base_url", "http://testserver"),
        headers={"Accept-Language": "en"},
    ) as c:
        yield c


@contextlib.contextmanager
def live_server_for(settings: Settings, wrap: Callable[[Any], Any] | None = None) -> Iterator[str]:
    """A real uvicorn serving create_app(settings) on a free loopback port; yields its base URL.

    `wrap`, when given, wraps the app (e.g. an ASGI middleware recording the requests).
    """
    import httpx
    import uvicorn

    from geo_api.main import create_app

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    app = create_app(settings)
    config = uvicorn.Config(
        wrap(app) if wrap else app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="iocmap-test-server", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/api/layers", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            pytest.fail("the test server did not come up")
        time.sleep(0.1)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)


ASGI = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]


class RequestRecorder:
    """An ASGI wrapper keeping (path, query, status) of every HTTP request."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def wrap(self, app: ASGI) -> ASGI:
        """The app, recording each request before it answers."""

        async def recorded(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            entry: dict[str, Any] = {
                "path": scope["path"],
                "query": parse_qs(scope.get("query_string", b"").decode("latin-1")),
                "status": None,
            }
            self.requests.append(entry)

            async def send_status(message: Any) -> None:
                if message["type"] == "http.response.start":
                    entry["status"] = message["status"]
                await send(message)

            await app(scope, receive, send_status)

        return recorded

    def items(self, slug: str, since: int = 0) -> list[dict[str, Any]]:
        """The items requests of one collection recorded after index `since`."""
        path = f"/ogc/collections/{slug}/items"
        return [r for r in self.requests[since:] if r["path"] == path]
