"""Scheduler, CLI and rules on the seeded demo."""

from __future__ import annotations

import asyncio
import time

import shapely
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from analytics import alerting, h3jobs, rules, scheduler
from geo_api.cli import app as cli_app
from layers.analytics import alerts as adb
from layers.analytics import h3 as h3db
from layers.features.bulk import FeatureRow, upsert_features
from layers.features.registry import get_layer
from layers.settings import Settings
from tests.analytics.conftest import MakeLayer, point_spec


def test_commune_area_rule_on_demo(seeded: Engine) -> None:
    spec = rules.RuleSpec(
        slug="hospitals_per_commune",
        name="hospitals in commune",
        kind="count",
        layer="hospitals",
        threshold=3,
        area=rules.RuleArea(kind="commune"),
    )
    with seeded.begin() as conn:
        alerting.install_rules(conn, [spec])
    rep = alerting.evaluate_all(seeded, layers=["hospitals"])
    assert rep.errors == {}
    with seeded.connect() as conn:
        counts = conn.execute(
            text(
                "SELECT a.code, count(*) FROM feature f JOIN layer l ON l.id = f.layer_id"
                " JOIN admin_unit a ON a.level = 'commune' AND ST_Intersects(a.geom, f.geom)"
                " WHERE l.slug = 'hospitals' GROUP BY a.code HAVING count(*) > 3"
            )
        ).all()
        alerts = adb.list_alerts(conn, rule="hospitals_per_commune", limit=1000)
    assert {a["area_ref"] for a in alerts} == {c for c, _ in counts}
    assert all(a["geometry"]["type"] == "MultiPolygon" for a in alerts)


def test_example_rules_install_and_skip_missing_layers(seeded: Engine) -> None:
    with seeded.begin() as conn:
        alerting.install_rules(conn, rules.EXAMPLE_RULES)
    rep = alerting.evaluate_all(seeded)
    # no water-level sensors or traffic density in the demo: reported, not raised
    assert "water_level_high" in rep.errors
    assert "field_reports_hex_24h" not in rep.errors


def test_scheduler_refreshes_after_layer_change(
    engine: Engine, make_layer: MakeLayer, settings: Settings
) -> None:
    lid = make_layer(point_spec("sched_layer", timed=False), [])
    with engine.begin() as conn:
        target = h3jobs.target_for(conn, get_layer(conn, "sched_layer"))
        assert target is not None
        h3jobs.refresh_target(conn, target)

    async def scenario() -> float:
        slow = settings.model_copy(
            update={"analytics_interval_s": 300.0, "analytics_scheduler": True}
        )
        assert scheduler.start(engine, settings) is None  # off in tests unless asked
        task = scheduler.start(engine, slow)
        try:
            await asyncio.sleep(3)  # first run done, now waiting for NOTIFY
            with engine.begin() as conn:
                upsert_features(
                    conn,
                    lid,
                    [FeatureRow("x", shapely.Point(105.7, 18.7), {"value": 2}, None)],
                )
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with engine.connect() as conn:
                    agg = h3db.read_aggregates(conn, lid)
                if len(agg.cell):
                    return float(agg.count.sum())
                await asyncio.sleep(0.5)
            return 0.0
        finally:
            await scheduler.stop(task)

    assert asyncio.run(scenario()) == 6.0  # one point at each of the six resolutions


def test_cli_refresh(seeded: Engine, settings: Settings) -> None:
    env = {"IOC_DATABASE_URL": settings.database_url or ""}
    res = CliRunner().invoke(cli_app, ["h3", "refresh", "--layer", "hospitals", "--full"], env=env)
    assert res.exit_code == 0, res.output
    assert "hospitals: full" in res.output
    res = CliRunner().invoke(cli_app, ["h3", "refresh"], env=env)
    assert res.exit_code == 0 and "field_reports" in res.output


def test_app_lifespan_starts_and_stops_scheduler(engine: Engine, settings: Settings) -> None:
    from fastapi.testclient import TestClient

    from geo_api.main import create_app

    on = settings.model_copy(update={"analytics_scheduler": True, "analytics_interval_s": 300.0})
    app = create_app(on)
    with TestClient(app):
        task = app.state.analytics_task
        assert task is not None and not task.done()
    assert app.state.analytics_task is None and task.done()
    off = create_app(settings)
    with TestClient(off):
        assert off.state.analytics_task is None
