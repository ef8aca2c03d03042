"""`iocmap db start|stop|status|url|migrate`: the project-owned PostGIS."""

from __future__ import annotations

from pathlib import Path

import typer

from geo_api.cli.common import friendly_errors, load_settings
from layers import cluster, migrate, replication
from layers.db import make_engine

db_app = typer.Typer(
    help="Run the project's PostgreSQL 15 + PostGIS cluster.", no_args_is_help=True
)


@db_app.command()
@friendly_errors
def start() -> None:
    """Initialise (first time) and start the cluster; does nothing if it already runs."""
    st = cluster.start(load_settings())
    typer.echo(f"PostGIS running (pid {st.pid}) on port {st.port}, data in {st.data_dir}")


@db_app.command()
@friendly_errors
def stop() -> None:
    """Stop the cluster; does nothing if it is not running."""
    cluster.stop(load_settings())
    typer.echo("PostGIS stopped")


@db_app.command()
@friendly_errors
def status() -> None:
    """Say whether the cluster is initialised and running (exit 3 when stopped)."""
    settings = load_settings()
    if settings.database_url:
        typer.echo(f"external database (IOC_DATABASE_URL): {cluster.status(settings).url}")
        return
    st = cluster.status(settings)
    state = "running" if st.running else "stopped"
    init = "initialised" if st.initialized else "not initialised"
    typer.echo(
        f"{state}; {init}; data {st.data_dir}; port {st.port}"
        + (f"; pid {st.pid}" if st.pid else "")
    )
    if not st.running:
        raise typer.Exit(3)


@db_app.command()
@friendly_errors
def url() -> None:
    """Print the connection URL (for psql, QGIS, ogr2ogr)."""
    st = cluster.status(load_settings())
    if st.url is None:
        typer.secho("error: the cluster is not initialised: run `iocmap db start`", err=True)
        raise typer.Exit(1)
    typer.echo(st.url)


@db_app.command("migrate")
@friendly_errors
def migrate_cmd(
    revision: str = typer.Argument("heads", help="Target revision"),
    down: bool = typer.Option(False, "--down", help="Downgrade to REVISION instead"),
) -> None:
    """Apply (or revert) the Alembic migrations."""
    settings = load_settings()
    cluster.ensure_running(settings)
    engine = make_engine(settings)
    try:
        if down:
            migrate.downgrade(engine, revision if revision != "heads" else "base")
        else:
            migrate.upgrade(engine, revision)
        typer.echo("at revision: " + ", ".join(sorted(migrate.current_heads(engine))) or "base")
    finally:
        engine.dispose()


@db_app.command()
@friendly_errors
def promote(
    data_dir: Path | None = typer.Option(
        None, help="Data directory of the standby (default: IOC_DB_DATA_DIR or STATE_DIR/pgdata)"
    ),
    port: int | None = typer.Option(None, help="Its port (default IOC_DB_PORT)"),
    url: str | None = typer.Option(
        None, help="URL of the standby as a superuser (default: the managed cluster's)"
    ),
) -> None:
    """Promote this machine's hot standby to primary (after the primary died).

    Runs `pg_ctl promote`, waits until the server accepts writes, and clears
    synchronous_standby_names so that commits do not wait for a standby it does not have.
    API replicas with a multi-host IOC_DATABASE_URL (target_session_attrs=read-write)
    reconnect to it by themselves.
    """
    settings = load_settings()
    data = data_dir or settings.pg_data_dir
    node = replication.Node("standby", data.parent, port or settings.db_port, data_path=data)
    replication.promote(settings, node, url=url)
    typer.echo(f"promoted: {data} now accepts writes on port {node.port}")


def register(app: typer.Typer) -> None:
    """Attach the `db` group."""
    app.add_typer(db_app, name="db")
