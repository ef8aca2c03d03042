"""A Python client for analysts: IOC Map layers, queries, H3, indicators and alerts as DataFrames.

    >>> from geo_api.client import IocMap
    >>> ioc = IocMap("http://127.0.0.1:8000", username="planner", password="...")
    >>> schools = ioc.features("schools", cql="pupils > 500")
    >>> deck = ioc.to_pydeck(layers=["hospitals", "schools"]); deck.to_html("map.html")

It speaks only HTTP to the server, so it works from any machine that can reach the API.
Whole layers travel as GeoParquet (columnar, far faster than paging GeoJSON); CQL2 filters go
through OGC API - Features, paged until done.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    import geopandas as gpd
    import pandas as pd
    import pydeck as pdk

# Spatial queries the server offers (POST /api/query/{name}).
QUERIES = (
    "within",
    "radius",
    "near-layer",
    "nearest",
    "per-commune",
    "gaps",
    "buffer",
    "intersection",
)
OGC_PAGE = 10_000
PROVINCE_VIEW = {"latitude": 19.15, "longitude": 104.95, "zoom": 7.8}
# Colours of the H3 and choropleth ramps, low to high (the web map's YlOrRd).
RAMP: tuple[tuple[int, int, int], ...] = (
    (255, 255, 178),
    (254, 204, 92),
    (253, 141, 60),
    (240, 59, 32),
    (189, 0, 38),
)
DEFAULT_FILL = (30, 136, 229, 160)


class IocMapError(Exception):
    """An error answered by the server, with its HTTP status, error code and detail."""

    def __init__(self, status: int, code: str, detail: str, url: str = "") -> None:
        super().__init__(f"{status} {code}: {detail}" + (f" ({url})" if url else ""))
        self.status = status
        self.code = code
        self.detail = detail
        self.url = url


class AuthenticationError(IocMapError):
    """401: not signed in, or the credentials were refused."""


class PermissionDeniedError(IocMapError):
    """403: the signed-in role may not read or do this."""


class NotFoundError(IocMapError):
    """404: no such layer, indicator, alert or query."""


class InvalidRequestError(IocMapError):
    """400/409/413/422: the request was refused as it stands (see detail)."""


class ServerUnavailableError(IocMapError):
    """503: the server or its database is busy or down; retry later."""


def _error_class(status: int) -> type[IocMapError]:
    if status == 401:
        return AuthenticationError
    if status == 403:
        return PermissionDeniedError
    if status == 404:
        return NotFoundError
    if status == 503:
        return ServerUnavailableError
    if 400 <= status < 500:
        return InvalidRequestError
    return IocMapError


def raise_for_error(response: httpx.Response) -> None:
    """Raise the IocMapError subclass for a non-2xx answer, with the server's code and detail."""
    if response.is_success:
        return
    code, detail = "http_error", response.text[:500]
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        code = str(body.get("code") or code)
        raw = body.get("detail", detail)
        detail = raw if isinstance(raw, str) else str(raw)
    cls = _error_class(response.status_code)
    raise cls(response.status_code, code, detail, str(response.request.url))


class IocMap:
    """A session with one IOC Map server: a bearer token, or anonymous (public layers only)."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 120.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout, transport=transport)
        if token is None and username is not None:
            token = self._sign_in(username, password or "")
        if token is not None:
            self._http.headers["Authorization"] = f"Bearer {token}"

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()

    def __enter__(self) -> IocMap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- transport --------------------------------------------------------------------

    def _sign_in(self, username: str, password: str) -> str:
        response = self._http.post(
            "/api/auth/token", data={"username": username, "password": password}
        )
        raise_for_error(response)
        return str(response.json()["access_token"])

    def _get(self, path: str, params: Any = None) -> httpx.Response:
        response = self._http.get(path, params=params)
        raise_for_error(response)
        return response

    def _json(self, path: str, params: Any = None) -> Any:
        return self._get(path, params).json()

    # --- catalogue and features -------------------------------------------------------

    def layers(self) -> pd.DataFrame:
        """The layer catalogue the caller may see: slug, titles, sector, counts, synthetic…"""
        import pandas as pd

        return pd.DataFrame(self._json("/api/layers"))

    def layer(self, slug: str) -> dict[str, Any]:
        """One layer's catalogue entry."""
        doc: dict[str, Any] = self._json(f"/api/layers/{slug}")
        return doc

    def features(
        self,
        slug: str,
        bbox: Sequence[float] | None = None,
        cql: str | None = None,
        datetime: str | None = None,
        limit: int | None = None,
        where: Mapping[str, str] | None = None,
    ) -> gpd.GeoDataFrame:
        """A layer's features as a GeoDataFrame (EPSG:4326), every page fetched.

        Without `cql` the layer travels as one GeoParquet download; with a CQL2 text filter
        the OGC API items are paged 10,000 at a time.
        """
        params: list[tuple[str, str]] = list((where or {}).items())
        if bbox is not None:
            params.append(("bbox", ",".join(str(float(v)) for v in bbox)))
        if datetime is not None:
            params.append(("datetime", datetime))
        if cql is None:
            params.append(("format", "parquet"))
            if limit is not None:
                params.append(("limit", str(limit)))
            return self._parquet(f"/api/layers/{slug}/features", params)
        params.append(("filter", cql))
        params.append(("filter-lang", "cql2-text"))
        return self._ogc_pages(slug, params, limit)

    def _parquet(self, path: str, params: Any) -> gpd.GeoDataFrame:
        import geopandas as gpd

        response = self._get(path, params)
        return _as_4326(gpd.read_parquet(io.BytesIO(response.content)))

    def _ogc_pages(
        self, slug: str, params: list[tuple[str, str]], limit: int | None
    ) -> gpd.GeoDataFrame:
        import geopandas as gpd

        feats: list[dict[str, Any]] = []
        url: str | None = f"/ogc/collections/{slug}/items"
        page_params: Any = [*params, ("limit", str(min(limit or OGC_PAGE, OGC_PAGE)))]
        while url is not None and (limit is None or len(feats) < limit):
            doc = self._json(url, page_params)
            feats.extend(doc.get("features", []))
            url = next(
                (link["href"] for link in doc.get("links", []) if link.get("rel") == "next"),
                None,
            )
            page_params = None  # the next link carries every parameter
        if limit is not None:
            feats = feats[:limit]
        if not feats:
            return gpd.GeoDataFrame({"id": []}, geometry=[], crs="EPSG:4326")
        frame = gpd.GeoDataFrame.from_features(feats, crs="EPSG:4326")
        frame.insert(0, "id", [f.get("id") for f in feats])
        return frame

    # --- analytics --------------------------------------------------------------------

    def h3(
        self,
        slug: str,
        res: int = 8,
        measure: str = "count",
        bbox: Sequence[float] | None = None,
        t_from: str | None = None,
        t_to: str | None = None,
        hotspots: bool = False,
    ) -> pd.DataFrame:
        """H3 cells of a layer's measure (cell, value), or Gi* hot spots (z, p, spot)."""
        import pandas as pd

        params: dict[str, Any] = {"res": res, "measure": measure}
        if bbox is not None:
            params["bbox"] = ",".join(str(float(v)) for v in bbox)
        if t_from is not None:
            params["t_from"] = t_from
        if t_to is not None:
            params["t_to"] = t_to
        path = f"/api/h3/{slug}/hotspots" if hotspots else f"/api/h3/{slug}"
        doc = self._json(path, params)
        columns = {"cell": doc["cells"], "value": doc["values"]}
        for extra in ("z", "p", "spot"):
            if extra in doc:
                columns[extra] = doc[extra]
        return pd.DataFrame(columns)

    def query(self, name: str, **params: Any) -> gpd.GeoDataFrame:
        """Run a spatial query (within, radius, near-layer, nearest, per-commune, gaps, buffer,
        intersection) with its body parameters; the result as a GeoDataFrame."""
        import geopandas as gpd

        name = name.replace("_", "-")
        if name not in QUERIES:
            raise ValueError(f"unknown query {name!r}; the server offers {', '.join(QUERIES)}")
        response = self._http.post(f"/api/query/{name}", json=params, params={"format": "parquet"})
        raise_for_error(response)
        frame = _as_4326(gpd.read_parquet(io.BytesIO(response.content)))
        frame.attrs["truncated"] = response.headers.get("X-Result-Truncated") == "true"
        return frame

    def indicators(
        self,
        code: str | None = None,
        level: str = "commune",
        subject: Iterable[str] | None = None,
        start: str | None = None,
        end: str | None = None,
        grain: str | None = None,
    ) -> pd.DataFrame:
        """Without a code, the indicator definitions; with one, its values in long form
        (subject, name, period, value) at a roll-up level."""
        import pandas as pd

        if code is None:
            return pd.DataFrame(self._json("/api/indicators")["indicators"])
        params: list[tuple[str, str]] = [("level", level)]
        params += [("subject", s) for s in subject or ()]
        for key, value in (("start", start), ("end", end), ("grain", grain)):
            if value is not None:
                params.append((key, value))
        doc = self._json(f"/api/indicators/{code}", params)
        periods = doc["periods"]
        rows = []
        for series in doc["series"]:
            subject = series.get("subject") or {}
            for period, value in zip(periods, series["values"], strict=False):
                rows.append(
                    {
                        "subject": subject.get("key"),
                        "name": subject.get("name"),
                        "period": period,
                        "value": value,
                    }
                )
        frame = pd.DataFrame(rows, columns=["subject", "name", "period", "value"])
        frame["period"] = pd.to_datetime(frame["period"])
        frame.attrs["indicator"] = doc["indicator"]
        return frame

    def alerts(self, status: str | None = None, limit: int = 100) -> pd.DataFrame:
        """Alerts the caller may see, newest first."""
        import pandas as pd

        params: dict[str, Any] = {"limit": limit}
        if status is not None:
            params["status"] = status
        return pd.DataFrame(self._json("/api/alerts", params))

    def events(
        self, camera: str | None = None, types: Iterable[str] = (), limit: int = 100
    ) -> pd.DataFrame:
        """Detection events, newest first, of one camera or all."""
        import pandas as pd

        params: list[tuple[str, str]] = [("limit", str(limit))]
        if camera is not None:
            params.append(("camera_id", camera))
        params += [("type", t) for t in types]
        return pd.DataFrame(self._json("/api/events", params))

    # --- maps ---------------------------------------------------------------------------

    def to_pydeck(
        self,
        layers: Sequence[str] = (),
        h3: str | None = None,
        h3_res: int = 7,
        indicator: str | None = None,
        extra_layers: Sequence[pdk.Layer] = (),
    ) -> pdk.Deck:
        """A pydeck map: the province and wards as basemap, an indicator choropleth, H3 cells,
        the layers in their catalogue colours, then `extra_layers` (e.g. frame_layer results).
        Works offline (no token, no online basemap)."""
        import pydeck as pdk

        deck_layers: list[pdk.Layer] = [self._basemap_layer()]
        if indicator is not None:
            deck_layers.append(self._choropleth_layer(indicator))
        if h3 is not None:
            deck_layers.append(self._h3_layer(h3, h3_res))
        for slug in layers:
            deck_layers.append(self._feature_layer(slug))
        deck_layers.extend(extra_layers)
        return pdk.Deck(
            layers=deck_layers,
            initial_view_state=pdk.ViewState(**PROVINCE_VIEW),
            map_provider=None,
            map_style=None,
            tooltip={"text": "{_label}"},
        )

    def _geojson(self, slug: str) -> dict[str, Any]:
        frame = self.features(slug)
        return _geo_interface(frame)

    def _basemap_layer(self) -> pdk.Layer:
        import pydeck as pdk

        doc = self._geojson("admin_communes")
        for feat in doc["features"]:
            feat["properties"]["_label"] = feat["properties"].get("name", "")
        return pdk.Layer(
            "GeoJsonLayer",
            data=doc,
            id="basemap-communes",
            stroked=True,
            filled=True,
            get_fill_color=[38, 50, 56, 255],
            get_line_color=[120, 144, 156, 255],
            line_width_min_pixels=1,
            pickable=True,
        )

    def _feature_layer(self, slug: str) -> pdk.Layer:
        import pydeck as pdk

        info = self.layer(slug)
        style = info.get("default_style") or {}
        doc = self._geojson(slug)
        for feat in doc["features"]:
            props = feat["properties"]
            props["_fill"] = list(feature_colour(style, props))
            props["_label"] = str(props.get(info.get("name_field") or "name", slug))
        return pdk.Layer(
            "GeoJsonLayer",
            data=doc,
            id=f"layer-{slug}",
            filled=True,
            stroked=True,
            get_fill_color="properties._fill",
            get_line_color=list(style.get("line_color") or (255, 255, 255, 200)),
            get_point_radius=float(style.get("point_radius") or 6),
            point_radius_units="'pixels'",  # a quoted literal: pydeck evaluates bare strings
            line_width_min_pixels=1,
            pickable=True,
        )

    def _h3_layer(self, slug: str, res: int) -> pdk.Layer:
        import pydeck as pdk

        cells = self.h3(slug, res=res)
        colours = ramp_colours(cells["value"].tolist())
        data = [
            {"hex": c, "value": v, "color": col, "_label": f"{v:g}"}
            for c, v, col in zip(cells["cell"], cells["value"], colours, strict=True)
        ]
        return pdk.Layer(
            "H3HexagonLayer",
            data=data,
            id=f"h3-{slug}",
            get_hexagon="hex",
            get_fill_color="color",
            extruded=False,
            opacity=0.7,
            pickable=True,
        )

    def _choropleth_layer(self, code: str) -> pdk.Layer:
        import pydeck as pdk

        doc = self._json(f"/api/indicators/{code}/choropleth")
        values: dict[str, float] = doc.get("values", {})
        breaks = [float(b) for b in doc.get("breaks", [])]
        geo = self._geojson("admin_communes")
        for feat in geo["features"]:
            props = feat["properties"]
            value = values.get(str(props.get("code") or props.get("commune_code")))
            props["_fill"] = list(break_colour(value, breaks))
            props["_label"] = f"{props.get('name', '')}: {value if value is not None else '—'}"
        return pdk.Layer(
            "GeoJsonLayer",
            data=geo,
            id=f"indicator-{code}",
            filled=True,
            stroked=True,
            get_fill_color="properties._fill",
            get_line_color=[255, 255, 255, 120],
            line_width_min_pixels=1,
            pickable=True,
        )


def frame_layer(
    frame: gpd.GeoDataFrame, column: str, layer_id: str, label: str | None = None
) -> pdk.Layer:
    """A pydeck layer of an analysis result, coloured by quintiles of `column` with the web
    map's ramp (low yellow to high red); `label` names the column shown on hover."""
    import pydeck as pdk

    doc = _geo_interface(frame.to_crs(4326))
    colours = ramp_colours([float(v) for v in frame[column].fillna(0)])
    for feat, colour in zip(doc["features"], colours, strict=True):
        props = feat["properties"]
        props["_fill"] = colour
        props["_label"] = f"{props.get(label or column, '')}: {props.get(column)}"
    return pdk.Layer(
        "GeoJsonLayer",
        data=doc,
        id=layer_id,
        filled=True,
        stroked=True,
        get_fill_color="properties._fill",
        get_line_color=[255, 255, 255, 160],
        get_point_radius=6.0,
        point_radius_units="'pixels'",
        line_width_min_pixels=1,
        pickable=True,
    )


def _as_4326(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    # GeoParquet's default CRS is OGC:CRS84: the same datum and lon/lat order as the server's
    # EPSG:4326 coordinates, labelled with the code analysts expect.
    return frame.set_crs("EPSG:4326", allow_override=True)


def _geo_interface(frame: gpd.GeoDataFrame) -> dict[str, Any]:
    import orjson

    # GeoPandas' to_json handles numpy types and NaN; re-read to hand pydeck plain dicts.
    doc: dict[str, Any] = orjson.loads(frame.to_json(na="null", drop_id=True))
    return doc


def feature_colour(style: Mapping[str, Any], props: Mapping[str, Any]) -> tuple[int, ...]:
    """A feature's fill colour as the web map picks it: palette by color_property, else fill."""
    palette = style.get("palette") or {}
    key = style.get("color_property")
    if key and str(props.get(key)) in palette:
        return tuple(int(v) for v in palette[str(props.get(key))])
    return tuple(int(v) for v in (style.get("fill_color") or DEFAULT_FILL))


def ramp_colours(values: Sequence[float]) -> list[list[int]]:
    """Colours of the ramp by quintile of the values (equal-count classes)."""
    import numpy as np

    if not values:
        return []
    arr = np.asarray(values, dtype=float)
    edges = np.quantile(arr, [0.2, 0.4, 0.6, 0.8])
    idx = np.searchsorted(edges, arr, side="right")
    return [[*RAMP[int(i)], 200] for i in idx]


def break_colour(value: float | None, breaks: Sequence[float]) -> tuple[int, int, int, int]:
    """The ramp colour of a value given the upper bounds of its classes (grey when missing)."""
    if value is None:
        return (90, 90, 90, 120)
    for i, upper in enumerate(breaks):
        if value <= upper:
            return (*RAMP[min(i, len(RAMP) - 1)], 200)
    return (*RAMP[-1], 200)


_REMOTE_TAG = re.compile(
    r"<script[^>]+src=['\"]https?://[^>]*>\s*</script>|<link[^>]+href=['\"]?https?://[^>]*>",
    re.IGNORECASE,
)


def offline_html(deck: pdk.Deck) -> str:
    """A standalone HTML page of a pydeck map that needs no network at all.

    pydeck's offline mode inlines deck.gl but still links a Mapbox script and two stylesheets
    from CDNs that this map does not use; they are removed so the page opens with no network.
    """
    html = deck.to_html(as_string=True, offline=True, notebook_display=False)
    return _REMOTE_TAG.sub("", str(html))
