"""`iocmap cluster up|down|status`: the whole topology of issue 23 on loopback, one machine.

A primary and a hot standby (pg_basebackup, streaming replication, synchronous commit by
default), two `iocmap serve` replicas that share the database's signing key and read from
the standby, and HAProxy in front of them with health checks on /health. Everything is a
Debian package (postgresql-15, haproxy); `scripts/cluster` wraps these commands and
`scripts/cluster test` runs the fault tests (tests/cluster).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx
import typer

from geo_api.cli.common import friendly_errors, load_settings
from layers import cluster as managed
from layers import migrate, replication
from layers.db import make_engine
from layers.errors import DatabaseClusterError
from layers.replication import Node
from layers.settings import Settings

DEFAULT_DIR = Path("/var/tmp/iocmap-cluster")
DEFAULT_BASE_PORT = 56500
HAPROXY = "/usr/sbin/haproxy"
NATS_SERVER = "/usr/sbin/nats-server"
# HAProxy checks each replica this often and drops it after FALL failed checks in a row.
CHECK_INTER_MS = 500
CHECK_FALL = 2
CHECK_RISE = 2

cluster_app = typer.Typer(
    help="A local cluster on loopback: primary + hot standby, two API replicas, HAProxy.",
    no_args_is_help=True,
)


@dataclass
class LocalCluster:
    """Where the pieces of one local cluster live and listen."""

    root: Path = DEFAULT_DIR
    base_port: int = DEFAULT_BASE_PORT
    replicas: int = 2
    synchronous: bool = True
    # The replicas read tiles, features, OGC items and H3 from the standby.
    standby_reads: bool = True
    # NATS with JetStream between camera workers and the API (IOC_BROKER_URL).
    broker: bool = True
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def primary(self) -> Node:
        """The node that starts as primary."""
        return Node("primary", self.root / "primary", self.base_port)

    @property
    def standby(self) -> Node:
        """The node that starts as hot standby."""
        return Node("standby", self.root / "standby", self.base_port + 1)

    def api_port(self, i: int) -> int:
        """Port of API replica i (0-based)."""
        return self.base_port + 10 + i

    @property
    def haproxy_port(self) -> int:
        """Where clients connect."""
        return self.base_port + 20

    @property
    def url(self) -> str:
        """The API through HAProxy."""
        return f"http://127.0.0.1:{self.haproxy_port}"

    @property
    def nats_port(self) -> int:
        """NATS (JetStream) client port."""
        return self.base_port + 30

    @property
    def broker_url(self) -> str:
        """IOC_BROKER_URL of the replicas and camera workers."""
        return f"nats://127.0.0.1:{self.nats_port}"

    @property
    def haproxy_socket(self) -> Path:
        """HAProxy's admin socket (show stat)."""
        return self.root / "haproxy.sock"

    @property
    def pids_file(self) -> Path:
        """Processes started by `up` (API replicas and HAProxy)."""
        return self.root / "pids.json"

    def database_url(self, base: Settings) -> str:
        """Multi-host URL: libpq connects to whichever node is the writable primary."""
        password = quote(managed.cluster_password(replication.node_settings(base, self.primary)))
        hosts = f"127.0.0.1:{self.primary.port},127.0.0.1:{self.standby.port}"
        return (
            f"postgresql://{base.db_user}:{password}@{hosts}/{base.db_name}"
            "?target_session_attrs=read-write&connect_timeout=2"
        )

    def read_url(self, base: Settings) -> str:
        """The standby, for reads."""
        return replication.conninfo(base, self.standby, base.db_name)

    def api_env(self, base: Settings, i: int) -> dict[str, str]:
        """Environment of API replica i."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("IOC_")}
        env.update(
            {
                "IOC_DATABASE_URL": self.database_url(base),
                "IOC_DATABASE_READ_URLS": json.dumps(
                    [self.read_url(base)] if self.standby_reads else []
                ),
                "IOC_STATE_DIR": str(self.root / f"api{i + 1}"),
                # Uploads and snapshots must be seen by every replica (a shared volume).
                "IOC_MEDIA_DIR": str(self.root / "media"),
                "IOC_HOST": "127.0.0.1",
                "IOC_PORT": str(self.api_port(i)),
                "IOC_SESSION_COOKIE_SECURE": "false",
                "IOC_ENVIRONMENT": base.environment,
                # Every replica runs a broker writer (one durable consumer, shared).
                **({"IOC_BROKER_URL": self.broker_url} if self.broker else {}),
                "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
            }
        )
        env.update(self.extra_env)
        return env

    def haproxy_cfg(self) -> str:
        """HAProxy: round robin over the replicas, dropped after failed /health checks."""
        servers = "\n".join(
            f"  server api{i + 1} 127.0.0.1:{self.api_port(i)} check" for i in range(self.replicas)
        )
        return f"""global
  maxconn 4000
  stats socket {self.haproxy_socket} mode 600 level admin

defaults
  mode http
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  # A refused connection (a dead replica) is retried on another one: nothing was sent yet.
  retries 3
  option redispatch 1
  retry-on conn-failure empty-response response-timeout

frontend api
  bind 127.0.0.1:{self.haproxy_port}
  default_backend apis

backend apis
  balance roundrobin
  # A POST whose answer was lost may have committed: never replayed.
  http-request disable-l7-retry if METH_POST
  option httpchk GET /health
  http-check expect status 200
  default-server inter {CHECK_INTER_MS}ms fall {CHECK_FALL} rise {CHECK_RISE} on-marked-down shutdown-sessions
{servers}
"""

    # --- processes ---------------------------------------------------------------------

    def _pids(self) -> dict[str, int]:
        try:
            data = json.loads(self.pids_file.read_text())
        except (FileNotFoundError, ValueError):
            return {}
        return {str(k): int(v) for k, v in data.items()}

    def _save_pid(self, name: str, pid: int) -> None:
        pids = self._pids()
        pids[name] = pid
        self.pids_file.write_text(json.dumps(pids))

    def pid(self, name: str) -> int | None:
        """Pid of a process `up` started (api1, api2, haproxy), if it still runs."""
        pid = self._pids().get(name)
        return pid if pid is not None and _alive(pid) else None

    def start_api(self, base: Settings, i: int) -> None:
        """Start API replica i (no wait)."""
        name = f"api{i + 1}"
        if self.pid(name):
            return
        (self.root / name).mkdir(parents=True, exist_ok=True)
        log = (self.root / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "geo_api.cli", "serve", "--port", str(self.api_port(i))],
            env=self.api_env(base, i),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=self.root,
        )
        self._save_pid(name, proc.pid)

    def restart_apis(self, base: Settings, timeout_s: float = 120.0) -> None:
        """Restart every API replica (after a change of settings) and wait until they answer."""
        for i in range(self.replicas):
            self.kill_api(i, signal.SIGTERM)
            self.start_api(base, i)
        deadline = time.monotonic() + timeout_s
        for i in range(self.replicas):
            _wait_http(f"http://127.0.0.1:{self.api_port(i)}/health", deadline)

    def kill_api(self, i: int, sig: int = signal.SIGKILL) -> None:
        """Kill API replica i (SIGKILL: a crash)."""
        pid = self.pid(f"api{i + 1}")
        if pid is not None:
            os.kill(pid, sig)
            _wait_dead(pid, 10.0)

    def start_haproxy(self) -> None:
        """Start HAProxy (no wait)."""
        if self.pid("haproxy"):
            return
        if not Path(HAPROXY).exists():
            raise DatabaseClusterError(
                "haproxy is not installed: apt-get install haproxy (./scripts/setup --test)"
            )
        cfg = self.root / "haproxy.cfg"
        cfg.write_text(self.haproxy_cfg())
        log = (self.root / "haproxy.log").open("ab")
        proc = subprocess.Popen(
            [HAPROXY, "-db", "-f", str(cfg)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._save_pid("haproxy", proc.pid)

    def start_nats(self) -> None:
        """Start nats-server with JetStream (file store under the cluster's directory)."""
        if self.pid("nats") or not self.broker:
            return
        if not Path(NATS_SERVER).exists():
            raise DatabaseClusterError(
                "nats-server is not installed: apt-get install nats-server (./scripts/setup --test)"
            )
        log = (self.root / "nats.log").open("ab")
        proc = subprocess.Popen(
            [NATS_SERVER, "-js", "-a", "127.0.0.1", "-p", str(self.nats_port)]
            + ["-sd", str(self.root / "nats")],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._save_pid("nats", proc.pid)

    def haproxy_status(self) -> dict[str, str]:
        """Server name -> UP/DOWN/... as HAProxy sees it (from its admin socket)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2)
            sock.connect(str(self.haproxy_socket))
            sock.sendall(b"show stat\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        lines = b"".join(chunks).decode().splitlines()
        head = lines[0].lstrip("# ").split(",")
        out = {}
        for line in lines[1:]:
            row = dict(zip(head, line.split(","), strict=False))
            if row.get("pxname") == "apis" and row.get("svname", "").startswith("api"):
                out[row["svname"]] = row.get("status", "")
        return out

    # --- the whole cluster --------------------------------------------------------------

    def up(self, base: Settings, timeout_s: float = 120.0) -> None:
        """Start every piece (each only if it is not running yet) and wait until it answers."""
        self.root.mkdir(parents=True, exist_ok=True)
        # The PostgreSQL owner (an unprivileged user when we are root) walks through it.
        self.root.chmod(0o755)
        replication.init_primary(base, self.primary)
        engine = make_engine(replication.node_settings(base, self.primary))
        try:
            migrate.upgrade(engine)
        finally:
            engine.dispose()
        replication.clone_standby(base, self.primary, self.standby)
        if not replication.in_recovery(replication.conninfo(base, self.primary)):
            replication.set_synchronous(base, self.primary, self.synchronous)
        self.start_nats()
        for i in range(self.replicas):
            self.start_api(base, i)
        self.start_haproxy()
        deadline = time.monotonic() + timeout_s
        for i in range(self.replicas):
            _wait_http(f"http://127.0.0.1:{self.api_port(i)}/health", deadline)
        _wait_http(self.url + "/health", deadline)

    def down(self, base: Settings) -> None:
        """Stop HAProxy, the API replicas and both PostgreSQL nodes."""
        for name, pid in self._pids().items():
            if _alive(pid):
                os.kill(pid, signal.SIGTERM)
                if not _wait_dead(pid, 15.0):
                    os.kill(pid, signal.SIGKILL)
                    _wait_dead(pid, 5.0)
            del name
        self.pids_file.unlink(missing_ok=True)
        for node in (self.standby, self.primary):
            if replication.is_running(base, node):
                replication.stop(base, node)

    def status(self, base: Settings) -> dict[str, str]:
        """What runs, node by node."""
        out: dict[str, str] = {}
        for node in (self.primary, self.standby):
            if not replication.is_running(base, node):
                out[node.name] = "stopped"
                continue
            try:
                standby = replication.in_recovery(replication.conninfo(base, node))
                out[node.name] = f"{'standby' if standby else 'primary'} :{node.port}"
            except Exception as exc:
                out[node.name] = f"running, not answering ({exc})"
        for i in range(self.replicas):
            name = f"api{i + 1}"
            out[name] = f"running :{self.api_port(i)}" if self.pid(name) else "stopped"
        if self.pid("haproxy"):
            try:
                checks = self.haproxy_status()
            except OSError:
                checks = {}
            out["haproxy"] = f"running :{self.haproxy_port} " + " ".join(
                f"{k}={v}" for k, v in sorted(checks.items())
            )
        else:
            out["haproxy"] = "stopped"
        if "nats" in self._pids():
            out["nats"] = f"running :{self.nats_port}" if self.pid("nats") else "stopped"
        return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (our own child, not yet reaped) is dead for our purposes.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return False
    return True


def _wait_dead(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def _wait_http(url: str, deadline: float) -> None:
    last = ""
    while time.monotonic() < deadline:
        try:
            res = httpx.get(url, timeout=2.0)
            if res.status_code == 200:
                return
            last = f"HTTP {res.status_code}"
        except httpx.HTTPError as exc:
            last = str(exc)
        time.sleep(0.3)
    raise DatabaseClusterError(f"{url} did not answer 200 in time ({last})")


def _cluster(root: Path | None, base_port: int | None, synchronous: bool = True) -> LocalCluster:
    return LocalCluster(
        root=root or DEFAULT_DIR,
        base_port=base_port or DEFAULT_BASE_PORT,
        synchronous=synchronous,
    )


RootOpt = typer.Option(None, "--dir", help=f"Where the cluster lives (default {DEFAULT_DIR})")
PortOpt = typer.Option(None, "--base-port", help=f"First port (default {DEFAULT_BASE_PORT})")


@cluster_app.command("up")
@friendly_errors
def up_cmd(
    root: Path | None = RootOpt,
    base_port: int | None = PortOpt,
    synchronous: bool = typer.Option(
        True, help="Commits wait for the standby (no acknowledged write lost at failover)"
    ),
    broker: bool = typer.Option(True, help="Run NATS JetStream and set IOC_BROKER_URL"),
) -> None:
    """Start the primary, the standby, NATS, two API replicas and HAProxy."""
    lc = _cluster(root, base_port, synchronous)
    lc.broker = broker
    lc.up(load_settings())
    typer.echo(f"IOC Map cluster: {lc.url}  (status: iocmap cluster status)")


@cluster_app.command("down")
@friendly_errors
def down_cmd(root: Path | None = RootOpt, base_port: int | None = PortOpt) -> None:
    """Stop everything `up` started (data is kept)."""
    _cluster(root, base_port).down(load_settings())
    typer.echo("cluster stopped")


@cluster_app.command("status")
@friendly_errors
def status_cmd(root: Path | None = RootOpt, base_port: int | None = PortOpt) -> None:
    """Say what runs; exit 3 when something is stopped."""
    st = _cluster(root, base_port).status(load_settings())
    for name, state in st.items():
        typer.echo(f"{name:8s} {state}")
    if any(v == "stopped" for v in st.values()):
        raise typer.Exit(3)


def register(app: typer.Typer) -> None:
    """Attach the `cluster` group."""
    app.add_typer(cluster_app, name="cluster")
