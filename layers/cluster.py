"""The project-owned PostgreSQL 15 + PostGIS cluster: init, start, stop, status and URL."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from layers.errors import DatabaseClusterError
from layers.settings import Settings, current_os_user

PASSWORD_FILE = "iocmap-password"


@dataclass(frozen=True)
class ClusterStatus:
    """What `iocmap db status` reports."""

    initialized: bool
    running: bool
    pid: int | None
    data_dir: Path
    port: int
    url: str | None


def _run_as(settings: Settings) -> str | None:
    """OS user to run PostgreSQL as: an unprivileged system user when we are root."""
    return settings.db_system_user if os.geteuid() == 0 else None


def _bin(settings: Settings, name: str) -> str:
    path = settings.pg_bin_dir / name
    if not path.exists():
        raise DatabaseClusterError(
            f"{path} not found: install postgresql-15 and postgresql-15-postgis-3 "
            "(./scripts/setup does it), or set IOC_DATABASE_URL to an existing PostGIS."
        )
    return str(path)


def _ensure_system_user(name: str) -> None:
    """Create the unprivileged system user that owns the cluster, if missing."""
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True,
        )


def _chown_tree(path: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for item in dirs + files:
            os.chown(os.path.join(root, item), entry.pw_uid, entry.pw_gid, follow_symlinks=False)


def _pg(settings: Settings, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL server binary as the cluster owner."""
    user = _run_as(settings)
    # cwd=/ because the cluster owner may not be allowed into the caller's directory.
    return subprocess.run(
        list(args), user=user, cwd="/", capture_output=True, text=True, check=check
    )


def password_file(settings: Settings) -> Path:
    """File holding the generated password of the cluster's database role."""
    return settings.pg_data_dir.parent / PASSWORD_FILE


def cluster_password(settings: Settings) -> str:
    """Password of the managed cluster's database role."""
    path = password_file(settings)
    if not path.exists():
        raise DatabaseClusterError(f"{path} is missing: run `iocmap db start` first.")
    return path.read_text().strip()


def managed_url(settings: Settings, database: str | None = None) -> str:
    """SQLAlchemy URL of the managed cluster."""
    pw = quote(cluster_password(settings), safe="")
    db = database or settings.db_name
    return (
        f"postgresql+psycopg://{settings.db_user}:{pw}@{settings.db_host}:{settings.db_port}/{db}"
    )


def database_url(settings: Settings, database: str | None = None) -> str:
    """SQLAlchemy URL every command uses: IOC_DATABASE_URL or the managed cluster."""
    if settings.database_url:
        url = settings.database_url
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        if database:
            base, _, query = url.partition("?")
            url = base.rsplit("/", 1)[0] + "/" + database + (("?" + query) if query else "")
        return url
    return managed_url(settings, database)


def libpq_url(sqlalchemy_url: str) -> str:
    """The same URL in the plain libpq form psql, QGIS and GDAL understand."""
    return sqlalchemy_url.replace("postgresql+psycopg://", "postgresql://", 1)


@contextlib.contextmanager
def _cluster_lock(settings: Settings) -> Iterator[None]:
    """Serialise start/stop between concurrent processes (parallel test runs, CLI)."""
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    lock_path = settings.state_dir / ".cluster.lock"
    with open(lock_path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read_pid(data_dir: Path) -> int | None:
    pid_file = data_dir / "postmaster.pid"
    try:
        first = pid_file.read_text().splitlines()[0]
        return int(first)
    except (FileNotFoundError, IndexError, ValueError, PermissionError):
        return None


def _pid_is_our_postgres(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, PermissionError):
        return False
    return b"postgres" in cmdline


def _clear_stale_pid(data_dir: Path) -> None:
    """Remove a postmaster.pid whose process is gone or is not a postgres (pid reuse after a crash)."""
    pid = _read_pid(data_dir)
    if pid is not None and not _pid_is_our_postgres(pid):
        (data_dir / "postmaster.pid").unlink(missing_ok=True)


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def is_initialized(settings: Settings) -> bool:
    """True when the data directory holds a cluster."""
    return (settings.pg_data_dir / "PG_VERSION").exists()


def is_running(settings: Settings) -> bool:
    """True when our cluster's postmaster is alive."""
    pid = _read_pid(settings.pg_data_dir)
    return pid is not None and _pid_is_our_postgres(pid)


def _initdb(settings: Settings) -> None:
    data_dir = settings.pg_data_dir
    owner = _run_as(settings)
    if owner:
        _ensure_system_user(owner)
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    data_dir.mkdir(mode=0o700, exist_ok=True)
    pw_path = password_file(settings)
    if not pw_path.exists():
        pw_path.write_text(secrets.token_urlsafe(18))
        pw_path.chmod(0o600)
    pw_for_initdb = data_dir.parent / ".initdb-pw"
    pw_for_initdb.write_text(pw_path.read_text().strip())
    if owner:
        # The state dir must be traversable by the cluster owner; the password file stays private.
        data_dir.parent.chmod(0o755)
        _chown_tree(data_dir, owner)
        entry = pwd.getpwnam(owner)
        os.chown(pw_for_initdb, entry.pw_uid, entry.pw_gid)
    try:
        _pg(
            settings,
            _bin(settings, "initdb"),
            "-D",
            str(data_dir),
            "-U",
            settings.db_user,
            "--pwfile",
            str(pw_for_initdb),
            "-A",
            "scram-sha-256",
            "-E",
            "UTF8",
            "--locale",
            "C.UTF-8",
        )
    except subprocess.CalledProcessError as exc:
        raise DatabaseClusterError(f"initdb failed in {data_dir}: {exc.stderr.strip()}") from exc
    finally:
        pw_for_initdb.unlink(missing_ok=True)
    conf = data_dir / "postgresql.conf"
    with conf.open("a") as handle:
        handle.write(
            "\n# IOC Map managed cluster\n"
            f"listen_addresses = '{settings.db_host}'\n"
            f"unix_socket_directories = '{data_dir}'\n"
            "max_connections = 200\n"
            "shared_buffers = 1GB\n"
            "work_mem = 32MB\n"
            "maintenance_work_mem = 512MB\n"
            "max_wal_size = 4GB\n"
            "synchronous_commit = off\n"
            "jit = off\n"
        )


def start(settings: Settings, timeout_s: float = 60.0) -> ClusterStatus:
    """Initialise (once) and start the cluster, then make sure the role's database exists."""
    if not settings.uses_managed_cluster:
        raise DatabaseClusterError("IOC_DATABASE_URL is set: the managed cluster is not used.")
    with _cluster_lock(settings):
        if not is_initialized(settings):
            _initdb(settings)
        data_dir = settings.pg_data_dir
        _clear_stale_pid(data_dir)
        if not is_running(settings):
            if _port_in_use(settings.db_host, settings.db_port):
                raise DatabaseClusterError(
                    f"port {settings.db_port} on {settings.db_host} is taken by another program: "
                    "stop it or choose another port with IOC_DB_PORT."
                )
            log = settings.state_dir / "postgresql.log"
            log.touch(exist_ok=True)
            owner = _run_as(settings)
            if owner:
                entry = pwd.getpwnam(owner)
                os.chown(log, entry.pw_uid, entry.pw_gid)
            result = _pg(
                settings,
                _bin(settings, "pg_ctl"),
                "-D",
                str(data_dir),
                "-l",
                str(log),
                "-o",
                f"-p {settings.db_port}",
                "-w",
                "-t",
                str(int(timeout_s)),
                "start",
                check=False,
            )
            if result.returncode != 0:
                tail = log.read_text(errors="replace").splitlines()[-15:]
                raise DatabaseClusterError(
                    "PostgreSQL did not start: " + result.stderr.strip() + "\n" + "\n".join(tail)
                )
        _wait_for_port(settings, timeout_s)
        _ensure_database(settings, settings.db_name)
    return status(settings)


def _wait_for_port(settings: Settings, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _port_in_use(settings.db_host, settings.db_port):
            return
        time.sleep(0.2)
    raise DatabaseClusterError(
        f"PostgreSQL is not accepting connections on port {settings.db_port}"
    )


def _ensure_database(settings: Settings, name: str) -> None:
    from layers.db import connect  # layers.db builds on this module

    with connect(libpq_url(managed_url(settings, "postgres"))) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            from psycopg import sql

            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def stop(settings: Settings) -> ClusterStatus:
    """Stop the cluster if it runs; a no-op otherwise."""
    with _cluster_lock(settings):
        _clear_stale_pid(settings.pg_data_dir)
        if is_running(settings):
            result = _pg(
                settings,
                _bin(settings, "pg_ctl"),
                "-D",
                str(settings.pg_data_dir),
                "-m",
                "fast",
                "-w",
                "stop",
                check=False,
            )
            if result.returncode != 0 and is_running(settings):
                raise DatabaseClusterError("PostgreSQL did not stop: " + result.stderr.strip())
    return status(settings)


def status(settings: Settings) -> ClusterStatus:
    """Report whether the managed cluster exists and runs."""
    initialized = is_initialized(settings)
    running = is_running(settings)
    url = None
    if settings.database_url:
        url = libpq_url(database_url(settings))
    elif initialized and password_file(settings).exists():
        url = libpq_url(managed_url(settings))
    return ClusterStatus(
        initialized=initialized,
        running=running,
        pid=_read_pid(settings.pg_data_dir) if running else None,
        data_dir=settings.pg_data_dir,
        port=settings.db_port,
        url=url,
    )


def ensure_running(settings: Settings) -> None:
    """Start the managed cluster unless IOC_DATABASE_URL points elsewhere."""
    if settings.uses_managed_cluster:
        start(settings)


def destroy(settings: Settings) -> None:
    """Stop the cluster and delete its data directory (used by tests of the cluster itself)."""
    stop(settings)
    shutil.rmtree(settings.pg_data_dir, ignore_errors=True)
    password_file(settings).unlink(missing_ok=True)


__all__ = [
    "ClusterStatus",
    "cluster_password",
    "current_os_user",
    "database_url",
    "destroy",
    "ensure_running",
    "is_running",
    "libpq_url",
    "managed_url",
    "start",
    "status",
    "stop",
]
