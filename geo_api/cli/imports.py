"""`iocmap import PATH --layer SLUG …` and `iocmap ingest run [NAME]`: files and connectors."""

from __future__ import annotations

from pathlib import Path

import typer

from geo_api.cli.common import audit_cli, friendly_errors, load_settings, migrated_engine
from layers.errors import InvalidInputError
from layers.settings import Settings

ingest_app = typer.Typer(
    help="Sector connectors (HTTP pull, drop folder, MQTT).", no_args_is_help=True
)


@friendly_errors
def import_cmd(
    path: Path | None = typer.Argument(
        None, help="File to import (gpkg, shp, zip, geojson, kml, kmz, fgb, dxf, csv, xlsx)"
    ),
    layer: str | None = typer.Option(None, "--layer", help="Target layer slug (created if new)"),
    source_layer: str | None = typer.Option(
        None, "--source-layer", help="GeoPackage layer or XLSX sheet"
    ),
    crs: str | None = typer.Option(None, "--crs", help="CRS of the file, e.g. EPSG:9208"),
    key: str | None = typer.Option(None, "--key", help="Field that identifies a row (for upsert)"),
    mode: str = typer.Option("append", "--mode", help="append | upsert | replace"),
    encoding: str | None = typer.Option(
        None, "--encoding", help="Text encoding (e.g. cp1258, tcvn3)"
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and preview; write nothing"),
    allow_empty: bool = typer.Option(
        False, "--allow-empty", help="Let a replace with no valid row empty the layer"
    ),
    force: bool = typer.Option(
        False, "--force", help="Let a replace drop most of the layer's rows"
    ),
    show_rejects: int | None = typer.Option(
        None, "--show-rejects", metavar="BATCH", help="List the rejected rows of a batch"
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON"),
    role: str | None = typer.Option(
        None,
        "--role",
        help="Rasters: elevation | flood_depth | imagery | population | generic"
        " (default: guessed from the name); population rasters (people per pixel) count"
        " the people under a flood",
    ),
) -> None:
    """Import a GIS file or table into a layer, atomically; rejected rows are quarantined."""
    settings = load_settings()
    if show_rejects is not None:
        from layers.ingest.batches import list_rejects

        with migrated_engine(settings) as engine, engine.connect() as conn:
            rows = list_rejects(conn, show_rejects, limit=100_000)
        if as_json:
            import orjson

            typer.echo(orjson.dumps(rows).decode())
            return
        if not rows:
            typer.echo(f"batch {show_rejects}: no rejected rows")
        for r in rows:
            typer.echo(f"row {r['row']:>8}  {r['reason']:<24} {r['detail']}")
        return
    if path is None or layer is None:
        raise InvalidInputError("give PATH and --layer SLUG (or --show-rejects BATCH)")
    from ingest.raster import is_raster_path

    if is_raster_path(path):  # issue 20: GeoTIFF/COG and other GDAL rasters
        _import_raster(settings, path, layer, crs, dry_run, as_json, role)
        return
    if mode not in ("append", "upsert", "replace"):
        raise InvalidInputError(f"--mode must be append, upsert or replace; got {mode!r}")
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from ingest.pipeline import ImportOptions, run_import

    opts = ImportOptions(
        path=path,
        layer=layer,
        source_layer=source_layer,
        crs=crs,
        key=key,
        mode=mode,
        encoding=encoding,
        dry_run=dry_run,
        allow_empty=allow_empty,
        force=force,
        actor="cli",
    )
    with (
        migrated_engine(settings) as engine,
        Progress(
            TextColumn("{task.description:<10}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            transient=True,
        ) as bar,
    ):
        task = bar.add_task("read", total=None)

        def progress(stage: str, done: int, total: int) -> None:
            bar.update(task, description=stage, completed=done, total=total or None)

        report = run_import(engine, settings, opts, progress=progress)
        audit_cli(
            engine,
            "import.dry_run" if dry_run else "import",
            {"path": str(path), "layer": layer, "mode": mode},
        )
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
    else:
        typer.echo(report.summary())
        if dry_run:
            for row in report.preview:
                typer.echo(f"  row {row['row']}: {row['properties']} {row['geometry_wkt'][:80]}")


def _import_raster(
    settings: Settings,
    path: Path,
    layer: str,
    crs: str | None,
    dry_run: bool,
    as_json: bool,
    role: str | None = None,
) -> None:
    """Import a raster file as a COG layer (replacing the layer's raster atomically)."""
    from pydantic import ValidationError

    from ingest.raster import RasterImportOptions, import_raster

    try:
        opts = RasterImportOptions(
            path=path, layer=layer, crs=crs, dry_run=dry_run, actor="cli", role=role
        )
    except ValidationError as exc:
        raise InvalidInputError(
            f"--role must be elevation, flood_depth, imagery, population or generic; got {role!r}",
            param="role",
        ) from exc
    with migrated_engine(settings) as engine:
        report = import_raster(engine, settings, opts)
        audit_cli(
            engine,
            "import.dry_run" if dry_run else "import",
            {"path": str(path), "layer": layer, "kind": "raster"},
        )
    if as_json:
        import orjson

        typer.echo(orjson.dumps(report.as_dict()).decode())
    else:
        typer.echo(report.summary())


@ingest_app.command("run")
@friendly_errors
def ingest_run(
    name: str | None = typer.Argument(None, help="Connector name (all when omitted)"),
    config: Path | None = typer.Option(
        None, "--config", help="Connectors YAML (default IOC_INGEST_CONNECTORS_FILE)"
    ),
) -> None:
    """Run sector connectors once (each run records a batch; failures retry with backoff)."""
    settings = load_settings()
    from ingest.connectors.config import load_config
    from ingest.connectors.runner import run_connectors

    cfg = load_config(config or settings.ingest_connectors_file)
    with migrated_engine(settings) as engine:
        results = run_connectors(engine, settings, cfg, name)
    for res in results:
        typer.echo(res.summary())
    if any(r.status == "failed" for r in results):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Attach `import` and the `ingest` group."""
    app.command("import")(import_cmd)
    app.add_typer(ingest_app, name="ingest")
