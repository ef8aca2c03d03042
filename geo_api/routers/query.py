"""Spatial queries for planners under /api/query; every result exports as GeoJSON, CSV or GPKG."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from geo_api.deps import ConnDep, SettingsDep
from geo_api.security import authorize_layers
from layers.errors import InvalidInputError
from layers.features import queries

router = APIRouter(prefix="/api/query", tags=["query"])

Format = Literal["geojson", "csv", "gpkg", "parquet", "fgb"]
FormatQuery = Annotated[
    Format, Query(description="geojson (default), csv, gpkg, parquet (GeoParquet) or fgb")
]


def _no_nul(value: dict[str, str]) -> dict[str, str]:
    for k, v in value.items():
        if "\x00" in k or "\x00" in v:
            # a typed error: its message is translated at the edge (geo_api.errors)
            raise PydanticCustomError(
                "nul_bytes", "NUL bytes are not allowed in filter names or values"
            )
    return value


Where = Annotated[dict[str, str], AfterValidator(_no_nul)]


class _Body(BaseModel):
    # Infinite or NaN numbers (1e400) are refused at validation, naming the field.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    layer: str = Field(description="Layer slug")
    where: Where = Field(default_factory=dict, description="Property equality filters")

    def layer_slugs(self) -> list[str]:
        """Every layer this request reads (what the access check decides on)."""
        other = getattr(self, "other_layer", None)
        return [self.layer] if other is None else [self.layer, other]


class _Limited(_Body):
    limit: int | None = Field(default=None, ge=1, description="Rows at most (capped)")


class WithinBody(_Limited):
    """Features inside an admin unit (by code) or a drawn GeoJSON polygon."""

    admin_code: str | None = None
    polygon: dict[str, Any] | None = None


class RadiusBody(_Limited):
    """Features within radius_m metres of a lon/lat point."""

    lon: float
    lat: float
    radius_m: float


class NearLayerBody(_Limited):
    """Features within radius_m metres of any feature of other_layer."""

    other_layer: str
    radius_m: float
    other_where: Where = Field(default_factory=dict)


class NearestBody(_Body):
    """The k features nearest to a lon/lat point."""

    lon: float
    lat: float
    k: int = Field(default=5, ge=1, le=1000)


class PerCommuneBody(_Body):
    """Counts (and sums) per commune, per `per` inhabitants."""

    sum_property: str | None = None
    per: float = Field(default=10_000, gt=0)


class GapsBody(_Body):
    """Communes with no feature within radius_m metres."""

    radius_m: float


class BufferBody(_Limited):
    """Geodesic buffers of a layer, optionally dissolved."""

    radius_m: float
    dissolve: bool = False


class IntersectionBody(_Limited):
    """Intersection of a layer with another (optionally buffered) layer."""

    other_layer: str
    buffer_m: float | None = None
    other_where: Where = Field(default_factory=dict)


def _limit(body: _Limited, cap: int) -> int:
    return min(body.limit or cap, cap)


def _respond(result: queries.QueryResult, fmt: Format) -> Response:
    headers = {
        "X-Result-Count": str(len(result)),
        "X-Result-Truncated": str(result.truncated).lower(),
    }
    if fmt != "geojson":
        headers["Content-Disposition"] = f'attachment; filename="{result.name}.{fmt}"'
    # A result is already in memory (capped at query_max_results rows), so it goes whole.
    data = queries.export(result, fmt)
    return Response(data, media_type=queries.EXPORT_FORMATS[fmt], headers=headers)


@router.post("/within", summary="Features within an admin unit or a drawn polygon")
def within(
    request: Request,
    body: WithinBody,
    conn: ConnDep,
    settings: SettingsDep,
    format: FormatQuery = "geojson",
) -> Response:
    """Give exactly one of admin_code or polygon (GeoJSON, WGS84)."""
    authorize_layers(request, body.layer_slugs())
    limit = _limit(body, settings.query_max_results)
    if (body.admin_code is None) == (body.polygon is None):
        raise InvalidInputError(
            "give exactly one of admin_code or polygon",
            param="admin_code",
            i18n="err.query.give_exactly_one_admin_code",
        )
    if body.admin_code is not None:
        result = queries.within_admin(conn, body.layer, body.admin_code, limit, body.where)
    else:
        assert body.polygon is not None
        result = queries.within_polygon(conn, body.layer, body.polygon, limit, body.where)
    return _respond(result, format)


@router.post("/radius", summary="Features within a radius (metres) of a point")
def radius(
    request: Request,
    body: RadiusBody,
    conn: ConnDep,
    settings: SettingsDep,
    format: FormatQuery = "geojson",
) -> Response:
    """Nearest first, each with distance_m."""
    authorize_layers(request, body.layer_slugs())
    result = queries.within_radius(
        conn,
        body.layer,
        body.lon,
        body.lat,
        body.radius_m,
        _limit(body, settings.query_max_results),
        body.where,
    )
    return _respond(result, format)


@router.post("/near-layer", summary="Features within a radius (metres) of another layer")
def near_layer(
    request: Request,
    body: NearLayerBody,
    conn: ConnDep,
    settings: SettingsDep,
    format: FormatQuery = "geojson",
) -> Response:
    """E.g. schools within 2 km of a hospital; each row names the nearest one."""
    authorize_layers(request, body.layer_slugs())
    result = queries.near_layer(
        conn,
        body.layer,
        body.other_layer,
        body.radius_m,
        _limit(body, settings.query_max_results),
        body.where,
        body.other_where,
    )
    return _respond(result, format)


@router.post("/nearest", summary="The k nearest features to a point")
def nearest(
    request: Request, body: NearestBody, conn: ConnDep, format: FormatQuery = "geojson"
) -> Response:
    """KNN on the index, ranked by true distance in metres."""
    authorize_layers(request, body.layer_slugs())
    result = queries.nearest(conn, body.layer, body.lon, body.lat, body.k, body.where)
    return _respond(result, format)


@router.post("/per-commune", summary="Counts and sums per commune, per N inhabitants")
def per_commune(
    request: Request, body: PerCommuneBody, conn: ConnDep, format: FormatQuery = "geojson"
) -> Response:
    """E.g. schools per 10,000 people by commune."""
    authorize_layers(request, body.layer_slugs())
    result = queries.per_commune(conn, body.layer, body.sum_property, body.per, body.where)
    return _respond(result, format)


@router.post("/gaps", summary="Communes with no feature within a radius (metres)")
def gaps(
    request: Request, body: GapsBody, conn: ConnDep, format: FormatQuery = "geojson"
) -> Response:
    """E.g. communes with no health station within 5 km of their representative point."""
    authorize_layers(request, body.layer_slugs())
    result = queries.gaps(conn, body.layer, body.radius_m, body.where)
    return _respond(result, format)


@router.post("/buffer", summary="Geodesic buffers of a layer")
def buffer(
    request: Request,
    body: BufferBody,
    conn: ConnDep,
    settings: SettingsDep,
    format: FormatQuery = "geojson",
) -> Response:
    """One buffer per feature, or one dissolved area."""
    authorize_layers(request, body.layer_slugs())
    result = queries.buffer_layer(
        conn,
        body.layer,
        body.radius_m,
        body.dissolve,
        _limit(body, settings.query_max_results),
        body.where,
    )
    return _respond(result, format)


@router.post("/intersection", summary="Intersection of two layers")
def intersection(
    request: Request,
    body: IntersectionBody,
    conn: ConnDep,
    settings: SettingsDep,
    format: FormatQuery = "geojson",
) -> Response:
    """Pairs of intersecting features with the shared geometry and its area in m²."""
    authorize_layers(request, body.layer_slugs())
    result = queries.intersection(
        conn,
        body.layer,
        body.other_layer,
        _limit(body, settings.query_max_results),
        body.buffer_m,
        body.where,
        body.other_where,
    )
    return _respond(result, format)
