"""The layer catalog and each layer's features as GeoJSON."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy import Engine

from geo_api.deps import ConnDep, EngineDep, SettingsDep
from geo_api.schemas import LayerOut
from geo_api.security import CurrentUser, readable
from layers.errors import InvalidInputError
from layers.features import columnar, ogc, registry
from layers.features import items as features
from layers.features.standby import replayed

router = APIRouter(prefix="/api/layers", tags=["layers"])

RESERVED_PARAMS = {"bbox", "limit", "after", "datetime", "format", "sortby", "offset"}
FeaturesFormat = Literal["geojson", "parquet", "fgb"]


@router.get("", response_model=list[LayerOut], summary="Layer catalog with counts and bbox")
def list_layers(conn: ConnDep, user: CurrentUser) -> list[LayerOut]:
    """Every layer in the catalog the caller may read, with its feature count and bbox."""
    return [LayerOut.from_info(info) for info in readable(user, registry.list_layers(conn))]


@router.get("/{slug}", response_model=LayerOut, summary="One layer's catalog entry")
def get_layer(slug: str, conn: ConnDep) -> LayerOut:
    """One layer's catalog entry."""
    info = registry.get_layer(conn, slug)
    stats = registry.layer_stats(conn).get(info.id)
    if stats:
        info.feature_count, info.bbox, info.time_extent = stats
    else:
        info.feature_count = 0
    return LayerOut.from_info(info)


@router.get(
    "/{slug}/features",
    summary="Features as a GeoJSON FeatureCollection",
    responses={
        200: {
            "content": {
                "application/geo+json": {},
                "application/vnd.apache.parquet": {},
                "application/flatgeobuf": {},
            }
        }
    },
)
def layer_features(
    slug: str,
    request: Request,
    conn: ConnDep,
    engine: EngineDep,
    settings: SettingsDep,
    bbox: Annotated[str | None, Query(description="minx,miny,maxx,maxy in WGS84")] = None,
    limit: Annotated[
        int | None, Query(ge=1, le=2**31 - 1, description="Features per page (max 10,000)")
    ] = None,
    after: Annotated[
        int | None,
        Query(ge=0, le=2**63 - 1, description="Cursor from the previous page's next link"),
    ] = None,
    when: Annotated[
        str | None,
        Query(
            alias="datetime",
            description="Instant or interval a/b ('..' open), as OGC API datetime; time layers only",
        ),
    ] = None,
    format: Annotated[
        FeaturesFormat,
        Query(
            description="geojson (a page, default), or every matching feature as parquet "
            "(GeoParquet) or fgb (FlatGeobuf), streamed; `limit` then caps the rows"
        ),
    ] = "geojson",
    sortby: Annotated[
        str | None, Query(description="Sort keys, e.g. name,-beds; sorted pages use offset")
    ] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000, description="Rows to skip (sorted)")] = 0,
) -> Response:
    """A page of features; other query parameters are property (or source_key) equality filters."""
    info = registry.get_layer(conn, slug)
    interval = ogc.parse_datetime(when) if when else None
    if interval is not None and not info.time_field:
        raise InvalidInputError(
            f"layer '{info.slug}' has no time field; datetime cannot filter it",
            param="datetime",
            i18n="err.layers.layer_has_no_time_field",
            layer=info.slug,
        )
    equals = {k: v for k, v in request.query_params.items() if k not in RESERVED_PARAMS}
    query = features.FeatureQuery(
        bbox=features.parse_bbox(bbox),
        limit=1,
        after_id=after,
        equals=equals,
        time_from=interval[0] if interval else None,
        time_to=interval[1] if interval else None,
        sortby=ogc.parse_sortby(sortby, info),
        offset=offset,
    )
    if format != "geojson":
        return _columnar(engine, info, query, format, limit, settings.export_max_rows)
    query.limit = features.check_limit(
        limit if limit is not None else settings.features_default_limit, settings.features_max_limit
    )
    standby: Engine | None = getattr(request.app.state, "read_engine", None)
    if standby is None:
        page = features.query_features(conn, info, query)
    else:
        # A hot standby answers once it has replayed the version the primary has (issue 23).
        with standby.connect() as read_conn:
            on_standby = replayed(read_conn, info.id, info.data_version)
            page = features.query_features(read_conn if on_standby else conn, info, query)
    links: list[dict[str, Any]] = []
    if page.next_after_id is not None:
        cursor = "offset" if query.sortby else "after"
        params = [(k, v) for k, v in request.query_params.multi_items() if k != cursor]
        params.append((cursor, str(page.next_after_id)))
        links.append(
            {
                "rel": "next",
                "type": "application/geo+json",
                "href": str(request.url.replace(query=urlencode(params))),
            }
        )
    import orjson

    head = orjson.dumps(
        {"type": "FeatureCollection", "numberReturned": len(page.features_json), "links": links}
    ).decode()
    body = head[:-1] + ',"features":[' + ",".join(page.features_json) + "]}"
    return Response(body, media_type="application/geo+json")


def _columnar(
    engine: Engine,
    info: registry.LayerInfo,
    query: features.FeatureQuery,
    fmt: FeaturesFormat,
    limit: int | None,
    max_rows: int,
) -> Response:
    rows = features.check_limit(limit if limit is not None else max_rows, max_rows)
    # Checks (layer, filters) run now, so a bad request is a 4xx before any byte is sent.
    features.feature_conditions(info, query)
    batches = columnar.stream_feature_batches(engine, info, query, rows)
    schema = columnar.layer_schema(info)
    if fmt == "parquet":
        body = columnar.stream_geoparquet(batches, schema, columnar.geometry_types_of(info))
    else:
        body = columnar.stream_flatgeobuf(batches, schema, info.slug)
    headers = {"Content-Disposition": f'attachment; filename="{info.slug}.{fmt}"'}
    return StreamingResponse(body, media_type=columnar.MEDIA_TYPES[fmt], headers=headers)
