"""`iocmap up` (database + migrations + demo + server), `iocmap serve`, `iocmap simulators`."""

from __future__ import annotations

import subprocess
import sys

import typer
import uvicorn

from geo_api.cli.common import friendly_errors, load_settings, migrated_engine
from layers.features.registry import layer_slugs
from layers.settings import Settings

simulators_app = typer.Typer(
    help="Simulated sector systems (iGate, iOffice, health, vnEdu, tourism, SOC, news).",
    no_args_is_help=True,
)


def _run_server(
    settings: Settings,
    host: str | None,
    port: int | None,
    cameras: bool = False,
    simulators: bool = False,
) -> None:
    from geo_api.main import create_app

    children: list[subprocess.Popen[bytes]] = []
    if simulators:
        child = _start_simulators()
        if child is not None:
            children.append(child)
    app = create_app(settings)
    bind_host = host or settings.host
    bind_port = port or settings.port
    if cameras:
        children.append(_start_camera_supervisor())
    typer.echo(f"IOC Map: http://{bind_host}:{bind_port}  (API docs: /docs)")
    try:
        uvicorn.run(app, host=bind_host, port=bind_port, log_level="info", proxy_headers=False)
    finally:
        for child in children:
            child.terminate()
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()


def _simulators_running(base_url: str) -> bool:
    """True when the simulators already answer at base_url (another `iocmap up`, say)."""
    import httpx

    try:
        resp = httpx.get(base_url + "/", timeout=1.0)
        return resp.status_code == 200 and "he_thong" in resp.json()
    except (httpx.HTTPError, ValueError):
        return False


def _start_simulators() -> subprocess.Popen[bytes] | None:
    """Run `iocmap simulators serve` beside the server, for the scheduled demo connectors."""
    from ingest.simulators.demo import DEMO_BASE_URL, DEMO_PORT

    if _simulators_running(DEMO_BASE_URL):
        typer.echo(f"sector simulators already running at {DEMO_BASE_URL}")
        return None
    typer.echo(f"starting the sector simulators at {DEMO_BASE_URL}")
    return subprocess.Popen(
        [sys.executable, "-m", "geo_api.cli", "simulators", "serve", "--port", str(DEMO_PORT)],
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )


@simulators_app.command("serve")
def simulators_serve(
    host: str = typer.Option("127.0.0.1", help="Bind address"),
    port: int = typer.Option(8071, help="Port (the demo connectors expect 8071)"),
    seed: int = typer.Option(40, help="Seed of the simulated figures"),
    today: str | None = typer.Option(None, help="Fix the simulated day (YYYY-MM-DD)"),
    token: str | None = typer.Option(None, help="Require 'Authorization: Bearer TOKEN'"),
) -> None:
    """Serve the simulated sector APIs (deterministic; never part of the IOC Map API)."""
    from datetime import date

    from ingest.simulators.app import create_simulator_app
    from ingest.simulators.systems import SYSTEMS

    app = create_simulator_app(
        seed=seed, today=date.fromisoformat(today) if today else None, token=token
    )
    for s in SYSTEMS.values():
        typer.echo(f"  {s.name:8s} http://{host}:{port}{s.path}")
    uvicorn.run(app, host=host, port=port, log_level="warning")


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
    simulators: bool = typer.Option(
        True, help="Run the sector simulators and schedule the demo connectors"
    ),
) -> None:
    """Start the database, migrate it, seed the demo if it is empty, and serve the map."""
    settings = load_settings()
    demo_connectors = simulators and settings.ingest_connectors_file is None
    if demo_connectors:
        from ingest.simulators.demo import DEMO_CONFIG

        # `up` only: without a connectors file of its own, the demo's are scheduled.
        settings = settings.model_copy(
            update={"ingest_connectors_file": DEMO_CONFIG, "ingest_scheduler": True}
        )
    with migrated_engine(settings) as engine:
        with engine.connect() as conn:
            slugs = layer_slugs(conn)
        empty = not slugs
        if empty:
            from geo_api.cli.seed import run_demo_seed

            typer.echo("Empty database: seeding the Nghệ An demo…")
            run_demo_seed(engine, settings)
        elif demo_connectors and "agencies" not in slugs:
            # Never seed demo data into a database that already holds other data.
            typer.secho(
                "the demo sector connectors need the `agencies` layer: run `iocmap seed demo`",
                fg=typer.colors.YELLOW,
            )
    _run_server(settings, host, port, cameras=cameras, simulators=demo_connectors)


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
    app.add_typer(simulators_app, name="simulators")
