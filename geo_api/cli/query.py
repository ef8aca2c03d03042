"""`iocmap query …`: the planners' spatial queries from the shell, exported to a file or stdout."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import orjson
import typer
from sqlalchemy import Connection

from geo_api.cli.common import audit_cli, friendly_errors, load_settings, migrated_engine
from layers.errors import InvalidInputError
from layers.features import queries

query_app = typer.Typer(help="Spatial queries (distances in metres).", no_args_is_help=True)

WhereOpt = typer.Option([], "--where", "-w", help="Property filter NAME=VALUE (repeatable)")
FormatOpt = typer.Option("geojson", "--format", "-f", help="geojson, csv or gpkg")
OutOpt = typer.Option(None, "--out", "-o", help="Output file (default: stdout; required for gpkg)")
LimitOpt = typer.Option(10_000, "--limit", help="Rows at most")
PolygonOpt = typer.Option(None, help="GeoJSON file with a Polygon")
OfWhereOpt = typer.Option([], "--of-where", help="Filter on the other layer (NAME=VALUE)")
WithWhereOpt = typer.Option([], "--with-where", help="Filter on the other layer (NAME=VALUE)")


def _where(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise InvalidInputError(f"--where must be NAME=VALUE; got {item!r}", param="where")
        out[name] = value
    return out


def _run(build: Callable[[Connection], queries.QueryResult], fmt: str, out: Path | None) -> None:
    settings = load_settings()
    if fmt == "gpkg" and out is None:
        raise InvalidInputError("--out is required for gpkg", param="out")
    with migrated_engine(settings) as engine:
        with engine.connect() as conn:
            result = build(conn)
        audit_cli(
            engine, "export.query", {"rows": len(result), "format": fmt, "out": str(out or "-")}
        )
    data = queries.export(result, fmt)
    if out is None:
        sys.stdout.buffer.write(data + (b"\n" if fmt == "geojson" else b""))
    else:
        out.write_bytes(data)
        typer.echo(
            f"{len(result)} rows -> {out}" + (" (truncated)" if result.truncated else ""), err=True
        )


@query_app.command("within")
@friendly_errors
def within(
    layer: str,
    admin_code: str | None = typer.Option(None, help="Admin unit code (e.g. 17479)"),
    polygon: Path | None = PolygonOpt,
    where: list[str] = WhereOpt,
    limit: int = LimitOpt,
    fmt: str = FormatOpt,
    out: Path | None = OutOpt,
) -> None:
    """Features of LAYER inside an admin unit or a polygon."""
    if (admin_code is None) == (polygon is None):
        raise InvalidInputError("give exactly one of --admin-code or --polygon", param="admin_code")

    def build(conn: Connection) -> queries.QueryResult:
        if admin_code is not None:
            return queries.within_admin(conn, layer, admin_code, limit, _where(where))
        assert polygon is not None
        doc = orjson.loads(polygon.read_bytes())
        if doc.get("type") == "FeatureCollection":
            doc = doc["features"][0]
        return queries.within_polygon(conn, layer, doc, limit, _where(where))

    _run(build, fmt, out)


@query_app.command("radius")
@friendly_errors
def radius(
    layer: str,
    lon: float = typer.Option(..., help="Longitude (WGS84)"),
    lat: float = typer.Option(..., help="Latitude (WGS84)"),
    radius_m: float = typer.Option(..., "--radius-m", help="Radius in metres"),
    where: list[str] = WhereOpt,
    limit: int = LimitOpt,
    fmt: str = FormatOpt,
    out: Path | None = OutOpt,
) -> None:
    """Features of LAYER within a radius of a point."""
    _run(
        lambda c: queries.within_radius(c, layer, lon, lat, radius_m, limit, _where(where)),
        fmt,
        out,
    )


@query_app.command("near-layer")
@friendly_errors
def near_layer(
    layer: str,
    other: str = typer.Option(..., "--of", help="The other layer (e.g. hospitals)"),
    radius_m: float = typer.Option(..., "--radius-m", help="Radius in metres"),
    where: list[str] = WhereOpt,
    other_where: list[str] = OfWhereOpt,
    limit: int = LimitOpt,
    fmt: str = FormatOpt,
    out: Path | None = OutOpt,
) -> None:
    """Features of LAYER within a radius of any feature of another layer."""
    _run(
        lambda c: queries.near_layer(
            c, layer, other, radius_m, limit, _where(where), _where(other_where)
        ),
        fmt,
        out,
    )


@query_app.command("nearest")
@friendly_errors
def nearest(
    layer: str,
    lon: float = typer.Option(..., help="Longitude (WGS84)"),
    lat: float = typer.Option(..., help="Latitude (WGS84)"),
    k: int = typer.Option(5, help="How many"),
    where: list[str] = WhereOpt,
    fmt: str = FormatOpt,
    out: Path | None = OutOpt,
) -> None:
    """The k features of LAYER nearest to a point."""
    _run(lambda c: queries.nearest(c, layer, lon, lat, k, _where(where)), fmt, out)


@query_app.command("per-commune")
@friendly_errors
def per_commune(
    layer: str,
    sum_property: str | None = typer.Option(None, "--sum", help="Numeric property to sum"),
    per: float = typer.Option(10_000, help="Normalise per this many inhabitants"),
    where: list[str] = WhereOpt,
    fmt: str = FormatOpt,
    out: Path | None = OutOpt,
) -> None:
    """Counts (and sums) of LAYER per commune, per N inhabitants."""
    _run(lambda c: queries.per_commune(c, layer, sum_property, per, _where(where)), fmt, out)


@query_app.command("gaps")
@friendly_errors
def gaps(
    layer: str,
    radius_m: float = typer.Option(..., "--radius-m", help="Radius in metres"),
    where: list[str] = WhereOpt,
    fmt: str = FormatOpt,
    out: Path | None = OutOpt,
) -> None:
    """Communes with no feature of LAYER within a radius."""
    _run(lambda c: queries.gaps(c, layer, radius_m, _where(where)), fmt, out)


@query_app.command("buffer")
@friendly_errors
def buffer(
    layer: str,
    radius_m: float = typer.Option(..., "--radius-m", help="Radius in metres"),
    dissolve: bool = typer.Option(False, help="Merge into one area"),
    where: list[str] = WhereOpt,
    limit: int = LimitOpt,
    fmt: str = FormatOpt,
    out: Path | None = OutOpt,
) -> None:
    """Geodesic buffers of LAYER."""
    _run(
        lambda c: queries.buffer_layer(c, layer, radius_m, dissolve, limit, _where(where)),
        fmt,
        out,
    )


@query_app.command("intersection")
@friendly_errors
def intersection(
    layer: str,
    other: str = typer.Option(..., "--with", help="The other layer"),
    buffer_m: float | None = typer.Option(None, "--buffer-m", help="Buffer the other layer"),
    where: list[str] = WhereOpt,
    other_where: list[str] = WithWhereOpt,
    limit: int = LimitOpt,
    fmt: str = FormatOpt,
    out: Path | None = OutOpt,
) -> None:
    """Intersection of LAYER with another layer."""
    _run(
        lambda c: queries.intersection(
            c, layer, other, limit, buffer_m, _where(where), _where(other_where)
        ),
        fmt,
        out,
    )


def register(app: typer.Typer) -> None:
    """Attach the `query` group."""
    app.add_typer(query_app, name="query")
