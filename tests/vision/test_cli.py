"""`iocmap vision …` commands against the test database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from geo_api.cli import app
from layers.settings import Settings
from layers.vision import cameras
from vision.synthetic import control_points, street_scene


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    """Point the CLI's Settings() at the test database and state directory."""
    monkeypatch.setenv("IOC_DATABASE_URL", str(settings.database_url))
    monkeypatch.setenv("IOC_STATE_DIR", str(settings.state_dir))


def test_calibrate_zone_run_and_list(cli_env: None, engine: Engine, tmp_path: Path) -> None:
    scene = street_scene()
    frame = scene.calibration.frame
    with engine.begin() as conn:
        cameras.upsert_camera(
            conn,
            cameras.CameraSpec(
                camera_id="cli_cam",
                name="CLI",
                lon=frame.origin_lon,
                lat=frame.origin_lat,
                stream_url="vision/data/video/street-640x352.mp4",
            ),
        )
    pts = control_points(
        scene.calibration, [(50, 340), (600, 340), (320, 200), (100, 150), (560, 160)]
    )
    good = tmp_path / "pts.json"
    good.write_text(json.dumps([dict(zip(("u", "v", "lon", "lat"), p, strict=True)) for p in pts]))
    runner = CliRunner()
    res = runner.invoke(app, ["vision", "calibrate", "--camera", "cli_cam", "--points", str(good)])
    assert res.exit_code == 0, res.output
    assert "RMS 0.0" in res.output
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            [
                {"u": p[0], "v": p[1], "lon": p[2] + (0.001 if i == 0 else 0), "lat": p[3]}
                for i, p in enumerate(pts)
            ]
        )
    )
    res = runner.invoke(app, ["vision", "calibrate", "--camera", "cli_cam", "--points", str(bad)])
    assert res.exit_code == 1 and "reprojection error" in res.output
    line = {
        "type": "LineString",
        "coordinates": [
            [frame.origin_lon - 0.0001, frame.origin_lat + 0.0002],
            [frame.origin_lon + 0.0001, frame.origin_lat + 0.0002],
        ],
    }
    res = runner.invoke(
        app,
        [
            "vision",
            "add-zone",
            "--camera",
            "cli_cam",
            "--name",
            "line",
            "--kind",
            "counting_line",
            "--geojson",
            json.dumps(line),
        ],
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        app, ["vision", "run", "--camera", "cli_cam", "--no-realtime", "--max-frames", "12"]
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output.strip().splitlines()[-1])
    assert summary["frames"] == 12 and summary["camera_id"] == "cli_cam"
    # The last line also says what was counted on the line and which events were raised.
    assert set(summary["line_crossings"]) == {"total", "by_class"}
    assert summary["line_crossings"]["total"] == sum(summary["line_crossings"]["by_class"].values())
    assert isinstance(summary["events_by_type"], dict)
    res = runner.invoke(app, ["vision", "demo-zones", "--camera", "cli_cam"])
    assert res.exit_code == 0, res.output
    with engine.connect() as conn:
        kinds = [z.kind for z in cameras.list_zones(conn, "cli_cam")]
    assert kinds == ["counting_line", "counting_line", "lane"]
    res = runner.invoke(app, ["vision", "cameras"])
    assert "cli_cam\tstopped\ton\tcalibrated" in res.output
    res = runner.invoke(app, ["vision", "run", "--camera", "missing_cam", "--max-frames", "1"])
    assert res.exit_code == 1 and "does not exist" in res.output


def test_seed_demo_gives_ca01_its_fitted_calibration_and_zones(
    seeded: Engine, settings: Settings
) -> None:
    from geo_api.cli.seed import run_demo_seed
    from vision.demo import flow_direction_deg, seed_demo_camera

    run_demo_seed(seeded, settings, sectors=False)
    with seeded.begin() as conn:
        cam = cameras.get_camera(conn, "CA-01")
        cal = cameras.get_calibration(conn, "CA-01")
        zones = cameras.list_zones(conn, "CA-01")
        assert cal is not None and len(cal.control_points) == 8
        assert cal.reprojection_error_m < 0.05
        assert sorted(z.kind for z in zones) == ["counting_line", "lane"]
        lane = next(z for z in zones if z.kind == "lane")
        assert lane.params["direction_deg"] == round(flow_direction_deg(cam.heading_deg), 1)
        # A second seed changes nothing.
        assert seed_demo_camera(conn) is False
        assert [z.id for z in cameras.list_zones(conn, "CA-01")] == [z.id for z in zones]
