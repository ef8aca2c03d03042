"""`iocmap up` (database + migrations + demo + server) and `iocmap serve`."""

from __future__ import annotations

import typer
import uvicorn
from sqlalchemy import func, select

from geo_api.cli.common import friendly_errors, load_settings, migrated_engine
from layers.models import layer
from layers.settings import Settings


def _run_server(settings: Settings, host: str | None, port: int | None) -> None:
    from geo_api.main import create_app

    app = create_app(settings)
    bind_host = host or settings.host
    bind_port = port or settings.port
    typer.echo(f"IOC Map: http://{bind_host}:{bind_port}  (API docs: /docs)")
    uvicorn.run(app, host=bind_host, port=bind_port, log_level="info", proxy_headers=False)


@friendly_errors
def up(
    host: str | None = typer.Option(None, help="Bind address (default IOC_HOST, 127.0.0.1)"),
    port: int | None = typer.Option(None, help="Port (default IOC_PORT, 8000)"),
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
    _run_server(settings, host, port)


@friendly_errors
def serve(
    host: str | None = typer.Option(None, help="Bind address (default IOC_HOST, 127.0.0.1)"),
    port: int | None = typer.Option(None, help="Port (default IOC_PORT, 8000)"),
) -> None:
    """Serve the API and map without seeding (starts and migrates the database if needed)."""
    settings = load_settings()
    with migrated_engine(settings):
        pass
    _run_server(settings, host, port)


def register(app: typer.Typer) -> None:
    """Attach `up` and `serve`."""
    app.command("up")(up)
    app.command("serve")(serve)
