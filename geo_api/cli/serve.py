"""`iocmap up` (database + migrations + demo + server) and `iocmap serve`."""

from __future__ import annotations

import subprocess
import sys

import typer
import uvicorn
from sqlalchemy import func, select

from geo_api.cli.common import friendly_errors, load_settings, migrated_engine
from layers.models import layer
from layers.settings import Settings


def _run_server(
    settings: Settings, host: str | None, port: int | None, cameras: bool = False
) -> None:
    from geo_api.main import create_app

    app = create_app(settings)
    bind_host = host or settings.host
    bind_port = port or settings.port
    supervisor = _start_camera_supervisor() if cameras else None
    typer.echo(f"IOC Map: http://{bind_host}:{bind_port}  (API docs: /docs)")
    try:
        uvicorn.run(app, host=bind_host, port=bind_port, log_level="info", proxy_headers=False)
    finally:
        if supervisor is not None:
            supervisor.terminate()
            try:
                supervisor.wait(timeout=15)
            except subprocess.TimeoutExpired:
                supervisor.kill()


def _start_camera_supervisor() -> subprocess.Popen[bytes]:
    """Run `iocmap vision supervise` beside the server: one worker process per enabled camera.

    A separate process group, so a crash in a camera worker never takes the API down.
    """
    typer.echo("starting the camera supervisor (IOC_VISION_MAX_WORKERS limits the workers)")
    return subprocess.Popen(
        [sys.executable, "-m", "geo_api.cli", "vision", "supervise"],
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM the child when the server dies.

    uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown, which ends the process
    before any `finally` runs; without this the camera workers would be orphaned.
    """
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


@friendly_errors
def up(
    host: str | None = typer.Option(None, help="Bind address (default IOC_HOST, 127.0.0.1)"),
    port: int | None = typer.Option(None, help="Port (default IOC_PORT, 8000)"),
    cameras: bool = typer.Option(True, help="Also run the camera detection workers"),
) -> None:
    """Start the database, migrate it, seed the demo if it is empty, and serve the map."""
    settings = load_settings()
    with migrated_engine(settings) as engine:
        with engine.connect() as conn:
            empty = conn.execute(select(func.count()).select_from(layer)).scalar_one() == 0
        if empty:
            from geo_api.cli.seed import run_demo_seed

            typer.echo("Empty database: seeding the Nghệ An demo…")
            run_demo_seed(engine, settings)
    _run_server(settings, host, port, cameras=cameras)


@friendly_errors
def serve(
    host: str | None = typer.Option(None, help="Bind address (default IOC_HOST, 127.0.0.1)"),
    port: int | None = typer.Option(None, help="Port (default IOC_PORT, 8000)"),
    cameras: bool = typer.Option(False, help="Also run the camera detection workers"),
) -> None:
    """Serve the API and map without seeding (starts and migrates the database if needed)."""
    settings = load_settings()
    with migrated_engine(settings):
        pass
    _run_server(settings, host, port, cameras=cameras)


def register(app: typer.Typer) -> None:
    """Attach `up` and `serve`."""
    app.command("up")(up)
    app.command("serve")(serve)
