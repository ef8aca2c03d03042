"""Session fixtures: a real PostGIS (the project's cluster or IOC_DATABASE_URL), migrated once."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Sequence

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine

from layers import cluster, migrate
from layers.db import make_engine
from layers.errors import NotFoundError
from layers.settings import Settings


def _admin_conninfo(settings: Settings) -> str:
    return cluster.libpq_url(cluster.database_url(settings, "postgres"))


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    """Settings as the environment gives them, with the cluster running."""
    settings = Settings(environment="test")
    cluster.ensure_running(settings)
    return settings


@pytest.fixture(scope="session")
def test_db_name(base_settings: Settings) -> Iterator[str]:
    """A throwaway database for this test session, dropped at the end."""
    name = f"iocmap_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(_admin_conninfo(base_settings), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield name
    with psycopg.connect(_admin_conninfo(base_settings), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="session")
def settings(
    base_settings: Settings, test_db_name: str, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    """Settings that point every component at the throwaway, migrated database."""
    url = cluster.database_url(base_settings, test_db_name)
    return base_settings.model_copy(
        update={
            "database_url": url,
            "state_dir": tmp_path_factory.mktemp("state"),
            "demo_parcels": 3000,
        }
    )


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Iterator[Engine]:
    """Engine on the migrated test database."""
    eng = make_engine(settings)
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def seeded(engine: Engine, settings: Settings) -> Engine:
    """The test database with the demo seeded once (3,000 parcels to keep it quick)."""
    from layers.demo.seed import seed_demo

    seed_demo(engine, settings)
    return engine


@pytest.fixture
def fresh_db(base_settings: Settings) -> Iterator[Engine]:
    """An empty, unmigrated database of its own, for migration tests."""
    name = f"iocmap_fresh_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_admin_conninfo(base_settings), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    eng = make_engine(base_settings, name)
    yield eng
    eng.dispose()
    with psycopg.connect(_admin_conninfo(base_settings), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="session")
def auth_headers(engine: Engine, settings: Settings) -> Callable[..., dict[str, str]]:
    """Factory: auth_headers(role, units=()) -> a bearer header of a test user with that role.

    Users are created once per session; commune_staff default to the most populous commune
    (so they need the `seeded` database).
    """
    import secrets

    from geo_api.security import issue_token
    from layers import users

    cache: dict[tuple[str, tuple[str, ...]], dict[str, str]] = {}

    def make(role: str, units: Sequence[str] = ()) -> dict[str, str]:
        key = (role, tuple(units))
        if key not in cache:
            with engine.begin() as conn:
                unit_list = list(units)
                if role == "commune_staff" and not unit_list:
                    code = users.demo_commune_code(conn)
                    assert code, "commune_staff needs admin units: use the `seeded` fixture"
                    unit_list = [code]
                name = "t_" + role + "".join(f"_{u}" for u in unit_list)
                try:
                    user = users.get_user(conn, name)
                except NotFoundError:
                    user = users.create_user(conn, name, secrets.token_urlsafe(16), role, unit_list)
            cache[key] = {"Authorization": f"Bearer {issue_token(settings, user)}"}
        return cache[key]

    return make
