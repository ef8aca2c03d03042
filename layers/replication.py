"""PostgreSQL streaming replication with the Debian binaries: a primary, hot standbys made by
pg_basebackup, optional synchronous commit, and promotion (issue 23).

Each node is a managed cluster (`layers.cluster`) with a state directory of its own; this
module adds what replication needs on top. Used by `iocmap db promote` and `iocmap cluster`.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from psycopg import sql

from layers import cluster, db
from layers.errors import DatabaseClusterError
from layers.settings import Settings

# Small on purpose: several nodes (and tests) share one machine.
_REPLICATION_CONF = """
# IOC Map replication (issue 23)
shared_buffers = 128MB
max_connections = 300
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
wal_keep_size = 512MB
hot_standby = on
hot_standby_feedback = on
wal_receiver_status_interval = 1s
max_wal_size = 1GB
"""


@dataclass(frozen=True)
class Node:
    """One PostgreSQL server of a replicated cluster."""

    name: str
    state_dir: Path
    port: int
    # Default: STATE_DIR/pgdata, as the managed cluster lays it out.
    data_path: Path | None = None

    @property
    def data_dir(self) -> Path:
        """Its data directory."""
        return self.data_path or self.state_dir / "pgdata"


def node_settings(base: Settings, node: Node) -> Settings:
    """Settings that make `layers.cluster` manage this node."""
    return base.model_copy(
        update={
            "database_url": None,
            "state_dir": node.state_dir,
            "db_data_dir": node.data_dir,
            "db_port": node.port,
        }
    )


def conninfo(base: Settings, node: Node, database: str | None = None) -> str:
    """libpq URL of the node."""
    return cluster.libpq_url(cluster.managed_url(node_settings(base, node), database))


def init_primary(base: Settings, node: Node) -> None:
    """Create (once) and start the primary, ready to stream WAL to standbys."""
    s = node_settings(base, node)
    if not cluster.is_initialized(s):
        cluster._initdb(s)
        with (node.data_dir / "postgresql.conf").open("a") as handle:
            handle.write(_REPLICATION_CONF)
            handle.write("synchronous_commit = on\n")
    cluster.start(s)


def set_synchronous(base: Settings, node: Node, on: bool) -> None:
    """Make commits on the primary `node` wait until a standby has flushed them (or not).

    On (synchronous_standby_names = '*'), a failover loses no acknowledged write, at the
    cost of one round trip to the standby per commit; commits then also wait while no
    standby is connected. Set after the standby exists, never before.
    """
    with db.connect(conninfo(base, node)) as conn:
        conn.execute(
            sql.SQL("ALTER SYSTEM SET synchronous_standby_names = {}").format(
                sql.Literal("*" if on else "")
            )
        )
        conn.execute("SELECT pg_reload_conf()")


def clone_standby(base: Settings, primary: Node, standby: Node) -> None:
    """Make `standby` a hot standby of `primary` with pg_basebackup (-R), and start it."""
    s = node_settings(base, standby)
    if not cluster.is_initialized(s):
        standby.state_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy2(cluster.password_file(node_settings(base, primary)), cluster.password_file(s))
        owner = cluster._run_as(s)
        if owner:
            standby.state_dir.chmod(0o755)
            cluster._chown_tree(standby.state_dir, owner)
            # the password stays the caller's (root's), as the primary's does
            os.chown(cluster.password_file(s), os.getuid(), os.getgid())
        source = conninfo(base, primary, "postgres") + f"?application_name={standby.name}"
        result = cluster._pg(
            s,
            cluster._bin(s, "pg_basebackup"),
            "-d",
            source,
            "-D",
            str(standby.data_dir),
            "-R",
            "-X",
            "stream",
            "-c",
            "fast",
            check=False,
        )
        if result.returncode != 0:
            raise DatabaseClusterError("pg_basebackup failed: " + result.stderr.strip())
        with (standby.data_dir / "postgresql.conf").open("a") as handle:
            # The copied file names the primary's socket directory.
            handle.write(f"\nunix_socket_directories = '{standby.data_dir}'\n")
    cluster.start(s)


def in_recovery(url: str) -> bool:
    """True while the server at `url` is a standby."""
    with db.connect(url, connect_timeout=3) as conn:
        row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
        return bool(row and row[0])


def promote(base: Settings, node: Node, timeout_s: float = 60.0, url: str | None = None) -> None:
    """Promote a standby to primary (`pg_ctl promote`), then stop waiting for standbys it
    does not have: synchronous_standby_names copied from the old primary would otherwise
    make every commit wait forever."""
    s = node_settings(base, node)
    result = cluster._pg(
        s,
        cluster._bin(s, "pg_ctl"),
        "-D",
        str(node.data_dir),
        "-w",
        "-t",
        str(int(timeout_s)),
        "promote",
        check=False,
    )
    url = url or conninfo(base, node)
    if result.returncode != 0 and in_recovery(url):
        raise DatabaseClusterError("pg_ctl promote failed: " + result.stderr.strip())
    deadline = time.monotonic() + timeout_s
    while in_recovery(url):
        if time.monotonic() > deadline:
            raise DatabaseClusterError(f"{node.name} is still a standby after {timeout_s:.0f} s")
        time.sleep(0.1)
    with db.connect(url) as conn:
        conn.execute("ALTER SYSTEM SET synchronous_standby_names = ''")
        conn.execute("SELECT pg_reload_conf()")


def kill(base: Settings, node: Node) -> None:
    """Stop a node the hard way (`pg_ctl stop -m immediate`): what a crash leaves."""
    s = node_settings(base, node)
    cluster._pg(
        s,
        cluster._bin(s, "pg_ctl"),
        "-D",
        str(node.data_dir),
        "-m",
        "immediate",
        "-w",
        "stop",
        check=False,
    )


def stop(base: Settings, node: Node) -> None:
    """Stop a node cleanly if it runs."""
    cluster.stop(node_settings(base, node))


def is_running(base: Settings, node: Node) -> bool:
    """True when the node's postmaster is alive."""
    return cluster.is_running(node_settings(base, node))


def replay_lag_bytes(url: str) -> int | None:
    """Bytes of WAL a standby has received but not replayed (None on a primary)."""
    with db.connect(url, connect_timeout=3) as conn:
        row = conn.execute(
            "SELECT pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())"
        ).fetchone()
        return None if row is None or row[0] is None else int(row[0])
