"""`iocmap h3 refresh [--full] [--layer SLUG]`: bring H3 aggregates up to date by hand."""

from __future__ import annotations

import typer

from analytics import alerting, h3jobs, rules
from geo_api.cli.common import friendly_errors, load_settings, migrated_engine

h3_app = typer.Typer(help="H3 aggregates (hexagons over time).", no_args_is_help=True)


@h3_app.command()
@friendly_errors
def refresh(
    full: bool = typer.Option(False, "--full", help="Recompute everything, not only changes"),
    layer: str | None = typer.Option(None, "--layer", help="Only this layer (slug)"),
) -> None:
    """Refresh stale aggregates incrementally (or fully with --full)."""
    with migrated_engine(load_settings()) as engine:
        if layer:
            one = h3jobs.refresh_layer(engine, layer, full=full)
            reports = [one] if one else []
        else:
            reports = h3jobs.refresh_all(engine, full=full)
        for r in reports:
            typer.echo(
                f"{r.layer}: {r.mode}; changed {r.changed}, deleted {r.deleted}, "
                f"rows written {r.rows_written}"
            )


@h3_app.command("install-rules")
@friendly_errors
def install_rules() -> None:
    """Store the example alert rules (reports per hex, camera offline, traffic p95, water level)."""
    with migrated_engine(load_settings()) as engine, engine.begin() as conn:
        ids = alerting.install_rules(conn, rules.EXAMPLE_RULES)
    typer.echo(f"{len(ids)} rules stored: {', '.join(r.slug for r in rules.EXAMPLE_RULES)}")


@h3_app.command()
@friendly_errors
def evaluate() -> None:
    """Evaluate every enabled alert rule once."""
    settings = load_settings()
    with migrated_engine(settings) as engine:
        rep = alerting.evaluate_all(engine, settings=settings)
    typer.echo(
        f"{rep.evaluated} rules evaluated; opened {len(rep.opened)}, "
        f"refreshed {len(rep.refreshed)}, resolved {len(rep.resolved)}"
    )
    for slug, err in rep.errors.items():
        typer.echo(f"  {slug}: not evaluated: {err}")


def register(app: typer.Typer) -> None:
    """Attach the `h3` group."""
    app.add_typer(h3_app, name="h3")
