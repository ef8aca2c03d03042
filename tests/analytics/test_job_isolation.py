"""Item 4 of issue 14: no unbounded parameter lists; each scheduled job fails alone, retries
with backoff, and shows its last run and error in /health and GET /api/jobs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from analytics import scheduler
from geo_api.main import create_app
from layers.analytics import h3 as h3db
from layers.models.core import layer
from layers.settings import Settings

Headers = Callable[..., dict[str, str]]
MANY = 70_000  # more than PostgreSQL's 65,535 bind parameters


def test_feature_state_reads_take_any_number_of_ids(seeded: Engine) -> None:
    with seeded.begin() as conn:
        lid = conn.execute(select(layer.c.id).where(layer.c.slug == "hospitals")).scalar_one()
        everything = h3db.read_feature_state(conn, lid)
        ids = [*everything.ids.tolist(), *range(10**12, 10**12 + MANY)]
        state = h3db.read_feature_state(conn, lid, ids)
        assert sorted(state.ids.tolist()) == sorted(everything.ids.tolist())
        h3db.delete_feature_state(conn, -1, ids)
        conn.rollback()


class _Clock:
    def __init__(self) -> None:
        self.t = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.t


def test_a_failing_job_fails_alone_and_retries_with_backoff(
    seeded: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[str] = []

    def boom(engine: Engine, settings: object) -> None:
        ran.append("h3_refresh")
        raise RuntimeError("number of parameters must be between 0 and 65535\nat /srv/x.py")

    jobs = (
        ("h3_refresh", boom),
        ("derived_indicators", lambda e, s: ran.append("derived_indicators")),
        ("alert_rules", lambda e, s: ran.append("alert_rules")),
    )
    monkeypatch.setattr(scheduler, "JOBS", jobs)
    board = scheduler.JobBoard(retry_base_s=10, retry_max_s=60)
    clock = _Clock()
    scheduler.run_once(seeded, board, clock)
    assert ran == ["h3_refresh", "derived_indicators", "alert_rules"]
    h3 = board.jobs["h3_refresh"]
    assert h3.failures == 1 and h3.last_ok_at is None
    assert h3.last_error == "RuntimeError: number of parameters must be between 0 and 65535"
    assert h3.retry_at == clock.t + timedelta(seconds=10)
    assert board.jobs["alert_rules"].last_ok_at == clock.t

    ran.clear()
    clock.t += timedelta(seconds=5)  # still backing off: the others run, h3 waits
    scheduler.run_once(seeded, board, clock)
    assert ran == ["derived_indicators", "alert_rules"]
    clock.t += timedelta(seconds=6)
    scheduler.run_once(seeded, board, clock)
    assert ran[-3:] == ["h3_refresh", "derived_indicators", "alert_rules"]
    assert h3.failures == 2 and h3.retry_at == clock.t + timedelta(seconds=20)
    assert board.backoff(10) == timedelta(seconds=60)  # capped

    monkeypatch.setattr(scheduler, "JOBS", (("h3_refresh", lambda e, s: None), *jobs[1:]))
    clock.t += timedelta(seconds=21)
    scheduler.run_once(seeded, board, clock)
    assert h3.failures == 0 and h3.last_error is None and h3.last_ok_at == clock.t


def test_jobs_show_in_health_and_the_jobs_list(
    seeded: Engine, settings: Settings, auth_headers: Headers
) -> None:
    app = create_app(settings)
    with TestClient(app) as c:
        board = app.state.jobs
        board.jobs["h3_refresh"].failures = 3
        board.jobs["h3_refresh"].last_error = "OperationalError: too many parameters"
        health = c.get("/health").json()
        assert health["jobs"]["h3_refresh"]["last_error"].startswith("OperationalError")
        assert c.get("/api/jobs").status_code == 401
        assert c.get("/api/jobs", headers=auth_headers("citizen")).status_code == 403
        res = c.get("/api/jobs", headers=auth_headers("operator"))
        assert res.status_code == 200
        body = res.json()
        assert body["scheduler"] == "off"  # not started in tests
        names = [j["name"] for j in body["jobs"]]
        assert names == ["h3_refresh", "derived_indicators", "alert_rules"]
        assert body["jobs"][0]["failures"] == 3
