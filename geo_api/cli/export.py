"""`iocmap export-map`: the leaders' standalone, offline briefing map (one HTML file)."""

from __future__ import annotations

from pathlib import Path

import typer

from geo_api.cli.common import audit_cli, friendly_errors, load_settings, migrated_engine
from layers.features import parse_bbox

LayersOpt = typer.Option(
    ..., "--layers", "-l", help="Comma-separated layer slugs, e.g. hospitals,schools"
)
OutOpt = typer.Option(Path("briefing.html"), "--out", "-o", help="HTML file to write")
LangOpt = typer.Option("vi", "--lang", help="vi (default) or en")
TitleOpt = typer.Option(None, "--title", help="Title shown on the map")
MaxOpt = typer.Option(5000, "--max-features", min=1, help="Features per layer at most")
BBoxOpt = typer.Option(None, "--bbox", help="minx,miny,maxx,maxy (WGS84)")


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the main app."""

    @app.command("export-map")
    @friendly_errors
    def export_map(
        layers: str = LayersOpt,
        out: Path = OutOpt,
        lang: str = LangOpt,
        title: str | None = TitleOpt,
        max_features: int = MaxOpt,
        bbox: str | None = BBoxOpt,
    ) -> None:
        """Write a standalone offline HTML briefing map (wards and province as basemap)."""
        from web_map.briefing import write_briefing

        slugs = [s.strip() for s in layers.split(",") if s.strip()]
        settings = load_settings()
        with migrated_engine(settings) as engine:
            summary = write_briefing(
                engine,
                slugs,
                out,
                lang=lang,
                title=title,
                max_features=max_features,
                bbox=parse_bbox(bbox),
            )
            audit_cli(engine, "export.briefing", {"layers": slugs, "out": str(out)})
        counts = ", ".join(f"{k}={v}" for k, v in summary.layers.items())
        typer.echo(f"wrote {summary.path} ({summary.size_bytes / 1024:.0f} KiB): {counts}")
        if summary.truncated:
            typer.echo(f"capped at --max-features: {', '.join(summary.truncated)}")
