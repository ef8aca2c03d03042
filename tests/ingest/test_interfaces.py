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
        failed = client.get(bad.json()["href"], headers={"Accept-Language": "en"}).json()
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


CSV_ONE_BAD = (
    "ten_tram,lon,lat,cong_suat\n"
    "Trạm bơm Hưng Lộc,105.70,18.68,120\n"
    "Trạm bơm Nghi Phú,abc,18.70,80\n"
    "Trạm bơm Hưng Hòa,105.72,18.66,95\n"
)


def test_api_import_sets_title_sector_colour_name_field_and_visibility(
    settings: Settings, engine: Engine, auth_headers: Callable[..., dict[str, str]]
) -> None:
    from layers.features.registry import delete_layer

    form = {
        "layer": "api_tram_bom",
        "title_vi": "Trạm bơm tiêu úng",
        "title_en": "Drainage pumping stations",
        "sector": "infrastructure",
        "color": "#00aa55",
        "name_field": "ten_tram",
        "visibility": "roles",
        "roles": ["planner", "gis_staff"],
    }
    try:
        with TestClient(create_app(settings), headers=auth_headers("gis_staff")) as client:
            started = client.post(
                "/api/imports",
                files={"file": ("tram.csv", CSV_ONE_BAD.encode(), "text/csv")},
                data=form,
            )
            assert started.status_code == 202, started.text
            assert client.get(started.json()["href"]).json()["status"] == "succeeded"
            rejects = client.get(f"{started.json()['href']}/rejects").json()
            assert [(r["row"], r["field"], r["value"]) for r in rejects] == [(2, "lon", "abc")]
            assert rejects[0]["reason"] == "unparsable_coordinates"
            info = client.get("/api/layers/api_tram_bom").json()
            assert (info["title_vi"], info["title_en"]) == (form["title_vi"], form["title_en"])
            assert info["sector"] == "infrastructure" and info["name_field"] == "ten_tram"
            assert info["default_style"]["fill_color"][:3] == [0, 170, 85]
            assert info["visibility"] == {"access": "roles", "roles": ["planner", "gis_staff"]}
            # the catalogue's visibility is what the access policy applies
            assert client.get("/api/layers/api_tram_bom/features").status_code == 200
        with TestClient(create_app(settings)) as anon:
            assert anon.get("/api/layers/api_tram_bom/features").status_code == 401
        with TestClient(create_app(settings), headers=auth_headers("operator")) as op:
            assert op.get("/api/layers/api_tram_bom/features").status_code == 403
        with TestClient(create_app(settings), headers=auth_headers("planner")) as pl:
            assert pl.get("/api/layers/api_tram_bom/features").status_code == 200
            # a name field that is not a column, and roles without any role, are refused
        with TestClient(create_app(settings), headers=auth_headers("gis_staff")) as client:
            bad = client.post(
                "/api/imports",
                files={"file": ("tram.csv", CSV_ONE_BAD.encode(), "text/csv")},
                data={"layer": "api_tram_bom2", "name_field": "ten", "dry_run": "true"},
            )
            assert bad.status_code == 400 and "ten_tram" in bad.json()["detail"]
            none = client.post(
                "/api/imports",
                files={"file": ("tram.csv", CSV_ONE_BAD.encode(), "text/csv")},
                data={"layer": "api_tram_bom2", "visibility": "roles", "dry_run": "true"},
                headers={"Accept-Language": "en"},
            )
            assert none.status_code == 400 and "at least one role" in none.json()["detail"]
    finally:
        with engine.begin() as conn:
            delete_layer(conn, "api_tram_bom")


def test_api_import_of_a_csv_whose_coordinates_are_all_bad_says_so_with_examples(
    settings: Settings, auth_headers: Callable[..., dict[str, str]]
) -> None:
    broken = "ten,lon,lat\nA,abc,18.7\nB,105.7,x\nC,,\n"
    with TestClient(create_app(settings), headers=auth_headers("gis_staff")) as client:
        res = client.post(
            "/api/imports",
            files={"file": ("hong.csv", broken.encode(), "text/csv")},
            data={"layer": "api_hong", "dry_run": "true"},
            headers={"Accept-Language": "vi"},
        )
        assert res.status_code == 400
        detail = res.json()["detail"]
        assert "không dòng nào trong 3 dòng có tọa độ" in detail
        assert (
            "2 (lon='abc', lat='18.7')" in detail and "CRS" not in detail and "--crs" not in detail
        )
        en = client.post(
            "/api/imports",
            files={"file": ("hong.csv", broken.encode(), "text/csv")},
            data={"layer": "api_hong", "dry_run": "true"},
            headers={"Accept-Language": "en"},
        )
        assert "none of the 3 rows has usable coordinates" in en.json()["detail"]
