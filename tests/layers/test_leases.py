"""Issue 23: scheduled jobs run once across replicas, by a lease on a PostgreSQL advisory lock."""

from __future__ import annotations

import threading

import psycopg
from sqlalchemy import Engine

from layers.cluster import database_url, libpq_url
from layers.leases import Lease
from layers.settings import Settings


def test_one_holder_at_a_time_and_takeover_when_it_goes(engine: Engine, settings: Settings) -> None:
    url = libpq_url(database_url(settings))
    replicas = [Lease(url, "test-jobs") for _ in range(4)]
    held: list[bool] = [False] * 4

    def ask(i: int) -> None:
        held[i] = replicas[i].held()

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(held) == 1
    leader = held.index(True)
    assert replicas[leader].held()  # kept while its connection lives
    assert not any(r.held() for i, r in enumerate(replicas) if i != leader)
    # Another name is another lease.
    other = Lease(url, "test-other-jobs")
    assert other.held()
    other.release()

    replicas[leader].release()  # the leader goes (a crash closes the connection the same way)
    took = [i for i, r in enumerate(replicas) if i != leader and r.held()]
    assert len(took) == 1
    for r in replicas:
        r.release()


def test_a_lost_connection_loses_the_lease(engine: Engine, settings: Settings) -> None:
    url = libpq_url(database_url(settings))
    a, b = Lease(url, "test-lost"), Lease(url, "test-lost")
    assert a.held() and not b.held()
    # The server ends the holder's session (a failover, a network cut).
    assert a._conn is not None
    pid = a._conn.info.backend_pid
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    assert b.held()
    assert not a.held()  # noticed at its next check, before the guarded job would run
    b.release()
    a.release()
