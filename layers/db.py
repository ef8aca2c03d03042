"""The one place that builds database connections from Settings.

Statements go through one pooled SQLAlchemy engine per process (`make_engine`, following a
promoted standby when the URL names several hosts) and, for reads that a hot standby may
serve, `make_read_engine`. Three needs are served by psycopg directly, and their connections
are built here too: the async hot read path (a `psycopg_pool` pool, `read_pool`), LISTEN
connections (`connect_async`) and autocommit side connections (`connect`: an import's
replacement partition, leases, admin statements).
"""

from __future__ import annotations

import itertools
import logging
import weakref
from typing import Any

import orjson
import psycopg
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Connection, Engine, create_engine, text

from layers.cluster import database_url, libpq_url
from layers.settings import Settings
from layers.sql import quote_ident

log = logging.getLogger(__name__)


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _pool_args(settings: Settings) -> dict[str, Any]:
    return {
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_max_overflow,
        # A few seconds, then a 503 (geo_api.errors), never a 30-second queue.
        "pool_timeout": settings.db_pool_timeout_s,
        "pool_pre_ping": True,
        "json_serializer": _json_dumps,
        "json_deserializer": orjson.loads,
    }


def is_multi_host(url: str) -> bool:
    """True for a libpq multi-host URL (postgresql://u:p@h1:p1,h2:p2/db?...)."""
    netloc = url.split("://", 1)[-1].split("/", 1)[0]
    return "," in netloc.rsplit("@", 1)[-1]


# libpq URLs of engines built with a connection creator (multi-host, standbys): their own
# URL is the bare dialect, so side connections (imports) are opened from this instead.
_CONNINFOS: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()


def engine_conninfo(engine: Engine) -> str:
    """The libpq URL an engine connects with (for psycopg side connections)."""
    return _CONNINFOS.get(engine) or libpq_url(engine.url.render_as_string(hide_password=False))


def make_engine(settings: Settings, database: str | None = None) -> Engine:
    """Create the pooled engine every package uses to reach PostGIS.

    A multi-host IOC_DATABASE_URL (`...@h1:p1,h2:p2/db?target_session_attrs=read-write`) is
    handed to libpq as is: every new connection goes to whichever host is the primary now,
    so the API follows a promoted standby without a restart (issue 23).
    """
    url = database_url(settings, database)
    if is_multi_host(url):
        conninfo = libpq_url(url)

        def connect() -> psycopg.Connection[Any]:
            return psycopg.connect(conninfo, application_name="iocmap")  # a transaction per use

        engine = create_engine("postgresql+psycopg://", creator=connect, **_pool_args(settings))
        _CONNINFOS[engine] = conninfo
        return engine
    return create_engine(url, connect_args={"application_name": "iocmap"}, **_pool_args(settings))


def read_conninfos(settings: Settings) -> list[str]:
    """libpq URLs of the hot standbys (IOC_DATABASE_READ_URLS), in order."""
    out = []
    for url in settings.database_read_urls:
        scheme, _, rest = url.partition("://")
        if scheme not in ("postgresql", "postgres", "postgresql+psycopg"):
            raise ValueError(f"IOC_DATABASE_READ_URLS: not a PostgreSQL URL: {scheme}://…")
        out.append("postgresql://" + rest)
    return out


def make_read_engine(settings: Settings) -> Engine | None:
    """An engine over the hot standbys for reads, or None when none is configured.

    Each new connection goes to the next standby in turn; one that does not answer within
    read_standby_timeout_s is skipped, and with every standby away the primary serves.
    """
    standbys = read_conninfos(settings)
    if not standbys:
        return None
    primary = libpq_url(database_url(settings))
    turn = itertools.count()
    timeout = max(1, round(settings.read_standby_timeout_s))

    def connect() -> psycopg.Connection[Any]:
        first = next(turn)
        for i in range(len(standbys)):
            conninfo = standbys[(first + i) % len(standbys)]
            try:
                return psycopg.connect(
                    conninfo, application_name="iocmap-read", connect_timeout=timeout
                )
            except psycopg.OperationalError as exc:
                log.warning("standby unreachable, trying the next: %s", exc)
        return psycopg.connect(primary, application_name="iocmap-read")

    engine = create_engine("postgresql+psycopg://", creator=connect, **_pool_args(settings))
    _CONNINFOS[engine] = primary  # never written through, but side connections need one
    return engine


def conninfo(settings: Settings, database: str | None = None) -> str:
    """The libpq connection string of the configured (or managed) database."""
    return libpq_url(database_url(settings, database))


def connect(
    dsn: str, *, application_name: str = "iocmap", connect_timeout: float | None = None
) -> psycopg.Connection[Any]:
    """An autocommit psycopg connection (admin statements, leases, an import's side connections)."""
    extra: dict[str, Any] = {}
    if connect_timeout is not None:
        extra["connect_timeout"] = max(1, round(connect_timeout))
    return psycopg.connect(dsn, autocommit=True, application_name=application_name, **extra)


async def connect_async(
    dsn: str, *, application_name: str = "iocmap"
) -> psycopg.AsyncConnection[Any]:
    """An autocommit async psycopg connection (LISTEN for live streams and cache versions)."""
    return await psycopg.AsyncConnection.connect(
        dsn, autocommit=True, application_name=application_name
    )


def read_pool(
    settings: Settings,
    *,
    size: int,
    name: str,
    connect_timeout_s: float,
    dsn: str | None = None,
) -> AsyncConnectionPool[psycopg.AsyncConnection[tuple[Any, ...]]]:
    """The async pool of the hot read path (tiles, layer versions), opened by the caller.

    On `dsn` (a hot standby) when given, else on the primary. psycopg_pool checks every
    connection as it is handed out, so one that died while idle (a database restart) is
    replaced instead of failing a request.
    """
    return AsyncConnectionPool(
        dsn or conninfo(settings),
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
