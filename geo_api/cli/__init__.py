"""The `iocmap` command line: database, seeding, serving, and each package's commands."""

from __future__ import annotations

import typer

from geo_api.cli import cluster, db, export, h3, imports, query, serve, user, vision
from geo_api.cli import seed as seed_cmds

app = typer.Typer(
    name="iocmap",
    help="IOC Map — bản đồ điều hành thông minh (Nghệ An). Geospatial platform of the provincial IOC.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

for module in (db, seed_cmds, serve, imports, query, h3, vision, user, export, cluster):
    module.register(app)


def main() -> None:
    """Console-script entry point."""
    app()
