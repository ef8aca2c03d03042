"""Issue 23: a hot standby renders only versions it has replayed; otherwise the primary does."""

from __future__ import annotations

import asyncio

from sqlalchemy import Engine

from layers.cluster import database_url, libpq_url
from layers.db import make_read_engine, read_conninfos
from layers.features import registry
from layers.features.standby import StandbyPools, replayed
from layers.settings import Settings


def test_replayed_compares_the_servers_version(seeded: Engine) -> None:
    with seeded.connect() as conn:
        info = registry.get_layer(conn, "land_parcels")
        assert replayed(conn, info.id, info.data_version)
        assert not replayed(conn, info.id, info.data_version + 1)
        assert not replayed(conn, -1, 0)


def test_standby_pools_pick_a_standby_that_is_not_behind(
    seeded: Engine, settings: Settings
) -> None:
    with seeded.connect() as conn:
        info = registry.get_layer(conn, "land_parcels")
    # The test database stands in for a standby (a second, unreachable one is skipped).
    dead = "postgresql://iocmap:x@127.0.0.1:1/none?connect_timeout=1"
    s = settings.model_copy(update={"db_pool_timeout_s": 1.0})
    pools = StandbyPools(s, [libpq_url(database_url(settings)), dead])

    async def run() -> None:
        try:
            assert await pools.for_version(info.id, info.data_version) is not None
            assert await pools.for_version(info.id, info.data_version + 1) is None
            assert await pools.for_version(info.id, info.data_version) is not None
        finally:
            await pools.close()

    asyncio.run(run())
    assert pools.stats.served == 2 and pools.stats.behind == 1 and pools.stats.unavailable == 1


def test_read_engine_only_with_read_urls_and_falls_back_to_the_primary(
    seeded: Engine, settings: Settings
) -> None:
    assert make_read_engine(settings) is None
    dead = "postgresql://iocmap:x@127.0.0.1:1/none"
    s = settings.model_copy(update={"database_read_urls": [dead], "read_standby_timeout_s": 1})
    assert read_conninfos(s) == [dead]
    engine = make_read_engine(s)
    assert engine is not None
    try:
        with engine.connect() as conn:  # the standby is away: the primary answers
            assert replayed(conn, registry.get_layer(conn, "land_parcels").id, 0)
    finally:
        engine.dispose()


def test_a_multi_host_url_reaches_the_host_that_takes_writes(
    seeded: Engine, settings: Settings
) -> None:
    """IOC_DATABASE_URL may list several hosts (libpq): the engine, the side connections of
    imports and the version listener all reach whichever one is the primary."""
    from sqlalchemy import text

    from layers.db import engine_conninfo, is_multi_host, make_engine

    url = libpq_url(database_url(settings))
    user_host, rest = url.split("@", 1)
    host, path = rest.split("/", 1)
    multi = f"{user_host}@127.0.0.1:1,{host}/{path}?target_session_attrs=read-write"
    assert is_multi_host(multi) and not is_multi_host(url)
    engine = make_engine(settings.model_copy(update={"database_url": multi}))
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT NOT pg_is_in_recovery()")).scalar()
        assert engine_conninfo(engine).startswith("postgresql://") and "127.0.0.1:1," in (
            engine_conninfo(engine)
        )
    finally:
        engine.dispose()
