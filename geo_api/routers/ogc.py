"""OGC API – Features (Part 1 Core, Part 2 CRS, Part 3 CQL2 filtering) at /ogc."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import Connection, Engine
from starlette.concurrency import run_in_threadpool

from geo_api import layer_state
from geo_api.deps import ConnDep, SettingsDep
from geo_api.security import CurrentUser, readable
from layers.errors import InvalidInputError, NotFoundError
from layers.features import cql, ogc, registry, tiles
from layers.features import items as features
from layers.features.registry import LayerInfo
from layers.features.standby import replayed
from layers.settings import Settings

router = APIRouter(prefix="/ogc", tags=["ogc"])

GEOJSON = "application/geo+json"
ITEMS_PARAMS = {
    "f",
    "limit",
    "bbox",
    "bbox-crs",
    "crs",
    "datetime",
    "filter",
    "filter-lang",
    "filter-crs",
    "after",
    "before",
    "sortby",
    "offset",
}


def _json(doc: Any, media_type: str = "application/json", **headers: str) -> Response:
    return Response(orjson.dumps(doc), media_type=media_type, headers=headers or None)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/ogc"


def _check_format(request: Request) -> None:
    f = request.query_params.get("f")
    if f is not None and f.lower() not in ("json", "geojson", "application/json", GEOJSON):
        raise InvalidInputError(
            f"f={f!r} is not offered; this API speaks JSON only",
            param="f",
            i18n="err.ogc.f_not_offered_this_api",
            f=f,
        )


def _collection(conn: ConnDep, collection_id: str) -> LayerInfo:
    try:
        return registry.get_layer(conn, collection_id)
    except NotFoundError as exc:
        raise NotFoundError(
            f"collection '{collection_id}' does not exist",
            collection=collection_id,
            i18n="err.ogc.collection_does_not_exist",
            collection_id=collection_id,
        ) from exc


@router.get("", summary="OGC API landing page")
@router.get("/", include_in_schema=False)
def landing(request: Request, settings: SettingsDep) -> Response:
    """Landing page with links to the API definition, conformance and collections."""
    _check_format(request)
    return _json(ogc.landing_doc(_base(request), f"IOC Map – {settings.province_name}"))


@router.get("/api", summary="OpenAPI 3.0 definition of the OGC API")
def api_definition(request: Request, settings: SettingsDep) -> Response:
    """The OpenAPI 3.0 document describing /ogc."""
    doc = ogc.openapi_doc(_base(request), settings.ogc_default_limit, settings.ogc_max_limit)
    return _json(doc, "application/vnd.oai.openapi+json;version=3.0")


@router.get("/conformance", summary="Conformance classes")
def conformance(request: Request) -> Response:
    """The conformance classes this server implements."""
    _check_format(request)
    return _json({"conformsTo": ogc.CONFORMANCE})


@router.get("/collections", summary="Every layer as a collection")
def collections(request: Request, conn: ConnDep, user: CurrentUser) -> Response:
    """The collections (one per layer) with extents and CRS lists; restricted layers only for
    the roles that may read them."""
    _check_format(request)
    base = _base(request)
    docs = [
        ogc.collection_doc(info, base, tiles.layer_bounds(conn, info), ogc.time_extent(conn, info))
        for info in readable(user, registry.list_layers(conn, with_stats=False))
    ]
    body = {
        "links": [
            {"rel": "self", "type": "application/json", "href": f"{base}/collections"},
        ],
        "collections": docs,
        "crs": ogc.CRS_LIST,
    }
    return _json(body)


@router.get("/collections/{collection_id}", summary="One collection")
def collection(collection_id: str, request: Request, conn: ConnDep) -> Response:
    """One collection's description."""
    _check_format(request)
    info = _collection(conn, collection_id)
    doc = ogc.collection_doc(
        info, _base(request), tiles.layer_bounds(conn, info), ogc.time_extent(conn, info)
    )
    return _json(doc)


@router.get("/collections/{collection_id}/queryables", summary="Queryables of a collection")
def queryables(collection_id: str, request: Request, conn: ConnDep) -> Response:
    """JSON Schema of the properties a filter may use."""
    info = _collection(conn, collection_id)
    doc = cql.queryables(info)
    doc["$id"] = f"{_base(request)}/collections/{info.slug}/queryables"
    return _json(doc, "application/schema+json")


def _int_param(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError as exc:
        raise InvalidInputError(
            f"{name} must be an integer; got {raw!r}",
            param=name,
            i18n="err.ogc.must_be_integer_got",
            name=name,
            raw=raw,
        ) from exc
    if not -(2**63) <= value < 2**63:
        raise InvalidInputError(
            f"{name} must be a 64-bit integer; got {raw}",
            param=name,
            i18n="err.ogc.must_be_64_bit_integer",
            name=name,
            raw=raw,
        )
    return value


def _items_query(request: Request, info: LayerInfo, settings: Settings) -> ogc.ItemsQuery:
    params = request.query_params
    limit = _int_param(request, "limit")
    if limit is None:
        limit = settings.ogc_default_limit
    if limit < 1:
        raise InvalidInputError(
            f"limit must be at least 1; got {limit}",
            param="limit",
            i18n="err.ogc.limit_must_be_at_least",
            limit=limit,
        )
    limit = min(limit, settings.ogc_max_limit)
    crs = ogc.parse_crs(params.get("crs"), "crs")
    bbox_crs = ogc.parse_crs(params.get("bbox-crs"), "bbox-crs")
    filter_crs = ogc.parse_crs(params.get("filter-crs"), "filter-crs")
    when = ogc.parse_datetime(params.get("datetime"))
    if when is not None and not info.time_field:
        raise InvalidInputError(
            f"collection '{info.slug}' has no time; datetime cannot filter it",
            param="datetime",
            i18n="err.ogc.collection_has_no_time_datetime",
            layer=info.slug,
        )
    names = registry.property_names(info)
    if features.adds_source_key(info):
        names.append(features.SOURCE_KEY)
    equals: dict[str, str] = {}
    for key, value in params.multi_items():
        if key in ITEMS_PARAMS:
            continue
        if key not in names:
            raise InvalidInputError(
                f"unknown query parameter '{key}'; properties of '{info.slug}' are: "
                f"{', '.join(names) or 'none'}",
                param=key,
                i18n="err.ogc.unknown_query_parameter_properties_are",
                key=key,
                layer=info.slug,
                props=", ".join(names) or "—",
            )
        equals[key] = value
    where = None
    raw_filter = params.get("filter")
    if raw_filter:
        where = cql.compile_filter(
            raw_filter,
            info,
            params.get("filter-lang", "cql2-text"),
            cql.FilterCrs(filter_crs.srid, filter_crs.lat_lon),
        )
    offset = _int_param(request, "offset") or 0
    if offset < 0:
        raise InvalidInputError(
            f"offset must be 0 or more; got {offset}",
            param="offset",
            i18n="err.ogc.offset_must_be_0_or",
            offset=offset,
        )
    if offset > settings.ogc_max_offset:
        raise InvalidInputError(
            f"offset is limited to {settings.ogc_max_offset}; narrow the filter",
            param="offset",
            i18n="err.ogc.offset_limited_to_narrow_filter",
            ogc_max_offset=settings.ogc_max_offset,
        )
    return ogc.ItemsQuery(
        sortby=ogc.parse_sortby(params.get("sortby"), info),
        offset=offset,
        limit=limit,
        bbox=ogc.parse_bbox_in(params.get("bbox"), bbox_crs),
        datetime=when,
        equals=equals,
        filter=where,
        after=_int_param(request, "after"),
        before=_int_param(request, "before"),
        crs=crs,
    )


def _page_link(request: Request, rel: str, key: str, value: int) -> dict[str, str]:
    params = [
        (k, v)
        for k, v in request.query_params.multi_items()
        if k not in ("after", "before", "offset")
    ]
    params.append((key, str(value)))
    return {
        "rel": rel,
        "type": GEOJSON,
        "title": "Next page" if rel == "next" else "Previous page",
        "href": str(request.url.replace(query=urlencode(params))),
    }


def _run_items(
    engine: Engine,
    info: LayerInfo,
    query: ogc.ItemsQuery,
    settings: Settings,
    totals: dict[tuple[int, int], int],
    data_version: int,
    standby: Engine | None = None,
) -> ogc.ItemsPage:
    if standby is not None:
        with standby.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
            # Only a standby that has replayed `data_version` answers (and so feeds `totals`).
            if replayed(conn, info.id, data_version):
                return _items_on(conn, info, query, settings, totals, data_version)
    with engine.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
        return _items_on(conn, info, query, settings, totals, data_version)


def _items_on(
    conn: Connection,
    info: LayerInfo,
    query: ogc.ItemsQuery,
    settings: Settings,
    totals: dict[tuple[int, int], int],
    data_version: int,
) -> ogc.ItemsPage:
    known: int | None = None
    key = (info.id, data_version)
    if ogc.is_unfiltered(query):
        known = totals.get(key)
        if known is None:
            known = ogc.number_matched(
                conn, info, ogc.conditions(info, query), settings.ogc_exact_count_max_rows
            )
            if len(totals) > 10_000:
                totals.clear()
            totals[key] = known
    if query.sortby:
        return ogc.query_sorted_items(conn, info, query, settings.ogc_exact_count_max_rows, known)
    return ogc.query_items(conn, info, query, settings.ogc_exact_count_max_rows, known)


@router.get(
    "/collections/{collection_id}/items",
    summary="Features of a collection",
    responses={200: {"content": {GEOJSON: {}}}},
)
async def items(collection_id: str, request: Request) -> Response:
    """A page of features filtered by bbox, datetime, properties and CQL2.

    Async with app.state read directly: one version round trip, then one thread for the query
    (the whole-layer numberMatched is cached per data_version).
    """
    _check_format(request)
    settings: Settings = request.app.state.settings
    ver = await layer_state.layer_version(request, collection_id, "collection")
    info = await layer_state.layer_info(request, collection_id, ver)
    query = _items_query(request, info, settings)
    totals: dict[tuple[int, int], int] | None = getattr(request.app.state, "ogc_totals", None)
    if totals is None:
        totals = request.app.state.ogc_totals = {}
    page = await run_in_threadpool(
        _run_items,
        request.app.state.engine,
        info,
        query,
        settings,
        totals,
        ver.data_version,
        getattr(request.app.state, "read_engine", None),
    )
    base = _base(request)
    links: list[dict[str, str]] = [
        {"rel": "self", "type": GEOJSON, "title": "This page", "href": str(request.url)},
        {
            "rel": "collection",
            "type": "application/json",
            "title": info.title_en,
            "href": f"{base}/collections/{info.slug}",
        },
    ]
    if page.next_after is not None:
        links.append(_page_link(request, "next", "after", page.next_after))
    if page.prev_before is not None:
        links.append(_page_link(request, "prev", "before", page.prev_before))
    if page.next_offset is not None:
        links.append(_page_link(request, "next", "offset", page.next_offset))
    if page.prev_offset is not None:
        links.append(_page_link(request, "prev", "offset", page.prev_offset))
    head: dict[str, Any] = {
        "type": "FeatureCollection",
        "timeStamp": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "numberReturned": len(page.features_json),
    }
    if page.number_matched is not None:
        head["numberMatched"] = page.number_matched
    head["links"] = links
    body = (
        orjson.dumps(head)[:-1] + b',"features":[' + ",".join(page.features_json).encode() + b"]}"
    )
    return Response(body, media_type=GEOJSON, headers={"Content-Crs": f"<{query.crs.uri}>"})


@router.get(
    "/collections/{collection_id}/items/{feature_id}",
    summary="One feature",
    responses={200: {"content": {GEOJSON: {}}}},
)
def item(collection_id: str, feature_id: str, request: Request, conn: ConnDep) -> Response:
    """One feature by id, with self and collection links."""
    _check_format(request)
    info = _collection(conn, collection_id)
    crs = ogc.parse_crs(request.query_params.get("crs"), "crs")
    doc = ogc.get_item(conn, info, feature_id, crs)
    base = _base(request)
    links = [
        {"rel": "self", "type": GEOJSON, "href": str(request.url)},
        {
            "rel": "collection",
            "type": "application/json",
            "href": f"{base}/collections/{info.slug}",
        },
    ]
    body = doc[:-1] + ',"links":' + orjson.dumps(links).decode() + "}"
    return Response(body, media_type=GEOJSON, headers={"Content-Crs": f"<{crs.uri}>"})
