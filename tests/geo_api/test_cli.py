"""The iocmap CLI: db commands, seed, and `iocmap up` end to end as a real process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from geo_api.cli import app
from layers import cluster
from layers.settings import Settings

runner = CliRunner()


def _env_for(engine: Engine, **extra: str) -> dict[str, str]:
    url = engine.url.render_as_string(hide_password=False)
    return {"IOC_DATABASE_URL": url, **extra}


def test_db_url_and_status_of_the_managed_cluster(base_settings: Settings) -> None:
    if base_settings.database_url:
        pytest.skip("IOC_DATABASE_URL is set: the managed cluster is not used")
    url = runner.invoke(app, ["db", "url"])
    assert url.exit_code == 0
    assert url.stdout.strip() == cluster.status(base_settings).url
    status = runner.invoke(app, ["db", "status"])
    assert status.exit_code == 0 and "running" in status.stdout


def test_db_status_with_an_external_database(fresh_db: Engine) -> None:
    res = runner.invoke(app, ["db", "status"], env=_env_for(fresh_db))
    assert res.exit_code == 0 and "IOC_DATABASE_URL" in res.stdout


def test_seed_demo_twice_is_idempotent(fresh_db: Engine, tmp_path: Path) -> None:
    # the sector seed writes KT-XH exports under the state dir: keep them out of the real one
    env = _env_for(fresh_db, IOC_STATE_DIR=str(tmp_path))
    first = runner.invoke(app, ["seed", "demo", "--parcels", "200"], env=env)
    assert first.exit_code == 0, first.stdout
    assert "land_parcels     inserted     200" in first.stdout
    assert "traffic counters (synthetic)" in first.stdout
    assert "camera CA-01: calibration and zones written" in first.stdout
    # The sector data came in once (tests/ingest covers a second sector seed): skip it here.
    second = runner.invoke(app, ["seed", "demo", "--parcels", "200", "--no-sectors"], env=env)
    assert second.exit_code == 0
    assert "inserted       0  updated       0  unchanged     200" in second.stdout
    assert "camera CA-01: calibration and zones unchanged" in second.stdout
    with fresh_db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM layer")).scalar() >= 8


def test_domain_errors_are_one_clear_line(tmp_path: Path) -> None:
    env = {"IOC_STATE_DIR": str(tmp_path), "IOC_PG_BIN_DIR": str(tmp_path / "nowhere")}
    res = runner.invoke(app, ["db", "start"], env=env)
    assert res.exit_code == 1
    assert "install postgresql-15" in res.output
    assert "Traceback" not in res.output


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_iocmap_up_migrates_seeds_and_serves(fresh_db: Engine, tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        **_env_for(fresh_db, IOC_DEMO_PARCELS="300", IOC_STATE_DIR=str(tmp_path)),
    }
    iocmap = Path(sys.executable).with_name("iocmap")
    proc = subprocess.Popen(
        [str(iocmap), "up", "--port", str(port), "--no-cameras"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 180
        health = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.5)
        assert health is not None and health.status_code == 200, "server did not come up"
        layers = httpx.get(f"http://127.0.0.1:{port}/api/layers", timeout=10).json()
        counts = {item["slug"]: item["feature_count"] for item in layers}
        # land_parcels is restricted: not even listed to an anonymous caller (issue 14)
        assert counts["admin_communes"] == 130 and "land_parcels" not in counts
        with fresh_db.connect() as conn:
            parcels = conn.execute(
                text(
                    "SELECT count(*) FROM feature f JOIN layer l ON l.id = f.layer_id"
                    " WHERE l.slug = 'land_parcels'"
                )
            ).scalar_one()
        assert parcels == 300
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
        assert page.status_code == 200 and "<script" in page.text
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    assert "seeding the Nghệ An demo" in out
    # The sector simulators ran beside the server (or were found running) and nothing crashed.
    assert "starting the sector simulators" in out or "simulators already running" in out
    assert "Traceback" not in out, out[-3000:]


def test_cli_imports_and_exports_are_audited(fresh_db: Engine, tmp_path: Path) -> None:
    env = _env_for(fresh_db, IOC_STATE_DIR=str(tmp_path))
    seeded = runner.invoke(app, ["seed", "demo", "--parcels", "50", "--no-sectors"], env=env)
    assert seeded.exit_code == 0 and "sector systems" not in seeded.stdout
    out = tmp_path / "briefing.html"
    res = runner.invoke(app, ["export-map", "--layers", "hospitals", "--out", str(out)], env=env)
    assert res.exit_code == 0, res.output
    csv = tmp_path / "points.csv"
    csv.write_text("name;vĩ độ;kinh độ\nA;18,6734;105,6813\n", encoding="utf-8")
    res = runner.invoke(app, ["import", str(csv), "--layer", "cli_points"], env=env)
    assert res.exit_code == 0, res.output
    with fresh_db.connect() as conn:
        actions = [
            row[0]
            for row in conn.execute(
                text("SELECT action FROM audit_log WHERE role = 'cli' ORDER BY id")
            ).all()
        ]
    assert actions == ["export.briefing", "import"]
