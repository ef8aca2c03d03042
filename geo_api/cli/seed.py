"""`iocmap seed demo`: real Nghệ An boundaries plus deterministic synthetic sector layers."""

from __future__ import annotations

import typer
from sqlalchemy import Engine

from geo_api.cli.common import friendly_errors, load_settings, migrated_engine
from layers.settings import Settings

seed_app = typer.Typer(help="Load demo data.", no_args_is_help=True)


def run_demo_seed(engine: Engine, settings: Settings, sectors: bool = True) -> None:
    """Seed layers, then the packages' demo extras (alert rules, sector data); prints changes."""
    from analytics import alerting, rules
    from layers.demo.seed import seed_demo

    report = seed_demo(engine, settings, progress=typer.echo)
    typer.echo(report.summary())
    if report.new_user_passwords:
        # Shown once: only the hash is stored.
        typer.secho("demo accounts (passwords are shown only now):", bold=True)
        for name, password in sorted(report.new_user_passwords.items()):
            typer.echo(f"  {name:20s} {password}")
    if settings.raster_demo:  # issue 20: synthetic DEM and flood depth, generated here
        from ingest.demo_rasters import seed_demo_rasters

        seed_demo_rasters(engine, settings, typer.echo)
    with engine.begin() as conn:
        alerting.install_rules(conn, rules.EXAMPLE_RULES)
    typer.echo(f"alert rules: {len(rules.EXAMPLE_RULES)} example rules installed")
    from vision.demo import DEMO_CAMERA, seed_demo_camera

    with engine.begin() as conn:
        wrote = seed_demo_camera(conn)
    typer.echo(f"camera {DEMO_CAMERA}: calibration and zones {'written' if wrote else 'unchanged'}")
    if sectors:
        run_sector_seed(engine, settings)


def run_sector_seed(engine: Engine, settings: Settings) -> None:
    """Sector indicators and news: every demo connector once against the simulators."""
    from ingest.simulators.demo import seed_sector_data

    typer.echo("sector systems: running the demo connectors against the simulators…")
    results = seed_sector_data(engine, settings, progress=typer.echo)
    from analytics.kpi_jobs import refresh_derived

    for rep in refresh_derived(engine):
        if rep.status == "refreshed":
            typer.echo(
                f"derived indicators from {rep.source}: {rep.inserted} new, {rep.updated} updated"
            )
    failed = [r.name for r in results if r.status == "failed"]
    if failed:
        typer.secho(f"sector connectors failed: {', '.join(failed)}", fg=typer.colors.YELLOW)


@seed_app.command("demo")
@friendly_errors
def demo(
    parcels: int | None = typer.Option(
        None, help="Number of land parcels (default IOC_DEMO_PARCELS)"
    ),
    sectors: bool = typer.Option(
        True, help="Also fill the sector KPIs and news from the simulated sector systems"
    ),
) -> None:
    """Seed the demo; running it twice changes nothing."""
    settings = load_settings()
    if parcels is not None:
        settings = settings.model_copy(update={"demo_parcels": parcels})
    with migrated_engine(settings) as engine:
        run_demo_seed(engine, settings, sectors=sectors)


def register(app: typer.Typer) -> None:
    """Attach the `seed` group."""
    app.add_typer(seed_app, name="seed")
