"""The Python client (geo_api.client) against a live server, and the columnar downloads."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import httpx
import pytest
import shapely
from sqlalchemy import Engine

from geo_api.client import (
    AuthenticationError,
    InvalidRequestError,
    IocMap,
    NotFoundError,
    PermissionDeniedError,
    offline_html,
)
from layers.auth import users
from layers.features.bulk import FeatureRow, upsert_features
from layers.features.registry import LayerSpec, create_or_update_layer
from layers.settings import Settings
from tests.conftest import live_server_for

PASSWORD = "client test password"
MANY = 12_345  # more than one OGC page of 10,000


@pytest.fixture(scope="module")
def server(seeded: Engine, settings: Settings) -> Iterator[str]:
    """A live server on the seeded test database, with a planner account and a big layer."""
    with seeded.begin() as conn:
        for name, role in (("client_planner", "planner"), ("client_citizen", "citizen")):
            try:
                users.get_user(conn, name)
            except Exception:
                users.create_user(conn, name, PASSWORD, role)
        spec = LayerSpec(
            slug="client_many_points",
            title_vi="Điểm kiểm thử",
            title_en="Client test points",
            sector="other",
            geometry_type="Point",
            property_schema={
                "type": "object",
                "properties": {"seq": {"type": "integer"}, "label": {"type": "string"}},
            },
            synthetic=True,
        )
        layer_id = create_or_update_layer(conn, spec)
        rows = [
            FeatureRow(
                f"p{i}",
                shapely.Point(105.0 + (i % 300) * 0.002, 18.5 + (i // 300) * 0.002),
                {"seq": i, "label": f"điểm {i}"},
            )
            for i in range(MANY)
        ]
        upsert_features(conn, layer_id, rows)
    with live_server_for(settings) as base:
        yield base


@pytest.fixture(scope="module")
def planner(server: str) -> Iterator[IocMap]:
    """A client signed in as a planner with username and password."""
    with IocMap(server, username="client_planner", password=PASSWORD) as ioc:
        yield ioc


def test_layers_lists_the_catalogue(planner: IocMap) -> None:
    frame = planner.layers()
    assert {"admin_communes", "schools", "land_parcels"} <= set(frame["slug"])
    assert bool(frame.set_index("slug").loc["client_many_points", "synthetic"]) is True


def test_features_parquet_equals_geojson(planner: IocMap, server: str) -> None:
    frame = planner.features("schools")
    assert len(frame) == 1800
    assert frame.crs.to_epsg() == 4326
    doc = httpx.get(f"{server}/api/layers/schools/features", params={"limit": 10000}).json()
    by_key = {f["properties"]["source_key"]: f for f in doc["features"]}
    assert set(by_key) == set(frame["source_key"])
    for row in frame.head(50).itertuples():
        feat = by_key[row.source_key]
        assert row.name == feat["properties"]["name"]
        assert row.pupils == feat["properties"]["pupils"]
        assert row.geometry.equals_exact(shapely.geometry.shape(feat["geometry"]), 1e-9)


def test_features_bbox_and_filters(planner: IocMap) -> None:
    bbox = (105.6, 18.6, 105.75, 18.75)
    frame = planner.features("schools", bbox=bbox, where={"level": "thpt"})
    assert len(frame) > 0
    assert set(frame["level"]) == {"thpt"}
    assert frame.total_bounds[0] >= bbox[0] and frame.total_bounds[2] <= bbox[2]


def test_cql_pages_past_ten_thousand(planner: IocMap) -> None:
    frame = planner.features("client_many_points", cql="seq >= 100")
    assert len(frame) == MANY - 100
    assert frame["seq"].min() == 100 and frame["seq"].max() == MANY - 1
    assert frame["id"].is_unique


def test_whole_big_layer_as_parquet(planner: IocMap) -> None:
    frame = planner.features("client_many_points")
    assert len(frame) == MANY
    assert sorted(frame["seq"]) == list(range(MANY))
    assert planner.features("client_many_points", limit=10).shape[0] == 10


def test_flatgeobuf_download(server: str) -> None:
    response = httpx.get(f"{server}/api/layers/hospitals/features", params={"format": "fgb"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/flatgeobuf")
    frame = gpd.read_file(io.BytesIO(response.content))
    assert len(frame) == 151
    assert {"name", "beds"} <= set(frame.columns)


def test_restricted_layer_needs_a_role(server: str, planner: IocMap) -> None:
    with IocMap(server) as anonymous, pytest.raises(AuthenticationError) as err:
        anonymous.features("land_parcels")
    assert err.value.status == 401 and err.value.detail
    response = httpx.get(f"{server}/api/layers/land_parcels/features", params={"format": "fgb"})
    assert response.status_code == 401
    assert len(planner.features("land_parcels")) == 3000


def test_errors_map_to_exceptions(planner: IocMap, server: str) -> None:
    with pytest.raises(NotFoundError) as missing:
        planner.features("no_such_layer")
    assert missing.value.code and "no_such_layer" in missing.value.detail
    with pytest.raises(InvalidRequestError) as bad:
        planner.features("schools", cql="pupils >>> 3")
    assert bad.value.status == 400
    with pytest.raises(AuthenticationError):
        IocMap(server, username="client_planner", password="wrong password")
    with (
        IocMap(server, username="client_citizen", password=PASSWORD) as citizen,
        pytest.raises(PermissionDeniedError),
    ):
        citizen.features("land_parcels")


def test_every_query(planner: IocMap) -> None:
    vinh = (105.68, 18.67)
    within = planner.query("radius", layer="schools", lon=vinh[0], lat=vinh[1], radius_m=3000)
    assert len(within) > 0 and (within["distance_m"] <= 3000).all()
    near = planner.query("near-layer", layer="schools", other_layer="hospitals", radius_m=2000)
    assert len(near) > 0
    nearest = planner.query("nearest", layer="hospitals", lon=vinh[0], lat=vinh[1], k=3)
    assert len(nearest) == 3
    per = planner.query("per-commune", layer="schools")
    assert len(per) == 130
    gaps = planner.query("gaps", layer="hospitals", radius_m=5000)
    assert "code" in gaps.columns or len(gaps) == 0
    buf = planner.query("buffer", layer="hospitals", radius_m=500, limit=5)
    assert len(buf) == 5 and (buf.geom_type == "Polygon").all()
    inter = planner.query(
        "intersection", layer="land_parcels", other_layer="admin_communes", limit=5
    )
    assert len(inter) == 5
    polygon = shapely.geometry.mapping(shapely.box(105.6, 18.6, 105.75, 18.75))
    inside = planner.query("within", layer="schools", polygon=polygon)
    assert len(inside) > 0
    with pytest.raises(ValueError, match="unknown query"):
        planner.query("teleport", layer="schools")


def test_h3_indicators_alerts_events(planner: IocMap, seeded: Engine) -> None:
    from analytics import h3jobs, kpi_jobs

    h3jobs.refresh_layer(seeded, "schools")
    kpi_jobs.refresh_derived(seeded)
    cells = planner.h3("schools", res=7)
    assert len(cells) > 0 and cells["value"].sum() == 1800
    spots = planner.h3("schools", res=7, hotspots=True)
    assert {"z", "p", "spot"} <= set(spots.columns)
    defs = planner.indicators()
    assert "pa_received" in set(defs["code"])
    values = planner.indicators("pa_received", level="province")
    assert len(values) > 0 and values["value"].notna().any()
    assert planner.indicators("pa_received").attrs["indicator"]["code"] == "pa_received"
    assert "severity" in planner.alerts().columns or planner.alerts().empty
    with pytest.raises(PermissionDeniedError):
        planner.events()  # events are for operators


def test_pydeck_map_is_offline(planner: IocMap, tmp_path: Path) -> None:
    deck = planner.to_pydeck(layers=["hospitals"], h3="schools", indicator="pa_received")
    ids = [layer.id for layer in deck.layers]
    assert ids == ["basemap-communes", "indicator-pa_received", "h3-schools", "layer-hospitals"]
    html = offline_html(deck)
    assert not re.search(r"<(script|link)[^>]+(src|href)=['\"]?https?://", html)
    (tmp_path / "map.html").write_text(html, encoding="utf-8")


NOTEBOOK = Path(__file__).resolve().parents[2] / "scripts/notebooks/schools_far_from_health.ipynb"


def test_analyst_notebook_runs(server: str, tmp_path: Path) -> None:
    """The walkthrough notebook runs end to end against the server (its parameters injected)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOK, as_version=4)
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    params.source = (
        f"URL = {server!r}\nUSERNAME = 'client_planner'\nPASSWORD = {PASSWORD!r}\n"
        "OUT_HTML = 'answer.html'"
    )
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    ).execute()
    html = (tmp_path / "answer.html").read_text(encoding="utf-8")
    assert "pupil-weighted-km" in html
    table = next(
        out
        for cell in nb.cells
        if cell.cell_type == "code" and 'weighted_km"]].head(10)' in cell.source
        for out in cell.outputs
        if out.get("output_type") == "execute_result"
    )
    assert "weighted_km" in table["data"]["text/plain"]
