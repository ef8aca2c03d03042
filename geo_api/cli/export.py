"""`iocmap export-map`: the leaders' standalone, offline briefing map (one HTML file)."""

from __future__ import annotations

from pathlib import Path

import orjson
import typer
from sqlalchemy import Engine

from geo_api.cli.common import audit_cli, friendly_errors, load_settings, migrated_engine
from layers.errors import InvalidInputError
from layers.features import items as features
from layers.features import registry
from layers.features.items import parse_bbox
from web_map.briefing import (
    BASEMAP,
    DEFAULT_MAX_FEATURES,
    BriefingError,
    BriefingLayer,
    BriefingSummary,
    write_briefing,
)

LayersOpt = typer.Option(
    ..., "--layers", "-l", help="Comma-separated layer slugs, e.g. hospitals,schools"
)
OutOpt = typer.Option(Path("briefing.html"), "--out", "-o", help="HTML file to write")
LangOpt = typer.Option("vi", "--lang", help="vi (default) or en")
TitleOpt = typer.Option(None, "--title", help="Title shown on the map")
MaxOpt = typer.Option(5000, "--max-features", min=1, help="Features per layer at most")
BBoxOpt = typer.Option(None, "--bbox", help="minx,miny,maxx,maxy (WGS84)")


def load_briefing_layers(
    engine: Engine,
    slugs: list[str],
    lang: str = "vi",
    max_features: int = DEFAULT_MAX_FEATURES,
    bbox: tuple[float, float, float, float] | None = None,
) -> list[BriefingLayer]:
    """Read the basemap and the requested layers (each capped at max_features)."""
    wanted = list(dict.fromkeys([*BASEMAP, *slugs]))
    out: list[BriefingLayer] = []
    with engine.connect() as conn:
        for slug in wanted:
            try:
                info = registry.get_layer(conn, slug)
            except Exception:
                if slug in BASEMAP:
                    continue  # a database without the demo still exports the asked layers
                raise
            query = features.FeatureQuery(bbox=bbox, limit=max(1, max_features))
            page = features.query_features(conn, info, query)
            out.append(
                BriefingLayer(
                    slug=slug,
                    title=info.title_en if lang == "en" else info.title_vi,
                    style=info.default_style.model_dump(),
                    geometry_type=info.geometry_type,
                    synthetic=info.synthetic,
                    attribution=info.attribution,
                    features=[orjson.loads(doc) for doc in page.features_json],
                    truncated=page.next_after_id is not None,
                )
            )
    return out


def export_briefing(
    engine: Engine,
    slugs: list[str],
    out: Path,
    lang: str = "vi",
    title: str | None = None,
    max_features: int = DEFAULT_MAX_FEATURES,
    bbox: tuple[float, float, float, float] | None = None,
) -> BriefingSummary:
    """Export the layers (over the ward/province basemap) to a standalone HTML file."""
    layers = load_briefing_layers(engine, slugs, lang, max_features=max_features, bbox=bbox)
    try:
        return write_briefing(layers, out, lang=lang, title=title)
    except BriefingError as exc:
        raise InvalidInputError(str(exc), param=exc.param) from exc


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
        slugs = [s.strip() for s in layers.split(",") if s.strip()]
        settings = load_settings()
        with migrated_engine(settings) as engine:
            summary = export_briefing(
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
