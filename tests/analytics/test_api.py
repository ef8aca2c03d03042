"""H3 and analytics endpoints over the seeded demo."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import h3
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from analytics import h3jobs


@pytest.fixture(scope="module")
def client_options(seeded: Engine) -> dict[str, Any]:
    h3jobs.refresh_all(seeded)
    return {}


def _report_window(engine: Engine) -> tuple[datetime, datetime, int]:
    with engine.connect() as conn:
        t0, t1 = conn.execute(
            text(
                "SELECT min(observed_at), max(observed_at) FROM feature f JOIN layer l"
                " ON l.id = f.layer_id WHERE l.slug = 'field_reports'"
            )
        ).one()
        start = datetime(t0.year, t0.month, t0.day, tzinfo=UTC)
        end = datetime(t1.year, t1.month, t1.day, tzinfo=UTC)
        n = conn.execute(
            text(
                "SELECT count(*) FROM feature f JOIN layer l ON l.id = f.layer_id"
                " WHERE l.slug = 'field_reports' AND observed_at >= :a AND observed_at < :b"
            ),
            {"a": start, "b": end},
        ).scalar_one()
    return start, end, int(n)


def test_h3_cells_sum_to_reports_in_window(client: TestClient, seeded: Engine) -> None:
    start, end, n = _report_window(seeded)
    r = client.get(
        "/api/h3/field_reports",
        params={"res": 7, "from": start.isoformat(), "to": end.isoformat()},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["bucket_s"] == 86400 and body["stale"] is False
    assert len(body["cells"]) == len(body["values"]) > 0
    assert all(h3.is_valid_cell(c) and h3.get_resolution(c) == 7 for c in body["cells"])
    assert sum(body["values"]) == n
    # an unaligned window is snapped to 15 minutes and says so
    r = client.get(
        "/api/h3/field_reports",
        params={"res": 7, "from": "2026-01-01T00:07:00Z", "to": "2026-01-02T00:00:00Z"},
    )
    assert r.json()["bucket_s"] == 900 and r.json()["from"].startswith("2026-01-01T00:00")


def test_h3_measures_and_errors(client: TestClient) -> None:
    r = client.get("/api/h3/hospitals", params={"res": 6, "measure": "sum:beds"})
    assert r.status_code == 200 and sum(r.json()["values"]) > 0
    mean = client.get("/api/h3/hospitals", params={"res": 6, "measure": "mean:beds"}).json()
    assert all(v is None or v > 0 for v in mean["values"])
    assert client.get("/api/h3/hospitals", params={"measure": "sum:nope"}).status_code == 400
    assert client.get("/api/h3/hospitals", params={"res": 11}).status_code == 400
    assert client.get("/api/h3/no_such_layer").status_code == 404
    assert client.get("/api/h3/admin_communes").status_code == 404
    bbox = client.get(
        "/api/h3/hospitals", params={"res": 8, "bbox": "105.6,18.6,105.75,18.75"}
    ).json()
    full = client.get("/api/h3/hospitals", params={"res": 8}).json()
    assert 0 < len(bbox["cells"]) < len(full["cells"])


def test_commune_aggregates_and_indicators(client: TestClient, seeded: Engine) -> None:
    body = client.get("/api/h3/hospitals/communes", params={"measure": "count"}).json()
    with seeded.connect() as conn:
        n = conn.execute(
            text(
                "SELECT count(*) FROM feature f JOIN layer l ON l.id = f.layer_id"
                " WHERE l.slug = 'hospitals'"
            )
        ).scalar_one()
    assert sum(c["value"] for c in body["communes"]) == n
    rows = client.get("/api/analytics/indicators").json()
    assert len(rows) == len(body["communes"])
    assert any(r["schools_per_10k"] for r in rows)
    assert all(r["resolution_rate"] is None or 0 <= r["resolution_rate"] <= 1 for r in rows)


def test_hotspots_change_forecast(client: TestClient, seeded: Engine) -> None:
    start, end, _ = _report_window(seeded)
    hs = client.get(
        "/api/h3/field_reports/hotspots",
        params={"res": 7, "from": start.isoformat(), "to": end.isoformat()},
    ).json()
    assert len(hs["cells"]) == len(hs["z"]) == len(hs["spot"]) and hs["hot"] > 0
    mid = start + (end - start) / 2
    mid = mid.replace(hour=0, minute=0, second=0, microsecond=0)
    ch = client.get(
        "/api/h3/field_reports/change",
        params={
            "res": 7,
            "a_from": start.isoformat(),
            "a_to": mid.isoformat(),
            "b_from": mid.isoformat(),
            "b_to": end.isoformat(),
        },
    ).json()
    assert len(ch["cells"]) == len(ch["delta"]) > 0
    fc = client.get(
        "/api/h3/field_reports/forecast", params={"freq": "week", "periods": 8, "horizon": 3}
    ).json()
    assert len(fc["values"]) == 8 and len(fc["forecast"]) == 3
    assert all(
        lo <= m <= hi for lo, m, hi in zip(fc["lower"], fc["forecast"], fc["upper"], strict=True)
    )
