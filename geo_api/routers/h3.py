"""H3 aggregates and analytics: cells for deck.gl, commune aggregates, hot spots, change, forecast."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import Response

from analytics import service
from geo_api.deps import ReadConnDep as ConnDep  # reads may go to a hot standby
from layers.features.items import parse_bbox

router = APIRouter(tags=["h3"])

Res = Annotated[int, Query(ge=5, le=10, description="H3 resolution 5..10")]
From = Annotated[datetime | None, Query(alias="from", description="Window start (inclusive)")]
To = Annotated[datetime | None, Query(alias="to", description="Window end (exclusive)")]
Measure = Annotated[str, Query(description="count, sum:<property> or mean:<property>")]


def _json(doc: dict[str, Any]) -> Response:
    # orjson straight to bytes: FastAPI's encoder walks every value of large cell lists.
    return Response(orjson.dumps(doc), media_type="application/json")


@router.get("/api/h3/{layer}", summary="H3 cells and values of a measure (deck.gl-ready)")
def h3_cells(
    layer: str,
    conn: ConnDep,
    res: Res = 8,
    bbox: Annotated[str | None, Query(description="minx,miny,maxx,maxy (WGS84)")] = None,
    t_from: From = None,
    t_to: To = None,
    measure: Measure = "count",
) -> Response:
    """Columnar cells (hex ids) and values over the window, from the stored aggregates."""
    return _json(service.h3_cells(conn, layer, res, parse_bbox(bbox), t_from, t_to, measure))


@router.get("/api/h3/{layer}/communes", summary="The same measure per commune")
def h3_communes(
    layer: str, conn: ConnDep, t_from: From = None, t_to: To = None, measure: Measure = "count"
) -> dict[str, Any]:
    """Measure per current commune, features joined to communes by location."""
    return service.commune_aggregates(conn, layer, t_from, t_to, measure)


@router.get("/api/h3/{layer}/hotspots", summary="Getis-Ord Gi* hot and cold spots")
def h3_hotspots(
    layer: str,
    conn: ConnDep,
    res: Res = 8,
    t_from: From = None,
    t_to: To = None,
    measure: Measure = "count",
    k: Annotated[int, Query(ge=1, le=5, description="Neighbourhood ring size")] = 1,
    alpha: Annotated[float, Query(gt=0, lt=1, description="Significance level")] = 0.05,
) -> Response:
    """Gi* z-score, p-value and class per cell (1 hot, -1 cold, 0 not significant)."""
    return _json(service.hot_spots(conn, layer, res, t_from, t_to, measure, k, alpha))


@router.get("/api/h3/{layer}/change", summary="Change per cell between two periods")
def h3_change(
    layer: str,
    conn: ConnDep,
    a_from: datetime,
    a_to: datetime,
    b_from: datetime,
    b_to: datetime,
    res: Res = 8,
    measure: Measure = "count",
) -> Response:
    """Values in period A and B per cell, their difference and percent change."""
    return _json(service.change_between(conn, layer, res, measure, (a_from, a_to), (b_from, b_to)))


@router.get("/api/h3/{layer}/forecast", summary="Trend and forecast of a layer's KPI series")
def h3_forecast(
    layer: str,
    conn: ConnDep,
    measure: Measure = "count",
    freq: Literal["day", "week"] = "week",
    periods: Annotated[int, Query(ge=3, le=366)] = 12,
    horizon: Annotated[int, Query(ge=1, le=52)] = 4,
    commune: Annotated[str | None, Query(description="Commune code to restrict to")] = None,
) -> dict[str, Any]:
    """Counts (or sums) per day/week, OLS trend and forecast with a 95% band."""
    return service.kpi_forecast(conn, layer, measure, freq, periods, horizon, commune)


@router.get("/api/analytics/indicators", summary="Per-commune indicators")
def commune_indicators(conn: ConnDep) -> list[dict[str, Any]]:
    """Density, schools/hospitals per 10,000, field reports per 1,000, resolution/on-time rates."""
    return service.commune_indicators(conn)
