"""The /api/indicators HTTP surface: every roll-up level, grains, forecast, choropleth, dashboard."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from layers.indicators import store as ind
from tests.conftest import hospital_observations

Headers = Callable[..., dict[str, str]]
# A year no other test writes, read with explicit windows.
D0 = date(2014, 1, 1)
NDAYS = 90
END = D0 + timedelta(days=NDAYS - 1)


@pytest.fixture(scope="module")
def health(seeded: Engine) -> pd.DataFrame:
    """Daily yt_records / yt_insured for 25 hospitals over Jan-Mar 2014."""
    rng = np.random.default_rng(14)
    with seeded.begin() as conn:
        hosp = conn.execute(
            text(
                "SELECT f.source_key, f.properties->>'commune_code' FROM feature f "
                "JOIN layer l ON l.id = f.layer_id WHERE l.slug = 'hospitals' "
                "ORDER BY f.source_key LIMIT 25"
            )
        ).all()
        recs = []
        for key, commune in hosp:
            base = float(rng.integers(50, 300))
            for d in range(NDAYS):
                n = base + d + float(rng.integers(0, 20))  # a rising trend
                recs.append((key, commune, D0 + timedelta(days=d), n, float(int(n * 0.9))))
        df = pd.DataFrame(recs, columns=["key", "commune", "day", "records", "insured"])
        rows = hospital_observations(df)
        assert ind.upsert_observations(conn, None, rows).rejected == []
    return df.assign(month=[d.replace(day=1) for d in df["day"]])


WINDOW = {"start": D0.isoformat(), "end": END.isoformat()}


def test_signed_out_callers_get_401(client: TestClient) -> None:
    for path in (
        "/api/indicators",
        "/api/indicators/yt_records",
        "/api/indicators/yt_records/choropleth",
        "/api/indicators/dashboards/yte",
    ):
        assert client.get(path).status_code == 401, path


def test_definitions_by_sector(
    client: TestClient, auth_headers: Headers, health: pd.DataFrame
) -> None:
    r = client.get("/api/indicators", headers=auth_headers("citizen"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["sectors"]) == 11  # 9 sectors + incident response overall and by type
    yte = next(s for s in body["sectors"] if s["code"] == "yte")
    assert yte["name_en"] == "Health operations" and "yt_records" in yte["indicators"]
    by_code = {d["code"]: d for d in body["indicators"]}
    rec = by_code["yt_records"]
    assert rec["levels"] == ["feature", "commune", "province"]
    assert rec["frequency"] == "day" and rec["subject_layer"] == "hospitals"
    assert rec["latest_period"] is not None and rec["latest_period"] >= END.isoformat()
    assert by_code["kt_poor_rate"]["levels"] == ["commune", "province"]
    assert by_code["hcc_late_rate"]["higher_is_better"] is False
    assert by_code["yt_insured_rate"]["rollup"] == "rate"


def _values(body: dict[str, object]) -> dict[tuple[str, str], float]:
    out = {}
    for s in body["series"]:  # type: ignore[attr-defined]
        for p, v in zip(body["periods"], s["values"], strict=True):  # type: ignore[call-overload]
            if v is not None:
                out[(s["subject"]["key"], p)] = v
    return out


def test_feature_level_with_forecast(
    client: TestClient, auth_headers: Headers, health: pd.DataFrame
) -> None:
    key = health["key"].iloc[0]
    r = client.get(
        "/api/indicators/yt_records",
        params={"level": "feature", "subject": key, "grain": "month", "forecast": 3, **WINDOW},
        headers=auth_headers("leader"),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["level"] == "feature" and body["grain"] == "month"
    assert body["periods"] == ["2014-01-01", "2014-02-01", "2014-03-01"]
    (series,) = body["series"]
    assert series["subject"]["key"] == key and series["subject"]["layer"] == "hospitals"
    assert series["subject"]["lng"] > 100 and series["subject"]["commune_code"]
    want = health[health["key"] == key].groupby("month")["records"].sum()
    assert series["values"] == pytest.approx([want[p] for p in want.index])
    assert series["trend"]["per"] == "month" and series["trend"]["slope"] > 0
    assert [f["period"] for f in series["forecast"]] == ["2014-04-01", "2014-05-01", "2014-06-01"]
    assert all(f["lower"] <= f["value"] <= f["upper"] for f in series["forecast"])
    # the summary ranks every hospital, not only the one asked for
    assert body["summary"]["latest_period"] == "2014-03-01"
    assert len(body["summary"]["top"]) == 5
    province = health[health["month"] == date(2014, 3, 1)]["records"].sum()
    assert body["summary"]["total"] == pytest.approx(province)


def test_feature_level_without_subject_lists_every_feature(
    client: TestClient, auth_headers: Headers, seeded: Engine, health: pd.DataFrame
) -> None:
    r = client.get(
        "/api/indicators/yt_records",
        params={"level": "feature", "start": "2014-03-01", "end": "2014-03-31", "grain": "month"},
        headers=auth_headers("operator"),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    with seeded.connect() as conn:
        n = conn.execute(
            text(
                "SELECT count(*) FROM feature f JOIN layer l ON l.id = f.layer_id "
                "WHERE l.slug = 'hospitals'"
            )
        ).scalar_one()
    assert len(body["series"]) == n
    assert "forecast" not in body["series"][0]
    assert sum(1 for s in body["series"] if s["values"][0] is not None) == 25


def test_commune_level_equals_pandas(
    client: TestClient, auth_headers: Headers, health: pd.DataFrame
) -> None:
    r = client.get(
        "/api/indicators/yt_records",
        params={"level": "commune", "grain": "month", **WINDOW},
        headers=auth_headers("planner"),
    )
    assert r.status_code == 200, r.text
    want = health.groupby(["commune", "month"])["records"].sum()
    got = _values(r.json())
    assert got == pytest.approx({(c, m.isoformat()): v for (c, m), v in want.items()})
    # one commune by subject
    commune = health["commune"].iloc[0]
    r = client.get(
        "/api/indicators/yt_insured_rate",
        params={"level": "commune", "subject": commune, "grain": "month", **WINDOW},
        headers=auth_headers("planner"),
    )
    sums = health[health["commune"] == commune].groupby("month")[["insured", "records"]].sum()
    (series,) = r.json()["series"]
    assert series["values"] == pytest.approx(list(sums["insured"] / sums["records"] * 100))


def test_province_level_rate_and_daily_grain(
    client: TestClient, auth_headers: Headers, health: pd.DataFrame
) -> None:
    r = client.get(
        "/api/indicators/yt_insured_rate",
        params={"level": "province", **WINDOW},
        headers=auth_headers("leader"),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["grain"] == "day" and len(body["periods"]) == NDAYS
    (series,) = body["series"]
    assert series["subject"]["key"] == "40" and series["subject"]["level"] == "province"
    sums = health.groupby("day")[["insured", "records"]].sum()
    assert series["values"] == pytest.approx(list(sums["insured"] / sums["records"] * 100))


def test_choropleth_by_commune(
    client: TestClient, auth_headers: Headers, health: pd.DataFrame
) -> None:
    r = client.get(
        "/api/indicators/yt_records/choropleth",
        params={"period": "2014-02-10", "grain": "month"},
        headers=auth_headers("citizen"),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["period"] == "2014-02-01" and body["higher_is_better"] is True
    want = health[health["month"] == date(2014, 2, 1)].groupby("commune")["records"].sum()
    assert body["values"] == pytest.approx(want.to_dict())
    assert len(body["breaks"]) == 5 and body["breaks"] == sorted(body["breaks"])
    assert body["breaks"][-1] == pytest.approx(want.max())


def test_dashboard_of_a_sector(
    client: TestClient, auth_headers: Headers, health: pd.DataFrame
) -> None:
    r = client.get("/api/indicators/dashboards/yte", params=WINDOW, headers=auth_headers("leader"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["sector"]["code"] == "yte"
    kpis = {k["indicator"]["code"]: k for k in body["kpis"]}
    rec = kpis["yt_records"]
    daily = health.groupby("day")["records"].sum()
    assert rec["latest_period"] == END.isoformat()
    assert rec["latest"] == pytest.approx(daily[END])
    assert rec["previous"] == pytest.approx(daily[END - timedelta(days=1)])
    assert rec["change_pct"] == pytest.approx(
        (daily[END] - daily[END - timedelta(days=1)]) / daily[END - timedelta(days=1)] * 100
    )
    assert len(rec["by_period"]) == NDAYS
    last = health[health["day"] == END].sort_values("records", ascending=False)
    assert [u["key"] for u in rec["by_unit"]] == list(last["key"][:10])
    assert [u["value"] for u in rec["bottom"]] == sorted(last["records"])[:5]
    # a unit is never both a top and a bottom one
    assert not {u["key"] for u in rec["top"]} & {u["key"] for u in rec["bottom"]}
    assert kpis["yt_deaths"]["latest"] is None
    # without a window: the last 30 days up to the latest day with data
    r = client.get("/api/indicators/dashboards/yte", headers=auth_headers("leader"))
    rec = {k["indicator"]["code"]: k for k in r.json()["kpis"]}["yt_records"]
    assert 0 < len(rec["by_period"]) <= 30
    # the last period shown is the headline, or the day still running after it
    current = rec["current"]["period"] if rec["current"] else None
    assert rec["by_period"][-1]["period"] in (rec["latest_period"], current)


@pytest.mark.clock
def test_a_running_period_is_not_the_headline_nor_in_the_trend(
    client: TestClient,
    auth_headers: Headers,
    health: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Pretend today is the last day of the data: its figures are the day so far.
    monkeypatch.setattr(ind, "today_local", lambda: END)
    h = auth_headers("leader")
    r = client.get("/api/indicators/dashboards/yte", params=WINDOW, headers=h)
    rec = {k["indicator"]["code"]: k for k in r.json()["kpis"]}["yt_records"]
    daily = health.groupby("day")["records"].sum()
    day_before = END - timedelta(days=1)
    assert rec["grain"] == "day" and rec["latest_period"] == day_before.isoformat()
    assert rec["latest_partial"] is False
    assert rec["latest"] == pytest.approx(daily[day_before])
    assert rec["current"] == {
        "period": END.isoformat(),
        "value": pytest.approx(daily[END]),
        "partial": True,
    }
    assert [p["partial"] for p in rec["by_period"][-2:]] == [False, True]
    # units are ranked on the last complete day
    last = health[health["day"] == day_before].sort_values("records", ascending=False)
    assert [u["key"] for u in rec["by_unit"]] == list(last["key"][:10])

    key = health["key"].iloc[0]
    params = {"level": "feature", "subject": key, "forecast": 2, **WINDOW}
    r = client.get("/api/indicators/yt_records", params=params, headers=h)
    body = r.json()
    assert body["in_progress"] == END.isoformat()
    (series,) = body["series"]
    # fitted without the running day; the forecast starts with it
    y = np.array(series["values"][:-1], dtype=np.float64)
    slope = np.polyfit(np.arange(len(y), dtype=np.float64), y, 1)[0]
    assert series["trend"]["slope"] == pytest.approx(slope)
    nxt = (END + timedelta(days=1)).isoformat()
    assert [f["period"] for f in series["forecast"]] == [END.isoformat(), nxt]
    r = client.get(
        "/api/indicators/yt_records/choropleth", params={"period": END.isoformat()}, headers=h
    )
    assert r.json()["in_progress"] is True
    r = client.get(
        "/api/indicators/yt_records/choropleth", params={"period": D0.isoformat()}, headers=h
    )
    assert r.json()["in_progress"] is False
    # a month read by month: March is the running month
    params = {"level": "province", "grain": "month", **WINDOW}
    r = client.get("/api/indicators/yt_records", params=params, headers=h)
    assert r.json()["in_progress"] == "2014-03-01"


def test_sparse_daily_feedback_is_tracked_by_month(
    client: TestClient, auth_headers: Headers
) -> None:
    r = client.get("/api/indicators/dashboards/phananh", headers=auth_headers("leader"))
    assert r.status_code == 200, r.text
    grains = {k["indicator"]["code"]: k["grain"] for k in r.json()["kpis"]}
    assert grains["pa_received"] == grains["pa_on_time_rate"] == "month"
    assert grains["tt_news"] == "day"


def test_clear_4xx(client: TestClient, auth_headers: Headers, health: pd.DataFrame) -> None:
    h = auth_headers("leader")
    cases = {
        "/api/indicators/nope": 404,
        "/api/indicators/nope/choropleth": 404,
        "/api/indicators/dashboards/nope": 404,
        "/api/indicators/yt_records?level=district": 400,
        "/api/indicators/yt_records?start=2014-13-01": 400,
        "/api/indicators/yt_records?start=2014-03-01&end=2014-01-01": 400,
        "/api/indicators/yt_records?level=commune&subject=nope": 404,
        "/api/indicators/yt_records?level=feature&subject=BV-9": 404,
        "/api/indicators/kt_poor_rate?level=feature": 400,
        "/api/indicators/gd_pupils?grain=month": 400,
        "/api/indicators/yt_records?forecast=-1": 400,
        "/api/indicators/gd_pupils?level=feature&forecast=2": 400,
    }
    for url, status in cases.items():
        r = client.get(url, headers=h)
        assert r.status_code == status, (url, r.text)
    r = client.get("/api/indicators/yt_records?level=feature&subject=BV-9", headers=h)
    assert "BV-9" in r.text
    r = client.get("/api/indicators/hcc_late_rat", headers=h)
    assert "did you mean hcc_late_rate" in r.json()["detail"]
