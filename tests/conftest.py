"""Session fixtures: a real PostGIS (the project's cluster or IOC_DATABASE_URL), migrated once."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine

from layers import cluster, migrate
from layers.db import make_engine
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
