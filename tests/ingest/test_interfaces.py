"""The CLI (`iocmap import`, `--show-rejects`) and the API (POST/GET /api/imports)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from geo_api.cli import app as cli_app
from geo_api.main import create_app
from layers.settings import Settings


def _file(tmp_path: Path) -> Path:
    gdf = gpd.GeoDataFrame(
        {"name": ["Vinh", "Hà Nội", "Cửa Lò"]},
        geometry=[
            shapely.Point(105.68, 18.68),
            shapely.Point(105.85, 21.03),
            shapely.Point(105.72, 18.81),
        ],
        crs=4326,
    )
    path = tmp_path / "diem.geojson"
    gdf.to_file(path)
    return path


def test_cli_import_dry_run_and_show_rejects(
    tmp_path: Path, settings: Settings, engine: Engine
) -> None:
    path = _file(tmp_path)
    runner = CliRunner()
    env = {"IOC_DATABASE_URL": settings.database_url or ""}
    dry = runner.invoke(
        cli_app, ["import", str(path), "--layer", "cli_pts", "--dry-run", "--json"], env=env
    )
    assert dry.exit_code == 0, dry.output
    report = json.loads(dry.output)
    assert report["dry_run"] and len(report["preview"]) == 2 and report["batch_id"] is None
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM layer WHERE slug='cli_pts'")).scalar() == 0
    real = runner.invoke(cli_app, ["import", str(path), "--layer", "cli_pts", "--json"], env=env)
    assert real.exit_code == 0, real.output
    batch = json.loads(real.output)["batch_id"]
    shown = runner.invoke(cli_app, ["import", "--show-rejects", str(batch)], env=env)
    assert shown.exit_code == 0
    assert "row        2  outside_province" in shown.output
    bad = runner.invoke(
        cli_app, ["import", str(path), "--layer", "cli_pts", "--mode", "upsert"], env=env
    )
    assert bad.exit_code == 1 and "--key" in bad.output


def test_api_upload_job_progress_and_report(
    tmp_path: Path,
    settings: Settings,
    engine: Engine,
    auth_headers: Callable[..., dict[str, str]],
) -> None:
    path = _file(tmp_path)
    with TestClient(create_app(settings), headers=auth_headers("gis_staff")) as client:
        dry = client.post(
            "/api/imports",
            files={"file": ("diem.geojson", path.read_bytes(), "application/geo+json")},
            data={"layer": "api_pts", "dry_run": "true"},
        )
        assert dry.status_code == 200, dry.text
        assert dry.json()["rows_valid"] == 2 and len(dry.json()["preview"]) == 2
        started = client.post(
            "/api/imports",
            files={"file": ("diem.geojson", path.read_bytes(), "application/geo+json")},
            data={"layer": "api_pts", "mode": "append"},
        )
        assert started.status_code == 202, started.text
        job = client.get(started.json()["href"]).json()
        assert job["status"] == "succeeded"
        assert job["layer"] == "api_pts"
        assert job["report"]["inserted"] == 2
        assert job["report"]["rejects_by_reason"] == {"outside_province": 1}
        assert job["progress"]["stage"] == "done"
        rejects = client.get(f"{started.json()['href']}/rejects").json()
        assert rejects[0]["row"] == 2 and rejects[0]["original"]["name"] == "Hà Nội"
        listed = client.get("/api/imports").json()
        assert listed[0]["id"] == started.json()["id"]
        missing = client.get("/api/imports/999999")
        assert missing.status_code == 404
        bad = client.post(
            "/api/imports",
            files={"file": ("x.doc", b"nope", "application/msword")},
            data={"layer": "api_bad"},
        )
        assert bad.status_code == 202
        failed = client.get(bad.json()["href"]).json()
        assert failed["status"] == "failed" and "unsupported" in failed["errors"][0]


def test_cli_ingest_run_with_yaml(tmp_path: Path, settings: Settings, engine: Engine) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "x.csv").write_text("ten,lat,lon\nA,18.68,105.68\n", encoding="utf-8")
    yml = tmp_path / "c.yaml"
    yml.write_text(
        f"connectors:\n  - {{kind: drop_folder, name: cli_drop, layer: cli_drop, path: '{drop}', settle_s: 0}}\n",
        encoding="utf-8",
    )
    env = {"IOC_DATABASE_URL": settings.database_url or ""}
    res = CliRunner().invoke(cli_app, ["ingest", "run", "cli_drop", "--config", str(yml)], env=env)
    assert res.exit_code == 0, res.output
    assert "cli_drop (drop_folder): succeeded" in res.output
    missing = CliRunner().invoke(cli_app, ["ingest", "run", "nope", "--config", str(yml)], env=env)
    assert missing.exit_code == 1 and "no connector named 'nope'" in missing.output
