"""Engine factory: one SQLAlchemy engine per process, built from Settings."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Connection, Engine, create_engine, text

from layers.cluster import database_url
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


def savepoint(conn: Connection, name: str) -> None:
    """SAVEPOINT `name` in the connection's transaction (kept open across threads)."""
    conn.execute(text(f"SAVEPOINT {quote_ident(name)}"))


def rollback_to_savepoint(conn: Connection, name: str) -> None:
    """ROLLBACK TO SAVEPOINT `name`."""
    conn.execute(text(f"ROLLBACK TO SAVEPOINT {quote_ident(name)}"))


def release_savepoint(conn: Connection, name: str) -> None:
    """RELEASE SAVEPOINT `name`."""
    conn.execute(text(f"RELEASE SAVEPOINT {quote_ident(name)}"))
