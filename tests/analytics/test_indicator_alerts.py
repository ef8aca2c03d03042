"""Indicator alert rules: thresholds per commune, percentiles per weekday, auto-resolve, gaps."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, text

from analytics import alerting, rules
from analytics.alerting import EvalReport
from geo_api.main import create_app
from layers import alerts as adb
from layers import indicators as ind
from layers.bulk import FeatureRow, upsert_features
from layers.indicators import ObservationIn
from layers.registry import get_layer, mark_layer_changed
from layers.settings import Settings

# Tests write into 2031, which no other test or the demo uses, and clean up after themselves.
NOW = datetime(2031, 3, 18, 3, 0, tzinfo=UTC)  # 10:00 on Tuesday 18 March 2031 in Vinh
MONTH = date(2031, 3, 1)
YESTERDAY = date(2031, 3, 17)  # a Monday
ICT = ZoneInfo("Asia/Ho_Chi_Minh")


@pytest.fixture(autouse=True)
def _drop_test_rules(engine: Engine) -> Iterator[None]:
    """Rules (and, by cascade, alerts) made here go away after each test."""
    yield
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM alert_rule WHERE slug LIKE 't\\_%'"))


def _install(engine: Engine, spec: rules.RuleSpec) -> int:
    with engine.begin() as conn:
        (rule_id,) = alerting.install_rules(conn, [spec])
    return rule_id


def _evaluate(engine: Engine, rule_id: int, now: datetime = NOW) -> EvalReport:
    rep = EvalReport()
    with engine.begin() as conn:
        row = next(r for r in adb.list_rules(conn) if r["id"] == rule_id)
        alerting.evaluate_rule(conn, row, now, rep)
    return rep


def _alerts(engine: Engine, slug: str, status: tuple[str, ...] = ()) -> list[dict[str, object]]:
    with engine.connect() as conn:
        return adb.list_alerts(conn, rule=slug, status=status, limit=1000)


def _upsert(conn: Connection, rows: list[ObservationIn]) -> None:
    counts = ind.upsert_observations(conn, None, rows)
    assert counts.rejected == []


def _obs(code: str, layer: str | None, key: str, day: date, value: float) -> ObservationIn:
    freq = ind.get_indicator(code).frequency
    return ObservationIn(
        indicator=code,
        subject_layer=layer,
        subject_key=key,
        period_start=day,
        period_end=ind.period_end(day, freq),
        value=value,
    )


def _cleanup(engine: Engine, *codes: str) -> None:
    with engine.begin() as conn:
        for code in codes:
            ind.delete_observations(conn, code, date(2030, 1, 1), date(2031, 12, 31))


# --- pure -----------------------------------------------------------------------------------


def test_comparable_columns_same_weekday_or_month() -> None:
    days = [date(2031, 1, 1) + timedelta(days=k) for k in range(60)]
    cols = rules.comparable_columns(days, 59, "day", history=4)
    assert [days[c] for c in cols] == [days[59] - timedelta(weeks=k) for k in (4, 3, 2, 1)]
    months = [date(2028 + k // 12, k % 12 + 1, 1) for k in range(40)]  # 2028-01 .. 2031-04
    cols = rules.comparable_columns(months, 38, "month", history=8)
    assert [months[c] for c in cols] == [date(2028, 3, 1), date(2029, 3, 1), date(2030, 3, 1)]


def _spec(**kw: object) -> rules.RuleSpec:
    base: dict[str, object] = {
        "slug": "pure_rule",
        "name": "pure",
        "kind": "indicator",
        "indicator": "yt_emergencies",
    }
    return rules.RuleSpec.model_validate(base | kw)


def test_indicator_firings_threshold_and_percentile() -> None:
    periods = [date(2031, 1, 1) + timedelta(days=k) for k in range(29)]
    values = np.full((3, 29), np.nan)
    values[0, [0, 7, 14, 21]] = [10, 11, 12, 13]
    values[0, 28] = 12.9
    values[1, [14, 21]] = [1, 1]  # too little history
    values[1, 28] = 100
    values[2, 28] = 6
    args = (["a", "b", "c"], ["A", "B", "C"], [1.0, 2.0, None], [3.0, 4.0, None])
    kw = {"current": periods[28], "previous": periods[27], "frequency": "day"}
    pct = _spec(mode="percentile", threshold=95, history=4, min_history=3, period="current")
    got = rules.indicator_firings(pct, periods, values, *args, **kw)  # type: ignore[arg-type]
    assert [(f.area_ref, f.threshold) for f in got] == [("a", pytest.approx(12.85))]
    assert got[0].key == "a@2031-01-29" and got[0].lng == 1.0
    thr = _spec(threshold=6, condition=">=", period="current", level="commune")
    got = rules.indicator_firings(thr, periods, values, *args, **kw)  # type: ignore[arg-type]
    assert [f.area_ref for f in got] == ["a", "b", "c"] and got[2].lng is None
    assert got[2].area_kind == "commune" and "C 6 >= 6" in got[2].title
    # the period asked for is not in the data: nothing fires
    early = {**kw, "current": date(2031, 2, 5), "previous": date(2031, 2, 4)}
    assert rules.indicator_firings(thr, periods, values, *args, **early) == []  # type: ignore[arg-type]
    # latest: the last period with any value
    latest = _spec(threshold=0, period="latest")
    values[:, 28] = np.nan
    got = rules.indicator_firings(latest, periods, values, *args, **kw)  # type: ignore[arg-type]
    assert {f.extra["period"] for f in got} == {"2031-01-22"}


def test_indicator_rule_specs_are_validated() -> None:
    with pytest.raises(ValueError, match="indicator"):
        rules.RuleSpec(slug="bad_ind", name="x", kind="indicator", threshold=1)
    with pytest.raises(ValueError, match=r"\(0, 100\)"):
        _spec(mode="percentile", threshold=120)
    with pytest.raises(ValueError, match="min_history"):
        _spec(history=3, min_history=5)
    with pytest.raises(ValueError, match="layer"):
        rules.RuleSpec(slug="bad_count", name="x", kind="count", threshold=1)
    slugs = {r.slug for r in rules.EXAMPLE_RULES}
    assert {"hcc_late_rate_commune", "yt_emergencies_hospital_p95"} <= slugs
    assert "news_negative_commune_24h" in slugs


# --- against the database -------------------------------------------------------------------


def _agencies_by_commune(conn: Connection) -> dict[str, list[str]]:
    rows = conn.execute(
        text(
            "SELECT f.properties->>'commune_code', f.source_key FROM feature f "
            "JOIN layer l ON l.id = f.layer_id WHERE l.slug = 'agencies' ORDER BY 2"
        )
    ).all()
    out: dict[str, list[str]] = {}
    for commune, key in rows:
        out.setdefault(str(commune), []).append(str(key))
    return out


@pytest.fixture
def late_dossiers(seeded: Engine) -> Iterator[tuple[str, str, str]]:
    """March 2031 dossiers in two communes: 6% late in one, exactly 5% in the other."""
    with seeded.begin() as conn:
        by_commune = _agencies_by_commune(conn)
        pair = [c for c, keys in sorted(by_commune.items()) if len(keys) >= 1][:2]
        assert len(pair) == 2, "the demo needs agencies in at least two communes"
        over, under = pair
        a_over, a_under = by_commune[over][0], by_commune[under][0]
        rows = [
            _obs("hcc_resolved", "agencies", a_over, MONTH, 100),
            _obs("hcc_late", "agencies", a_over, MONTH, 6),
            _obs("hcc_resolved", "agencies", a_under, MONTH, 100),
            _obs("hcc_late", "agencies", a_under, MONTH, 5),
        ]
        # the other agencies of those communes report nothing late, so the rate stays as set
        _upsert(conn, rows)
    yield over, under, a_over
    _cleanup(seeded, "hcc_resolved", "hcc_late")


def test_threshold_per_commune_fires_over_and_auto_resolves(
    seeded: Engine, late_dossiers: tuple[str, str, str]
) -> None:
    over, under, agency = late_dossiers
    spec = rules.RuleSpec(
        slug="t_hcc_late_rate",
        name="late dossiers",
        kind="indicator",
        indicator="hcc_late_rate",
        level="commune",
        subjects=[over, under],
        threshold=5,
        period="current",
        auto_resolve=True,
    )
    rule_id = _install(seeded, spec)
    rep = _evaluate(seeded, rule_id)
    assert len(rep.opened) == 1
    with seeded.connect() as conn:
        a = adb.get_alert(conn, rep.opened[0])
    assert (a["area_kind"], a["area_ref"]) == ("commune", over)
    assert a["value"] == pytest.approx(6.0) and a["threshold"] == 5
    assert a["geometry"]["type"] == "MultiPolygon"  # the commune, for the map to fly to
    ev = a["evidence"]
    assert ev["indicator"] == "hcc_late_rate" and ev["period"] == "2031-03-01"
    assert ev["unit"] == "%" and "6% > 5%, 2031-03-01" in a["title"]
    assert ev["subject"]["key"] == over and ev["subject"]["lng"] is not None
    assert ev["links"] == [f"/api/indicators/hcc_late_rate?level=commune&subject={over}"]
    # the month in the province's calendar
    assert a["window_start"].astimezone(ICT).replace(tzinfo=None) == datetime(2031, 3, 1)
    assert a["window_end"].astimezone(ICT).replace(tzinfo=None) == datetime(2031, 4, 1)
    # still over: deduplicated
    again = _evaluate(seeded, rule_id)
    assert again.opened == [] and again.refreshed == rep.opened
    # the previous month, which has no data, fires nothing
    prev = spec.model_copy(update={"slug": "t_hcc_late_rate_prev", "period": "latest_complete"})
    assert _evaluate(seeded, _install(seeded, prev)).opened == []
    # a late correction brings it to 5%: the alert resolves by itself
    with seeded.begin() as conn:
        _upsert(conn, [_obs("hcc_late", "agencies", agency, MONTH, 5)])
    rep = _evaluate(seeded, rule_id)
    assert rep.opened == [] and rep.resolved == [a["id"]]
    assert _alerts(seeded, "t_hcc_late_rate", ("open",)) == []


def test_threshold_at_province_level(seeded: Engine, late_dossiers: tuple[str, str, str]) -> None:
    spec = rules.RuleSpec(
        slug="t_hcc_late_rate_prov",
        name="late dossiers, province",
        kind="indicator",
        indicator="hcc_late_rate",
        level="province",
        threshold=5,
    )
    rep = _evaluate(seeded, _install(seeded, spec))
    assert len(rep.opened) == 1
    with seeded.connect() as conn:
        a = adb.get_alert(conn, rep.opened[0])
    # (6 + 5) late of 200 resolved across the province
    assert a["area_kind"] == "province" and a["value"] == pytest.approx(5.5)
    assert a["geometry"]["type"] == "Point"


def _hospitals(conn: Connection, n: int) -> list[str]:
    return [
        str(k)
        for (k,) in conn.execute(
            text(
                "SELECT f.source_key FROM feature f JOIN layer l ON l.id = f.layer_id "
                "WHERE l.slug = 'hospitals' ORDER BY f.source_key LIMIT :n"
            ),
            {"n": n},
        )
    ]


@pytest.mark.parametrize(("value", "fires"), [(16.7, True), (16.6, False)])
def test_percentile_for_this_weekday_at_a_hospital(
    seeded: Engine, value: float, fires: bool
) -> None:
    with seeded.begin() as conn:
        busy, new = _hospitals(conn, 2)
        rows = []
        # eight previous Mondays: 10..17 emergencies, so p95 = 16.65
        for k, v in enumerate(range(17, 9, -1), start=1):
            rows.append(
                _obs("yt_emergencies", "hospitals", busy, YESTERDAY - timedelta(weeks=k), v)
            )
        # other weekdays are busier and must not count
        for k in range(1, 57):
            if k % 7:
                day = YESTERDAY - timedelta(days=k)
                rows.append(_obs("yt_emergencies", "hospitals", busy, day, 500))
        rows.append(_obs("yt_emergencies", "hospitals", busy, YESTERDAY, value))
        # a hospital with two Mondays of history only: never compared
        for k in (1, 2):
            day = YESTERDAY - timedelta(weeks=k)
            rows.append(_obs("yt_emergencies", "hospitals", new, day, 1))
        rows.append(_obs("yt_emergencies", "hospitals", new, YESTERDAY, 400))
        # today is incomplete and must not be what the rule looks at
        rows.append(_obs("yt_emergencies", "hospitals", busy, YESTERDAY + timedelta(days=1), 999))
        _upsert(conn, rows)
    try:
        spec = rules.RuleSpec(
            slug=f"t_emerg_{int(value * 10)}",
            name="emergencies p95",
            kind="indicator",
            indicator="yt_emergencies",
            level="feature",
            mode="percentile",
            threshold=95,
            period="latest_complete",
            history=8,
            min_history=4,
            auto_resolve=True,
        )
        rep = _evaluate(seeded, _install(seeded, spec))
        assert len(rep.opened) == (1 if fires else 0)
        if fires:
            with seeded.connect() as conn:
                a = adb.get_alert(conn, rep.opened[0])
            assert (a["area_kind"], a["area_ref"]) == ("feature", busy)
            assert a["threshold"] == pytest.approx(16.65) and a["value"] == pytest.approx(value)
            assert a["geometry"]["type"] == "Point"
            assert a["evidence"]["subject"]["layer"] == "hospitals"
            assert a["evidence"]["history_periods"] == 8
            assert "của cùng thứ trong tuần" in a["title"]
    finally:
        _cleanup(seeded, "yt_emergencies")


def test_missing_indicator_or_layer_is_reported_not_raised(seeded: Engine) -> None:
    bad = [
        rules.RuleSpec(
            slug="t_missing_indicator",
            name="x",
            kind="indicator",
            indicator="no_such_indicator",
            threshold=1,
        ),
        # an indicator measured on communes cannot be read per feature
        rules.RuleSpec(
            slug="t_wrong_level",
            name="x",
            kind="indicator",
            indicator="kt_budget_revenue",
            level="feature",
            threshold=1,
        ),
        rules.RuleSpec(
            slug="t_unknown_subject",
            name="x",
            kind="indicator",
            indicator="kt_budget_revenue",
            subjects=["99999"],
            threshold=1,
        ),
    ]
    ok = rules.RuleSpec(
        slug="t_fine_indicator",
        name="x",
        kind="indicator",
        indicator="kt_budget_revenue",
        threshold=1,
    )
    with seeded.begin() as conn:
        alerting.install_rules(conn, [*bad, ok])
    codes = ["no_such_indicator", "kt_budget_revenue"]
    rep = alerting.evaluate_all(seeded, NOW, indicators=codes)
    assert set(rep.errors) == {r.slug for r in bad}
    assert "no_such_indicator" in rep.errors["t_missing_indicator"]
    assert rep.evaluated == 1
    # new figures for a rate's part re-evaluate rules on the rate
    assert alerting.evaluate_all(seeded, NOW, indicators=["hcc_late"]).evaluated == 0
    rate = ok.model_copy(update={"slug": "t_rate_rule", "indicator": "hcc_late_rate"})
    _install(seeded, rate)
    assert alerting.evaluate_all(seeded, NOW, indicators=["hcc_late"]).evaluated == 1
    # a layer filter alone leaves indicator rules out
    assert alerting.evaluate_all(seeded, NOW, layers=["hospitals"]).errors == {}


def test_example_rules_run_on_the_demo(seeded: Engine) -> None:
    with seeded.begin() as conn:
        alerting.install_rules(conn, rules.EXAMPLE_RULES)
    mine = {"hcc_late_rate_commune", "yt_emergencies_hospital_p95", "news_negative_commune_24h"}
    rep = alerting.evaluate_all(seeded, indicators=["hcc_late_rate", "yt_emergencies"])
    assert rep.evaluated >= 2 and not mine & set(rep.errors)
    rep = alerting.evaluate_all(seeded, layers=["news_items"])
    assert rep.evaluated >= 1 and not mine & set(rep.errors)


def test_negative_news_per_commune_uses_the_items_commune(seeded: Engine) -> None:
    spec = next(r for r in rules.EXAMPLE_RULES if r.slug == "news_negative_commune_24h")
    with seeded.begin() as conn:
        info = get_layer(conn, "news_items")
        communes = [
            (str(c), float(x), float(y))
            for c, x, y in conn.execute(
                text(
                    "SELECT code, ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) "
                    "FROM admin_unit WHERE level = 'commune' AND valid_to IS NULL "
                    "ORDER BY code LIMIT 3"
                )
            )
        ]
        (spike, cx, cy), (calm, _, _), (elsewhere, ex, ey) = communes
        t = NOW - timedelta(hours=3)

        def item(
            key: str, code: str, sentiment: str, at: datetime, x: float, y: float
        ) -> FeatureRow:
            props = {
                "title": key,
                "published_at": at.isoformat(),
                "sentiment": sentiment,
                "commune_code": code,
                "match": "matched",
            }
            return FeatureRow(f"t_news_{key}", shapely.Point(x, y), props, at)

        rows = [item(f"s{i}", spike, "negative", t, cx, cy) for i in range(3)]
        # jittered off its commune: still counts for the commune it names
        rows.append(item("s3", spike, "negative", t, ex, ey))
        rows += [item(f"c{i}", calm, "negative", t, ex, ey) for i in range(3)]
        rows += [item(f"p{i}", calm, "positive", t, ex, ey) for i in range(3)]
        rows += [
            item(f"o{i}", calm, "negative", NOW - timedelta(hours=30), ex, ey) for i in range(3)
        ]
        upsert_features(conn, info.id, rows)
        mark_layer_changed(conn, info.id)
    try:
        rep = _evaluate(seeded, _install(seeded, spec))
        with seeded.connect() as conn:
            opened = [adb.get_alert(conn, i) for i in rep.opened]
        assert [(a["area_kind"], a["area_ref"], a["value"]) for a in opened] == [
            ("commune", spike, 4.0)
        ]
        assert elsewhere not in {a["area_ref"] for a in opened}
        with seeded.connect() as conn:
            name = conn.execute(
                text("SELECT name FROM admin_unit WHERE code = :c AND valid_to IS NULL"),
                {"c": spike},
            ).scalar_one()
        # The title names the commune, so the alert list reads without the map.
        assert f"{name} ({spike}) 4 > 3" in opened[0]["title"]
    finally:
        with seeded.begin() as conn:
            conn.execute(
                text("DELETE FROM feature WHERE layer_id = :l AND source_key LIKE 't_news_%'"),
                {"l": info.id},
            )
            mark_layer_changed(conn, info.id)
            conn.execute(
                text(
                    "DELETE FROM alert WHERE rule_id IN (SELECT id FROM alert_rule WHERE slug = :s)"
                ),
                {"s": spec.slug},
            )


def test_indicator_rule_through_the_api(
    engine: Engine, settings: Settings, auth_headers: Callable[..., dict[str, str]]
) -> None:
    body = {
        "slug": "t_api_indicator",
        "name": "late dossiers",
        "kind": "indicator",
        "indicator": "hcc_late_rate",
        "level": "commune",
        "threshold": 5,
    }
    with TestClient(create_app(settings), headers=auth_headers("operator")) as client:
        r = client.put("/api/alerts/rules", json=body)
        assert r.status_code == 200 and r.json()["slug"] == "t_api_indicator"
        stored = next(
            x for x in client.get("/api/alerts/rules").json() if x["slug"] == body["slug"]
        )
        assert stored["spec"]["kind"] == "indicator" and stored["spec"]["period"] == "current"
        bad = {**body, "mode": "percentile", "threshold": 150}
        assert client.put("/api/alerts/rules", json=bad).status_code == 400
        assert client.put("/api/alerts/rules", json={**body, "level": "hex"}).status_code == 400
