"""A QGIS project of the layers the caller may read: OAPIF and vector tiles, styled."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from geo_api import qgis_project
from geo_api.deps import ConnDep, SettingsDep
from geo_api.i18n import request_lang, t
from geo_api.security import CurrentUser, authorize_layers, readable
from layers.errors import InvalidInputError, NotFoundError
from layers.features import registry
from layers.features.tiles import MAX_ZOOM

router = APIRouter(prefix="/api/qgis", tags=["qgis"])
QGZ_TYPE = "application/vnd.qgis.qgz"


@router.get(
    "/project.qgz",
    summary="A QGIS project (.qgz) of the chosen layers",
    responses={200: {"content": {QGZ_TYPE: {}}}},
)
def project(
    request: Request,
    conn: ConnDep,
    settings: SettingsDep,
    user: CurrentUser,
    layers: Annotated[
        str | None,
        Query(description="Comma-separated slugs (default: every layer the caller may read)"),
    ] = None,
    crs: Annotated[int, Query(description="Project CRS: 3857 (default) or 4326")] = 3857,
    lang: Annotated[
        Literal["vi", "en"] | None, Query(description="Language of titles (default: the caller's)")
    ] = None,
    authcfg: Annotated[
        str,
        Query(
            pattern=qgis_project.AUTHCFG_RE.pattern,
            description="Id of the QGIS authentication configuration restricted layers use",
        ),
    ] = qgis_project.DEFAULT_AUTHCFG,
) -> Response:
    """Every chosen layer as an OGC API – Features layer styled like the web map, grouped by
    sector; dense layers also as vector tiles; restricted layers carry `authcfg`."""
    if crs not in qgis_project.PROJECT_CRS:
        raise InvalidInputError(
            f"crs {crs} is not offered; use 3857 or 4326",
            param="crs",
            i18n="err.qgis.crs_not_offered",
            crs=crs,
        )
    catalogue = registry.list_layers(conn)
    by_slug = {info.slug: info for info in catalogue}
    if layers is not None:
        slugs = [s.strip() for s in layers.split(",") if s.strip()]
        if not slugs:
            raise InvalidInputError(
                "layers names no layer", param="layers", i18n="err.styles.layers_names_no_layer"
            )
        authorize_layers(request, slugs, "layers")
        missing = [s for s in slugs if s not in by_slug]
        if missing:
            raise NotFoundError(
                f"layer '{missing[0]}' does not exist",
                layer=missing[0],
                i18n="err.routers_tiles.layer_does_not_exist",
                slug=missing[0],
            )
        infos = [by_slug[s] for s in dict.fromkeys(slugs)]
    else:
        infos = [i for i in readable(user, catalogue) if i.kind == "vector"]
        authorize_layers(request, [i.slug for i in infos], "layers")
    language = lang or request_lang(request)
    opts = qgis_project.ProjectOptions(
        base_url=str(request.base_url).rstrip("/"),
        lang=language,
        crs=crs,
        authcfg=authcfg,
        dense_min_features=settings.qgis_dense_min_features,
        page_size=settings.features_max_limit,
        title=t(language, "qgis.title"),
    )
    province = by_slug.get("admin_province")
    xml = qgis_project.project_xml(
        infos,
        lambda info: info.visibility.access != "public",
        opts,
        lambda key: t(language, key),
        province.bbox if province else None,
        MAX_ZOOM,
    )
    return Response(
        qgis_project.qgz(xml),
        media_type=QGZ_TYPE,
        headers={"content-disposition": 'attachment; filename="iocmap.qgz"'},
    )
