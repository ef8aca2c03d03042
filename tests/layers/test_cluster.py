"""The managed PostgreSQL cluster: start/stop/status idempotence, stale pid file, busy port."""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from layers import cluster
from layers.errors import DatabaseClusterError
from layers.settings import Settings


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def own_cluster(base_settings: Settings) -> Iterator[Settings]:
    """A second, private cluster on its own port and data directory."""
    if base_settings.database_url or not (base_settings.pg_bin_dir / "pg_ctl").exists():
        pytest.skip(
            "managed-cluster tests need the local PostgreSQL binaries and no IOC_DATABASE_URL"
        )
    # The cluster owner (an unprivileged user when we are root) must be able to reach the path,
    # and pytest's tmp dirs are private to root.
    base = Path("/var/tmp") if os.geteuid() == 0 else Path.home() / ".cache"
    state = base / f"iocmap-cluster-test-{uuid.uuid4().hex[:8]}"
    settings = Settings(state_dir=state, db_port=_free_port())
    yield settings
    cluster.destroy(settings)
    shutil.rmtree(state, ignore_errors=True)


def test_start_is_idempotent_and_url_connects(own_cluster: Settings) -> None:
    first = cluster.start(own_cluster)
    second = cluster.start(own_cluster)
    assert first.running and second.running
    assert first.pid == second.pid
    assert cluster.status(own_cluster).running
    url = cluster.status(own_cluster).url
    assert url is not None and url.startswith("postgresql://")
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == (own_cluster.db_name,)


def test_stop_is_idempotent(own_cluster: Settings) -> None:
    cluster.start(own_cluster)
    assert not cluster.stop(own_cluster).running
    assert not cluster.stop(own_cluster).running
    assert cluster.start(own_cluster).running


def test_survives_stale_pid_file(own_cluster: Settings) -> None:
    cluster.start(own_cluster)
    cluster.stop(own_cluster)
    pid_file = own_cluster.pg_data_dir / "postmaster.pid"
    # A crash leaves postmaster.pid behind, often naming a pid now used by something else.
    pid_file.write_text(f"{os.getpid()}\n{own_cluster.pg_data_dir}\n")
    assert cluster.start(own_cluster).running


def test_busy_port_gives_a_clear_message(own_cluster: Settings) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", own_cluster.db_port))
        blocker.listen(1)
        with pytest.raises(DatabaseClusterError, match="taken by another program"):
            cluster.start(own_cluster)


def test_external_database_url_disables_the_managed_cluster() -> None:
    settings = Settings(database_url="postgresql://u:p@db.example:5432/iocmap")
    assert not settings.uses_managed_cluster
    assert cluster.database_url(settings).startswith("postgresql+psycopg://u:p@db.example:5432/")
    with pytest.raises(DatabaseClusterError):
        cluster.start(settings)
