"""Alert rules fire just over their thresholds and stay silent just under; dedup; API; SSE."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest
import shapely
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy import text as sa_text

from analytics import alerting, h3jobs, rules
from analytics.alerting import EvalReport
from geo_api.main import create_app
from layers.analytics import alerts as adb
from layers.features.bulk import FeatureRow
from layers.features.registry import LayerSpec
from layers.settings import Settings
from tests.analytics.conftest import MakeLayer, point_spec

NOW = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)


def _evaluate(engine: Engine, spec: rules.RuleSpec) -> EvalReport:
    with engine.begin() as conn:
        (rule_id,) = alerting.install_rules(conn, [spec])
    rep = EvalReport()
    with engine.begin() as conn:
        row = next(r for r in adb.list_rules(conn) if r["id"] == rule_id)
        alerting.evaluate_rule(conn, row, NOW, rep)
    return rep


@pytest.mark.parametrize(("n", "fires"), [(21, True), (20, False)])
def test_count_per_hex_rule(engine: Engine, make_layer: MakeLayer, n: int, fires: bool) -> None:
    slug = f"al_reports_{n}"
    rows = [
        FeatureRow(f"r{i}", shapely.Point(105.68, 18.67), {"value": 1}, NOW - timedelta(hours=2))
        for i in range(n)
    ]
    # outside the 24 h window: must not count
    rows += [
        FeatureRow(f"old{i}", shapely.Point(105.68, 18.67), {}, NOW - timedelta(hours=25))
        for i in range(5)
    ]
    make_layer(point_spec(slug), rows)
    spec = rules.RuleSpec(
        slug=f"rule_{slug}",
        name="many reports",
        kind="count",
        layer=slug,
        threshold=20,
        window_s=86400,
        area=rules.RuleArea(kind="hex", res=8),
    )
    rep = _evaluate(engine, spec)
    assert len(rep.opened) == (1 if fires else 0)
    if fires:
        with engine.connect() as conn:
            a = adb.get_alert(conn, rep.opened[0])
        assert a["value"] == 21 and a["area_kind"] == "hex" and a["status"] == "open"
        assert a["geometry"]["type"] == "Polygon"
        assert len(a["evidence"]["feature_ids"]) == 21
        # deduplicated while open: a second evaluation refreshes the same alert
        again = _evaluate(engine, spec)
        assert again.opened == [] and again.refreshed == rep.opened


@pytest.mark.parametrize(("level", "fires"), [(3.01, True), (2.99, False)])
def test_value_rule_uses_latest_reading(
    engine: Engine, make_layer: MakeLayer, level: float, fires: bool
) -> None:
    slug = f"al_water_{int(level * 100)}"
    spec_layer = LayerSpec(
        slug=slug,
        title_vi="w",
        title_en="w",
        sector="environment",
        geometry_type="Point",
        property_schema={
            "type": "object",
            "properties": {"sensor_id": {"type": "string"}, "water_level_m": {"type": "number"}},
        },
        time_field="t",
    )
    p = shapely.Point(105.7, 18.7)
    make_layer(
        spec_layer,
        [
            FeatureRow(
                "a1", p, {"sensor_id": "S1", "water_level_m": 9.0}, NOW - timedelta(minutes=50)
            ),
            FeatureRow(
                "a2", p, {"sensor_id": "S1", "water_level_m": level}, NOW - timedelta(minutes=5)
            ),
            FeatureRow(
                "b1", p, {"sensor_id": "S2", "water_level_m": 1.0}, NOW - timedelta(minutes=5)
            ),
        ],
    )
    spec = rules.RuleSpec(
        slug=f"rule_{slug}",
        name="water high",
        severity="critical",
        kind="value",
        layer=slug,
        property="water_level_m",
        key_property="sensor_id",
        threshold=3.0,
        window_s=3600,
        auto_resolve=True,
    )
    rep = _evaluate(engine, spec)
    assert len(rep.opened) == (1 if fires else 0)
    if fires:
        with engine.connect() as conn:
            a = adb.get_alert(conn, rep.opened[0])
        assert a["area_ref"] == "S1" and a["value"] == pytest.approx(3.01)
        assert a["geometry"]["type"] == "Point"


@pytest.mark.parametrize(("age_s", "fires"), [(601, True), (599, False)])
def test_camera_offline_duration_rule(
    engine: Engine, make_layer: MakeLayer, age_s: int, fires: bool
) -> None:
    slug = f"al_cams_{age_s}"
    spec_layer = LayerSpec(
        slug=slug,
        title_vi="c",
        title_en="c",
        sector="security",
        geometry_type="Point",
        property_schema={
            "type": "object",
            "properties": {
                "camera_id": {"type": "string"},
                "status": {"type": "string"},
                "status_since": {"type": "string", "format": "date-time"},
            },
        },
    )
    since = (NOW - timedelta(seconds=age_s)).isoformat()
    make_layer(
        spec_layer,
        [
            FeatureRow(
                "c1",
                shapely.Point(105.7, 18.7),
                {"camera_id": "CAM1", "status": "offline", "status_since": since},
            ),
            FeatureRow(
                "c2",
                shapely.Point(105.7, 18.7),
                {"camera_id": "CAM2", "status": "online", "status_since": "2020-01-01T00:00:00Z"},
            ),
        ],
    )
    spec = rules.RuleSpec(
        slug=f"rule_{slug}",
        name="camera offline",
        kind="duration",
        layer=slug,
        where={"status": "offline"},
        key_property="camera_id",
        since_property="status_since",
        condition=">=",
        threshold=600,
    )
    rep = _evaluate(engine, spec)
    assert len(rep.opened) == (1 if fires else 0)


@pytest.mark.parametrize(("now_value", "fires"), [(12.9, True), (12.8, False)])
def test_percentile_hour_of_week_rule(
    engine: Engine, make_layer: MakeLayer, now_value: float, fires: bool
) -> None:
    slug = f"al_traffic_{int(now_value * 10)}"
    hour = datetime(2026, 11, 20, 9, 10, tzinfo=UTC)  # inside the last complete hour before NOW
    p = shapely.Point(105.69, 18.68)
    rows = [FeatureRow("now", p, {"value": now_value}, hour)]
    # the same hour of the week over the four previous weeks: 10, 11, 12, 13 vehicles
    for k, v in enumerate((10, 11, 12, 13), start=1):
        rows.append(FeatureRow(f"w{k}", p, {"value": v}, hour - timedelta(weeks=k)))
    # another hour of the week, which must not enter the percentile
    rows.append(FeatureRow("other", p, {"value": 1000}, hour - timedelta(weeks=1, hours=3)))
    make_layer(point_spec(slug, sector="traffic"), rows)
    h3jobs.refresh_layer(engine, slug)
    spec = rules.RuleSpec(
        slug=f"rule_{slug}",
        name="traffic p95",
        kind="percentile",
        layer=slug,
        measure="sum:value",
        threshold=95,
        history_weeks=4,
        area=rules.RuleArea(kind="hex", res=8),
    )
    rep = _evaluate(engine, spec)
    assert len(rep.opened) == (1 if fires else 0)
    if fires:
        with engine.connect() as conn:
            a = adb.get_alert(conn, rep.opened[0])
        assert a["threshold"] == pytest.approx(12.85)


def test_rule_specs_are_validated() -> None:
    with pytest.raises(ValueError, match="property"):
        rules.RuleSpec(slug="bad_rule", name="x", kind="value", layer="l", threshold=1)
    with pytest.raises(ValueError, match="geometry"):
        rules.RuleArea(kind="polygon")
    assert {r.slug for r in rules.EXAMPLE_RULES} >= {
        "field_reports_hex_24h",
        "camera_offline_10min",
    }


def _opened_alert(engine: Engine, make_layer: MakeLayer, slug: str) -> int:
    rows = [
        FeatureRow(f"r{i}", shapely.Point(105.6, 18.6), {}, NOW - timedelta(hours=1))
        for i in range(3)
    ]
    make_layer(point_spec(slug), rows)
    spec = rules.RuleSpec(
        slug=f"rule_{slug}",
        name="api",
        kind="count",
        layer=slug,
        threshold=2,
        area=rules.RuleArea(kind="hex", res=9),
    )
    rep = _evaluate(engine, spec)
    assert len(rep.opened) == 1
    return rep.opened[0]


def test_alert_api_filters_ack_resolve(
    engine: Engine,
    make_layer: MakeLayer,
    settings: Settings,
    auth_headers: Callable[..., dict[str, str]],
) -> None:
    alert_id = _opened_alert(engine, make_layer, "al_api")
    with TestClient(create_app(settings), headers=auth_headers("operator")) as client:
        listed = client.get("/api/alerts", params={"status": "open", "rule": "rule_al_api"}).json()
        assert [a["id"] for a in listed] == [alert_id]
        assert (
            client.get("/api/alerts", params={"bbox": "0,0,1,1", "rule": "rule_al_api"}).json()
            == []
        )
        r = client.post(f"/api/alerts/{alert_id}/ack", json={"note": "duty officer"})
        assert r.status_code == 200 and r.json()["status"] == "acknowledged"
        assert client.post(f"/api/alerts/{alert_id}/ack").status_code == 409
        r = client.post(f"/api/alerts/{alert_id}/resolve")
        assert r.json()["status"] == "resolved" and r.json()["resolved_by"] == "t_operator"
        assert client.get("/api/alerts/999999").status_code == 404
        # once resolved, the same condition opens a new alert
        with engine.begin() as conn:
            row = next(x for x in adb.list_rules(conn) if x["slug"] == "rule_al_api")
            rep = EvalReport()
            alerting.evaluate_rule(conn, row, NOW, rep)
        assert len(rep.opened) == 1 and rep.opened[0] != alert_id


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live_server(settings: Settings) -> Iterator[str]:
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_sse_stream_delivers_new_alert(
    engine: Engine,
    make_layer: MakeLayer,
    live_server: str,
    auth_headers: Callable[..., dict[str, str]],
) -> None:
    got: dict[str, object] = {}
    with (
        httpx.Client(base_url=live_server, timeout=30, headers=auth_headers("operator")) as client,
        client.stream("GET", "/api/alerts/stream") as resp,
    ):
        assert resp.status_code == 200
        lines = resp.iter_lines()
        event = None
        for line in lines:
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            if event == "ready" and line == "":
                break
        alert_id = _opened_alert(engine, make_layer, "al_sse")
        for line in lines:
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event == "new":
                got = orjson.loads(line.split(":", 1)[1])
                break
    assert got["id"] == alert_id and got["status"] == "open"


def test_commune_staff_see_only_their_communes_alerts(
    seeded: Engine, settings: Settings, auth_headers: Callable[..., dict[str, str]]
) -> None:
    with seeded.begin() as conn:
        own, other = conn.execute(
            sa_text(
                "SELECT code FROM admin_unit WHERE level = 'commune' AND valid_to IS NULL "
                "ORDER BY population DESC NULLS LAST, code LIMIT 2"
            )
        ).scalars()
        spec = rules.RuleSpec(
            slug="rule_cs_scope", name="scope", kind="count", layer="field_reports", threshold=1
        )
        (rule_id,) = alerting.install_rules(conn, [spec])
        new, _ = adb.write_alerts(
            conn,
            [
                adb.AlertWrite(
                    rule_id=rule_id,
                    dedup_key=f"c:{code}",
                    severity="warning",
                    title=f"commune {code}",
                    area_kind="commune",
                    area_ref=code,
                    commune_code=code,
                )
                for code in (own, other)
            ]
            + [
                adb.AlertWrite(
                    rule_id=rule_id,
                    dedup_key="province",
                    severity="warning",
                    title="province",
                    area_kind="province",
                    area_ref="40",
                    commune_code=own,
                )
            ],
        )
    own_id, other_id, province_id = new
    try:
        with TestClient(create_app(settings)) as client:
            staff = auth_headers("commune_staff", [own])
            listed = client.get("/api/alerts", params={"rule": "rule_cs_scope"}, headers=staff)
            assert listed.status_code == 200
            assert [a["id"] for a in listed.json()] == [own_id]
            assert client.get(f"/api/alerts/{own_id}", headers=staff).status_code == 200
            # another commune's alert, and a province-wide one, do not exist for them
            assert client.get(f"/api/alerts/{other_id}", headers=staff).status_code == 404
            assert client.get(f"/api/alerts/{province_id}", headers=staff).status_code == 404
            assert client.post(f"/api/alerts/{own_id}/ack", headers=staff).status_code == 403
            leader = auth_headers("leader")
            every = client.get("/api/alerts", params={"rule": "rule_cs_scope"}, headers=leader)
            assert {a["id"] for a in every.json()} == {own_id, other_id, province_id}
            acked = client.post(f"/api/alerts/{own_id}/ack", headers=leader)
            assert acked.json()["acknowledged_by"] == "t_leader"
    finally:
        with seeded.begin() as conn:
            conn.execute(sa_text("DELETE FROM alert WHERE rule_id = :r"), {"r": rule_id})
            conn.execute(sa_text("DELETE FROM alert_rule WHERE id = :r"), {"r": rule_id})
