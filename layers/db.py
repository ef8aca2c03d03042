"""The one place that builds database connections from Settings.

Statements go through one pooled SQLAlchemy engine per process (`make_engine`). Three needs
are served by psycopg directly, and their connections are built here too: the async hot read
path (a `psycopg_pool` pool, `read_pool`), LISTEN connections (`connect_async`) and the side
connections an import builds its replacement partition on (`connect`).
"""

from __future__ import annotations

from typing import Any

import orjson
import psycopg
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Connection, Engine, create_engine, text

from layers.cluster import database_url, libpq_url
from layers.settings import Settings
from layers.sql import quote_ident


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def make_engine(settings: Settings, database: str | None = None) -> Engine:
    """Create the pooled engine every package uses to reach PostGIS."""
    return create_engine(
        database_url(settings, database),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        # A few seconds, then a 503 (geo_api.errors), never a 30-second queue.
        pool_timeout=settings.db_pool_timeout_s,
        pool_pre_ping=True,
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        connect_args={"application_name": "iocmap"},
    )


def conninfo(settings: Settings, database: str | None = None) -> str:
    """The libpq connection string of the configured (or managed) database."""
    return libpq_url(database_url(settings, database))


def engine_conninfo(engine: Engine) -> str:
    """The libpq connection string of the database an engine points at."""
    return libpq_url(engine.url.render_as_string(hide_password=False))


def connect(dsn: str, *, application_name: str = "iocmap") -> psycopg.Connection[Any]:
    """An autocommit psycopg connection (admin statements, an import's side connections)."""
    return psycopg.connect(dsn, autocommit=True, application_name=application_name)


async def connect_async(
    dsn: str, *, application_name: str = "iocmap"
) -> psycopg.AsyncConnection[Any]:
    """An autocommit async psycopg connection (LISTEN for live streams and cache versions)."""
    return await psycopg.AsyncConnection.connect(
        dsn, autocommit=True, application_name=application_name
    )


def read_pool(
    settings: Settings, *, size: int, name: str, connect_timeout_s: float
) -> AsyncConnectionPool[psycopg.AsyncConnection[tuple[Any, ...]]]:
    """The async pool of the hot read path (tiles, layer versions), opened by the caller.

    psycopg_pool checks every connection as it is handed out, so one that died while idle
    (a database restart) is replaced instead of failing a request.
    """
    return AsyncConnectionPool(
        conninfo(settings),
        min_size=1,
        max_size=max(1, size),
        open=False,
        check=AsyncConnectionPool.check_connection,
        timeout=settings.db_pool_timeout_s,
        name=name,
        kwargs={
            "autocommit": True,
            "application_name": name,
            "connect_timeout": max(1, int(connect_timeout_s)),
            # Custom plans always: a generic plan cannot prune the layer's partition nor
            # judge the tile envelope, and may scan a million parcels. No parallel workers:
            # requests already run side by side on few cores.
            "options": "-c plan_cache_mode=force_custom_plan -c max_parallel_workers_per_gather=0",
        },
    )


def savepoint(conn: Connection, name: str) -> None:
    """SAVEPOINT `name` in the connection's transaction (kept open across threads)."""
    conn.execute(text(f"SAVEPOINT {quote_ident(name)}"))


def rollback_to_savepoint(conn: Connection, name: str) -> None:
    """ROLLBACK TO SAVEPOINT `name`."""
    conn.execute(text(f"ROLLBACK TO SAVEPOINT {quote_ident(name)}"))


def release_savepoint(conn: Connection, name: str) -> None:
    """RELEASE SAVEPOINT `name`."""
    conn.execute(text(f"RELEASE SAVEPOINT {quote_ident(name)}"))
