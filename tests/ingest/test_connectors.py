"""Connectors against real local peers: an HTTP server, a drop folder, and Mosquitto."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import Engine, text

from ingest.connectors.config import DropFolder, HttpPull, Mqtt, load_config
from ingest.connectors.runner import run_connector, spool_dir
from ingest.connectors.scheduler import ConnectorScheduler
from layers.settings import Settings


def _records(n: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"BV{i:03d}",
            "ten": f"Trạm y tế {i}",
            "lon": 105.60 + i * 0.001,
            "lat": 18.65 + i * 0.001,
            "updated_at": f"2026-11-{(i % 20) + 1:02d}T00:00:00Z",
        }
        for i in range(n)
    ]


class _Api:
    """An LGSP-style paged API with a bearer token and `updated_since`."""

    def __init__(self) -> None:
        self.records = _records(25)
        self.fail_next = 0
        self.requests: list[dict[str, Any]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return

            def do_GET(self) -> None:
                q = {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}
                api.requests.append(q)
                if self.headers.get("Authorization") != "Bearer s3cret":
                    self.send_response(401)
                    self.end_headers()
                    return
                if api.fail_next:
                    api.fail_next -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                since = q.get("updated_since")
                rows = [r for r in api.records if since is None or r["updated_at"] > since]
                page, size = int(q.get("page", 1)), int(q.get("page_size", 10))
                body = json.dumps({"data": rows[(page - 1) * size : page * size]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/api/v1/co-so-y-te"


@pytest.fixture
def api() -> Any:
    server = _Api()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


def _count(engine: Engine, slug: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM feature f JOIN layer l ON l.id = f.layer_id "
                    "WHERE l.slug = :s"
                ),
                {"s": slug},
            ).scalar_one()
        )


def test_http_pull_pages_auth_incremental_and_retry(
    api: Any, engine: Engine, settings: Settings
) -> None:
    cfg = HttpPull(
        kind="http_pull", name="lgsp_yte", layer="conn_http", url=api.url,
        headers={"Authorization": "Bearer s3cret"}, key="id", page_size=10,
        since_param="updated_since", cursor_field="updated_at", retries=2, backoff_s=0.01,
    )  # fmt: skip
    first = run_connector(engine, settings, cfg)
    assert first.status == "succeeded", first.message
    assert first.imported == 25 and _count(engine, "conn_http") == 25
    assert [r.get("page") for r in api.requests] == ["1", "2", "3"]
    # Incremental: the next run asks only for what changed since the newest record.
    api.requests.clear()
    api.records.append({**_records(1)[0], "id": "BV999", "updated_at": "2026-12-01T00:00:00Z"})
    second = run_connector(engine, settings, cfg)
    assert api.requests[0]["updated_since"] == "2026-11-20T00:00:00Z"
    assert second.imported == 1 and _count(engine, "conn_http") == 26
    # A transient failure is retried with backoff; each failed attempt shows as a batch.
    api.fail_next = 1
    third = run_connector(engine, settings, cfg)
    assert third.status == "succeeded" and third.attempts == 2
    with engine.connect() as conn:
        statuses = (
            conn.execute(
                text("SELECT status FROM import_batch WHERE id = ANY(:ids) ORDER BY id"),
                {"ids": third.batches},
            )
            .scalars()
            .all()
        )
    assert statuses[0] == "failed"


def test_http_pull_keeps_what_it_fetched_when_the_import_fails(
    api: Any, engine: Engine, settings: Settings
) -> None:
    cfg = HttpPull(
        kind="http_pull", name="lgsp_lost", layer="conn_lost", url=api.url,
        headers={"Authorization": "Bearer s3cret"}, key="id", page_size=50,
        retries=0, mode="upsert",
    )  # fmt: skip
    api.records[3]["id"] = api.records[2]["id"]  # a duplicate key is quarantined, not fatal
    # Make the import itself fail: the key field does not exist in the records.
    bad = cfg.model_copy(update={"key": "ma_co_so"})
    failed = run_connector(engine, settings, bad)
    assert failed.status == "failed"
    spooled = list(spool_dir(settings, "lgsp_lost").glob("*.geojson"))
    assert len(spooled) == 1  # nothing fetched is lost
    api.records.clear()  # the source has nothing new; the spool still holds the data
    ok = run_connector(engine, settings, cfg)
    assert ok.status == "succeeded", ok.message
    assert _count(engine, "conn_lost") == 24 and ok.rejected == 1
    assert not list(spool_dir(settings, "lgsp_lost").glob("*.geojson"))


def test_drop_folder_moves_files_to_done_and_failed(
    tmp_path: Path, engine: Engine, settings: Settings
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "truong_hoc.csv").write_text(
        "ten;vĩ độ;kinh độ\nTHCS Hưng Dũng;18,6712;105,6921\nTiểu học Lê Lợi;18,6801;105,6755\n",
        encoding="utf-8",
    )
    (drop / "hong.csv").write_text("khong,co,toa,do\n1,2,3,4\n", encoding="utf-8")
    (drop / "ghi_chu.txt").write_text("ignored", encoding="utf-8")
    cfg = DropFolder(kind="drop_folder", name="so_gd", layer="conn_drop", path=drop, settle_s=0)
    result = run_connector(engine, settings, cfg)
    assert (drop / "done" / "truong_hoc.csv").exists()
    report = json.loads((drop / "done" / "truong_hoc.csv.report.json").read_text())
    assert report["rows_valid"] == 2
    assert (drop / "failed" / "hong.csv").exists()
    err = json.loads((drop / "failed" / "hong.csv.error.json").read_text())
    assert "coordinate" in err["error"]
    assert (drop / "ghi_chu.txt").exists()
    assert _count(engine, "conn_drop") == 2
    assert result.status == "failed" and "failed/hong.csv" in result.files


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def mosquitto(tmp_path: Path) -> Any:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(binary).exists():
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    port = _free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen(
        [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            break
        except OSError:
            time.sleep(0.05)
    yield port
    proc.terminate()
    proc.wait(timeout=10)


def test_mqtt_sensor_readings_into_time_enabled_layer(
    mosquitto: int, engine: Engine, settings: Settings
) -> None:
    import paho.mqtt.client as mqtt

    cfg = Mqtt(kind="mqtt", name="cam_bien", layer="sensor_readings", port=mosquitto,
               topic="sensors/#", listen_s=3.0)  # fmt: skip

    def publish() -> None:
        time.sleep(1.0)
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        pub.connect("127.0.0.1", mosquitto)
        pub.loop_start()
        for i in range(5):
            payload = {
                "sensor_id": f"aq-{i % 2}", "kind": "pm25", "value": 30 + i, "unit": "µg/m³",
                "lon": 105.68, "lat": 18.67, "ts": f"2026-11-22T08:0{i}:00+07:00",
            }  # fmt: skip
            pub.publish(f"sensors/air/aq-{i % 2}", json.dumps(payload), qos=1).wait_for_publish()
        pub.loop_stop()
        pub.disconnect()

    sender = threading.Thread(target=publish)
    sender.start()
    result = run_connector(engine, settings, cfg)
    sender.join()
    assert result.status == "succeeded", result.message
    assert result.imported == 5
    with engine.connect() as conn:
        layer = conn.execute(
            text("SELECT time_field FROM layer WHERE slug = 'sensor_readings'")
        ).scalar_one()
        times = conn.execute(
            text(
                "SELECT min(observed_at), max(observed_at), count(*) FROM feature f "
                "JOIN layer l ON l.id = f.layer_id WHERE l.slug = 'sensor_readings'"
            )
        ).one()
    assert layer == "ts"
    assert times[2] == 5
    assert times[0].isoformat() == "2026-11-22T01:00:00+00:00"
    assert times[1].isoformat() == "2026-11-22T01:04:00+00:00"


def test_config_yaml_and_scheduler(tmp_path: Path, engine: Engine, settings: Settings) -> None:
    drop = tmp_path / "in"
    drop.mkdir()
    (drop / "a.csv").write_text("name,lat,lon\nA,18.68,105.68\n", encoding="utf-8")
    yml = tmp_path / "connectors.yaml"
    yml.write_text(
        "connectors:\n"
        f"  - {{kind: drop_folder, name: tha_file, layer: conn_sched, path: '{drop}', settle_s: 0, interval_s: 3600}}\n",
        encoding="utf-8",
    )
    cfg = load_config(yml)
    sched = ConnectorScheduler(engine, settings, cfg, tick_s=0.05)
    assert "tha_file" in sched.due()
    assert sched.run_due() == 1
    assert sched.due() == []  # next run is an interval away
    assert (drop / "done" / "a.csv").exists()
    bad = tmp_path / "bad.yaml"
    bad.write_text("connectors:\n  - {kind: ftp, name: x, layer: y}\n", encoding="utf-8")
    from layers.errors import InvalidInputError

    with pytest.raises(InvalidInputError):
        load_config(bad)


def test_server_lifespan_runs_the_scheduler(
    tmp_path: Path, settings: Settings, engine: Engine
) -> None:
    from fastapi.testclient import TestClient

    from geo_api.main import create_app

    drop = tmp_path / "in"
    drop.mkdir()
    (drop / "b.csv").write_text("name,lat,lon\nB,18.69,105.66\n", encoding="utf-8")
    yml = tmp_path / "c.yaml"
    yml.write_text(
        "connectors:\n"
        f"  - {{kind: drop_folder, name: srv_drop, layer: conn_srv, path: '{drop}', settle_s: 0}}\n",
        encoding="utf-8",
    )
    cfg = settings.model_copy(update={"ingest_scheduler": True, "ingest_connectors_file": yml})
    with TestClient(create_app(cfg)):
        for _ in range(200):
            if (drop / "done" / "b.csv").exists():
                break
            time.sleep(0.05)
    assert (drop / "done" / "b.csv").exists()
    assert _count(engine, "conn_srv") == 1
