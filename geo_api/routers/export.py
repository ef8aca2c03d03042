"""The offline HTML briefing (`export-map`) from the page: the layers the caller may read."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from geo_api.deps import ConnDep, EngineDep, SettingsDep
from geo_api.security import current_user, info_allowed
from layers.auth.users import User
from layers.errors import InvalidInputError, PermissionDeniedError
from layers.features import registry
from layers.features.items import parse_bbox

router = APIRouter(prefix="/api/export", tags=["export"])
UserDep = Annotated[User | None, Depends(current_user)]


@router.get(
    "/briefing",
    summary="Standalone offline HTML briefing map of the given layers",
    responses={200: {"content": {"text/html": {}}}},
)
async def briefing(
    conn: ConnDep,
    engine: EngineDep,
    settings: SettingsDep,
    user: UserDep,
    layers: Annotated[str, Query(description="Comma-separated layer slugs")],
    lang: Annotated[str, Query(pattern="^(vi|en)$")] = "vi",
    title: Annotated[str | None, Query(max_length=200)] = None,
    bbox: Annotated[str | None, Query(description="minx,miny,maxx,maxy (WGS84)")] = None,
) -> Response:
    """One HTML file with Leaflet inlined and no tiles: opens offline on any laptop."""
    from geo_api.cli.export import load_briefing_layers
    from web_map.briefing import build_briefing_html

    slugs = list(dict.fromkeys(s.strip() for s in layers.split(",") if s.strip()))
    if not slugs:
        raise InvalidInputError(
            "layers must name at least one layer",
            param="layers",
            i18n="err.export.layers_must_name_at_least",
        )
    if len(slugs) > settings.export_max_layers:
        raise InvalidInputError(
            f"at most {settings.export_max_layers} layers per briefing",
            param="layers",
            i18n="err.export.at_most_layers_per_briefing",
            export_max_layers=settings.export_max_layers,
        )
    for slug in slugs:
        info = registry.get_layer(conn, slug)
        if not info_allowed(user, info):
            raise PermissionDeniedError(
                f"layer '{slug}' is restricted",
                layer=slug,
                i18n="err.export.layer_restricted",
                slug=slug,
            )
    box = parse_bbox(bbox)

    def build() -> str:
        loaded = load_briefing_layers(
            engine, slugs, lang, max_features=settings.export_max_features, bbox=box
        )
        return build_briefing_html(loaded, lang=lang, title=title)

    page = await run_in_threadpool(build)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
    name = quote(f"iocmap-briefing-{stamp}.html")
    return Response(
        page,
        media_type="text/html; charset=utf-8",
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{name}"},
    )
