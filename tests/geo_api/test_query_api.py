"""/api/query endpoints and the `iocmap query` CLI, on the seeded demo."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyogrio
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from geo_api.cli import app as cli_app
from layers.features import queries
from layers.settings import Settings


def a_commune(engine: Engine) -> str:
    with engine.connect() as conn:
        return str(
            conn.execute(
                text("SELECT min(code) FROM admin_unit WHERE level = 'commune'")
            ).scalar_one()
        )


def test_within_radius_nearest_json(client: TestClient, seeded: Engine) -> None:
    code = a_commune(seeded)
    r = client.post("/api/query/within", json={"layer": "schools", "admin_code": code})
    assert r.status_code == 200, r.text
    with seeded.connect() as conn:
        want = queries.within_admin(conn, "schools", code, 10**6)
    assert {f["properties"]["id"] for f in r.json()["features"]} == {x["id"] for x in want.rows}
    r = client.post(
        "/api/query/radius",
        json={"layer": "hospitals", "lon": 105.68, "lat": 18.67, "radius_m": 5000},
    )
    feats = r.json()["features"]
    assert feats and all(f["properties"]["distance_m"] <= 5000 for f in feats)
    r = client.post(
        "/api/query/nearest", json={"layer": "hospitals", "lon": 105.68, "lat": 18.67, "k": 3}
    )
    assert len(r.json()["features"]) == 3
    r = client.post(
        "/api/query/near-layer",
        json={
            "layer": "schools",
            "other_layer": "hospitals",
            "radius_m": 2000,
            "other_where": {"type": "provincial_hospital"},
        },
    )
    assert r.status_code == 200 and r.json()["features"]


def test_exports_and_limits(
    client: TestClient, settings: Settings, auth_headers: Callable[..., dict[str, str]]
) -> None:
    body = {"layer": "schools", "sum_property": "pupils"}
    csv = client.post("/api/query/per-commune?format=csv", json=body)
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    frame = pd.read_csv(io.BytesIO(csv.content))
    assert {"code", "count", "count_per_10000", "sum_pupils"} <= set(frame.columns)
    gpkg = client.post("/api/query/gaps?format=gpkg", json={"layer": "hospitals", "radius_m": 5000})
    assert gpkg.status_code == 200
    assert gpkg.content[:16] == b"SQLite format 3\x00"
    capped = client.post(
        "/api/query/buffer", json={"layer": "schools", "radius_m": 100, "limit": 10**9}
    )
    assert capped.status_code == 200
    assert len(capped.json()["features"]) <= settings.query_max_results
    r = client.post(
        "/api/query/intersection",
        json={"layer": "land_parcels", "other_layer": "hospitals", "buffer_m": 300, "limit": 50},
        headers=auth_headers("planner"),  # land_parcels is a sensitive layer
    )
    assert r.status_code == 200 and len(r.json()["features"]) <= 50


def test_errors(client: TestClient) -> None:
    assert (
        client.post("/api/query/nearest", json={"layer": "nope", "lon": 1, "lat": 1}).status_code
        == 404
    )
    r = client.post(
        "/api/query/radius", json={"layer": "schools", "lon": 105, "lat": 18, "radius_m": -1}
    )
    assert r.status_code == 400 and "metres" in r.json()["detail"]
    r = client.post("/api/query/within", json={"layer": "schools"})
    assert r.status_code == 400 and "admin_code" in r.json()["detail"]
    r = client.post("/api/query/within", json={"layer": "schools", "admin_code": "x", "bogus": 1})
    assert r.status_code == 400
    r = client.post("/api/query/within", json={"layer": "schools", "admin_code": "nope"})
    assert r.status_code == 404
    r = client.post(
        "/api/query/gaps", json={"layer": "hospitals", "radius_m": 10, "where": {"x; drop": "1"}}
    )
    assert r.status_code == 400
    r = client.post("/api/query/gaps?format=shp", json={"layer": "hospitals", "radius_m": 10})
    assert r.status_code == 400


def test_cli(
    settings: Settings, seeded: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert settings.database_url
    monkeypatch.setenv("IOC_DATABASE_URL", settings.database_url)
    runner = CliRunner()
    out = tmp_path / "near.gpkg"
    res = runner.invoke(
        cli_app,
        [
            "query",
            "near-layer",
            "schools",
            "--of",
            "hospitals",
            "--radius-m",
            "2000",
            "--format",
            "gpkg",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert len(pyogrio.read_dataframe(out)) > 0
    res = runner.invoke(
        cli_app, ["query", "nearest", "hospitals", "--lon", "105.68", "--lat", "18.67", "--k", "2"]
    )
    assert res.exit_code == 0, res.output
    assert len(json.loads(res.stdout)["features"]) == 2
    res = runner.invoke(cli_app, ["query", "gaps", "nope", "--radius-m", "10"])
    assert res.exit_code == 1
