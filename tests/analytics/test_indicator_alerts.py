"""Indicator alert rules: thresholds, percentiles per weekday, spikes, floors, auto-resolve."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
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
from layers.analytics import alerts as adb
from layers.features.bulk import FeatureRow, upsert_features
from layers.features.registry import get_layer, mark_layer_changed
from layers.indicators import store as ind
from layers.indicators.store import ObservationIn
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


def test_fill_count_gaps_only_where_the_source_reported() -> None:
    nan = np.nan
    values = np.array(
        [
            [nan, 1.0, nan, nan, nan, nan, 4.0],  # a commune with sparse items
            [2.0, 2.0, nan, 1.0, 3.0, nan, nan],
            [nan, nan, nan, nan, 5.0, nan, nan],  # a unit that started reporting on day 4
        ]
    )
    # Day 2: nobody reported (a feed outage): a gap, but where the subject has values on
    # both sides it is taken as a quiet day. Day 5 likewise, only for the first commune.
    got = rules.fill_count_gaps(values, from_first_value=False)
    want = [
        [0, 1, 0, 0, 0, 0, 4],
        [2, 2, 0, 1, 3, nan, 0],
        [0, 0, nan, 0, 5, nan, 0],
    ]
    assert np.array_equal(got, want, equal_nan=True)
    got = rules.fill_count_gaps(values, from_first_value=True)
    want = [
        [nan, 1, 0, 0, 0, 0, 4],
        [2, 2, 0, 1, 3, nan, 0],
        [nan, nan, nan, nan, 5, nan, 0],
    ]
    assert np.array_equal(got, want, equal_nan=True)
    assert np.isnan(values[0, 0])  # the input is left alone
    # a single subject (a province, a rule on one unit): its own values bracket the gaps
    one = np.array([[nan, 3.0, nan, nan, 2.0, nan]])
    got = rules.fill_count_gaps(one, from_first_value=False)
    assert np.array_equal(got, [[nan, 3, 0, 0, 2, nan]], equal_nan=True)


def test_spike_baseline_mean_and_std() -> None:
    hist = np.array([[0.0, 0, 0, 4], [2, 2, 2, 2], [1, np.nan, np.nan, np.nan]])
    base, std, n = rules.spike_baseline(hist, 0.0, min_history=2)
    assert base[:2].tolist() == [1.0, 2.0] and np.isnan(base[2])
    assert std[0] == pytest.approx(np.sqrt(3)) and std[1] == 0 and n.tolist() == [4, 4, 1]
    base, _, _ = rules.spike_baseline(hist, 2.0, min_history=2)
    assert base[0] == pytest.approx(1 + 2 * np.sqrt(3)) and base[1] == 2.0


def test_indicator_firings_spike() -> None:
    periods = [date(2031, 1, 1) + timedelta(days=k) for k in range(11)]
    nan = np.nan
    values = np.full((5, 11), nan)
    values[0, [2, 6]] = 3  # sparse: baseline (3 + 3) / 10 = 0.6 once gaps count as 0
    values[0, 10] = 9
    values[1, :10] = 4  # busy: baseline 4, limit 12
    values[1, 10] = 11
    values[2, 10] = 2  # over a baseline of 0, but under min_value
    values[3, 10] = 5  # no earlier value: a spike over a baseline of 0
    values[4, [1, 2, 3]] = 1  # no value in the target period: never fires
    keys = ["a", "b", "c", "d", "e"]
    args = (keys, [k.upper() for k in keys], [None] * 5, [None] * 5)
    kw = {"current": periods[10], "previous": periods[9], "frequency": "day", "unit": "tin"}
    spec = _spec(mode="spike", threshold=3, history=10, min_history=5, min_value=5, level="commune")
    got = rules.indicator_firings(spec, periods, values, *args, zero_fill=True, **kw)  # type: ignore[arg-type]
    assert [(f.area_ref, f.value) for f in got] == [("a", 9.0), ("d", 5.0)]
    a = got[0]
    assert a.threshold == pytest.approx(1.8) and a.extra["baseline"] == pytest.approx(0.6)
    assert a.extra["history_periods"] == 10 and a.extra["mode"] == "spike"
    assert "A 9 tin > 1.8 (gấp 3 lần mức nền 0.6 của 10 ngày trước), 2031-01-11" in a.title
    # Without reading gaps as 0, the sparse commune has too little history (2 < 5 periods).
    got = rules.indicator_firings(spec, periods, values, *args, **kw)  # type: ignore[arg-type]
    assert got == []
    # mean + 1 std: the sparse commune's limit rises to 3 x (0.6 + 1.2) = 5.4
    wide = spec.model_copy(update={"spike_std": 1.0})
    got = rules.indicator_firings(wide, periods, values, *args, zero_fill=True, **kw)  # type: ignore[arg-type]
    assert [f.area_ref for f in got] == ["a", "d"] and got[0].threshold == pytest.approx(5.4)
    higher = spec.model_copy(update={"min_excess": 4.0})  # d: 5 - 0 >= 4, a: 9 - 1.8 >= 4
    got = rules.indicator_firings(higher, periods, values, *args, zero_fill=True, **kw)  # type: ignore[arg-type]
    assert [f.area_ref for f in got] == ["a", "d"]
    higher = spec.model_copy(update={"min_excess": 7.5})
    got = rules.indicator_firings(higher, periods, values, *args, zero_fill=True, **kw)  # type: ignore[arg-type]
    assert got == []
    # reporting units (features) count gaps as 0 only after their first value
    feat = spec.model_copy(update={"level": "feature"})
    got = rules.indicator_firings(feat, periods, values, *args, zero_fill=True, **kw)  # type: ignore[arg-type]
    # a: 8 periods from its first value, baseline 6 / 8; d: none before the target
    assert [f.area_ref for f in got] == ["a"] and got[0].threshold == pytest.approx(2.25)


def test_percentile_floor_and_margin() -> None:
    periods = [date(2031, 1, 1) + timedelta(days=k) for k in range(29)]
    values = np.zeros((3, 29))
    values[0, 28] = 1  # one case over a history of zeros
    values[1, 28] = 4  # a real surge
    values[2, [0, 7, 14, 21]] = [3, 4, 5, 6]
    values[2, 28] = 6.5  # over its p95 (5.85), but by less than the margin
    args = (["a", "b", "c"], ["A", "B", "C"], [None] * 3, [None] * 3)
    kw = {"current": periods[28], "previous": periods[27], "frequency": "day"}
    pct = _spec(mode="percentile", threshold=95, history=4, min_history=3, period="current")
    got = rules.indicator_firings(pct, periods, values, *args, **kw)  # type: ignore[arg-type]
    assert [f.area_ref for f in got] == ["a", "b", "c"]
    floor = pct.model_copy(update={"min_value": 2})
    got = rules.indicator_firings(floor, periods, values, *args, **kw)  # type: ignore[arg-type]
    assert [f.area_ref for f in got] == ["b", "c"]
    both = pct.model_copy(update={"min_value": 2, "min_excess": 1})
    got = rules.indicator_firings(both, periods, values, *args, **kw)  # type: ignore[arg-type]
    assert [(f.area_ref, f.threshold) for f in got] == [("b", 0.0)]
    # a low-side rule: the margin is measured below the percentile
    low = pct.model_copy(update={"condition": "<", "threshold": 5, "min_excess": 1})
    values[2, 28] = 3.1  # p5 of 3, 4, 5, 6 is 3.15: under it, but not by 1
    got = rules.indicator_firings(low, periods, values, *args, **kw)  # type: ignore[arg-type]
    assert got == []
    values[2, 28] = 2
    got = rules.indicator_firings(low, periods, values, *args, **kw)  # type: ignore[arg-type]
    assert [f.area_ref for f in got] == ["c"]


def test_indicator_rule_specs_are_validated() -> None:
    with pytest.raises(ValueError, match="indicator"):
        rules.RuleSpec(slug="bad_ind", name="x", kind="indicator", threshold=1)
    with pytest.raises(ValueError, match=r"\(0, 100\)"):
        _spec(mode="percentile", threshold=120)
    with pytest.raises(ValueError, match="min_history"):
        _spec(history=3, min_history=5)
    with pytest.raises(ValueError, match="layer"):
        rules.RuleSpec(slug="bad_count", name="x", kind="count", threshold=1)
    with pytest.raises(ValueError, match="min_value"):
        _spec(mode="spike", threshold=3)
    with pytest.raises(ValueError, match="factor"):
        _spec(mode="spike", threshold=0.5, min_value=1)
    with pytest.raises(ValueError, match="condition"):
        _spec(mode="spike", threshold=3, min_value=1, condition="<")
    with pytest.raises(ValueError, match="min_excess"):
        _spec(threshold=3, min_excess=1)
    assert _spec(mode="spike", threshold=3, min_value=5, spike_std=1).spike_std == 1
    slugs = {r.slug for r in rules.EXAMPLE_RULES}
    assert {
        "hcc_late_rate_commune",
        "yt_emergencies_hospital_p95",
        "news_negative_spike_commune",
    } <= slugs


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
@pytest.mark.clock
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


def test_percentile_floor_at_hospitals(seeded: Engine) -> None:
    """A single emergency over a history of zeros is noise; a surge of several is not."""
    example = next(r for r in rules.EXAMPLE_RULES if r.slug == "yt_emergencies_hospital_p95")
    with seeded.begin() as conn:
        quiet, surge = _hospitals(conn, 2)
        rows = []
        for k in range(1, 9):  # eight Mondays without an emergency at either
            for key in (quiet, surge):
                rows.append(
                    _obs("yt_emergencies", "hospitals", key, YESTERDAY - timedelta(weeks=k), 0)
                )
        rows.append(_obs("yt_emergencies", "hospitals", quiet, YESTERDAY, 1))
        rows.append(_obs("yt_emergencies", "hospitals", surge, YESTERDAY, 4))
        _upsert(conn, rows)
    try:
        mine = {"subjects": [quiet, surge]}
        bare = example.model_copy(
            update={"slug": "t_emerg_bare", "min_value": None, "min_excess": 0.0, **mine}
        )
        rep = _evaluate(seeded, _install(seeded, bare))
        with seeded.connect() as conn:
            assert {adb.get_alert(conn, i)["area_ref"] for i in rep.opened} == {quiet, surge}
        floored = example.model_copy(update={"slug": "t_emerg_floor", **mine})
        rep = _evaluate(seeded, _install(seeded, floored))
        assert len(rep.opened) == 1
        with seeded.connect() as conn:
            a = adb.get_alert(conn, rep.opened[0])
        assert (a["area_ref"], a["value"], a["threshold"]) == (surge, 4.0, 0.0)
    finally:
        _cleanup(seeded, "yt_emergencies")


def _communes(conn: Connection, n: int) -> list[str]:
    return [
        str(c)
        for (c,) in conn.execute(
            text(
                "SELECT code FROM admin_unit WHERE level = 'commune' AND valid_to IS NULL "
                "ORDER BY code LIMIT :n"
            ),
            {"n": n},
        )
    ]


def test_spike_of_negative_news_per_commune(seeded: Engine) -> None:
    """Daily negative items: a burst over a sparse history fires, a busy commune's day does not."""
    example = next(r for r in rules.EXAMPLE_RULES if r.slug == "news_negative_spike_commune")
    days = [YESTERDAY - timedelta(days=k) for k in range(28, 0, -1)]
    with seeded.begin() as conn:
        sparse, busy, small = _communes(conn, 3)
        rows = [_obs("tt_news_negative", None, busy, d, 4 + k % 3) for k, d in enumerate(days)]
        # 4 items on five days of four weeks: a baseline of 20 / 28 once the other days
        # count as 0 (the feed reported other communes then), 4 if they were left out
        rows += [_obs("tt_news_negative", None, sparse, days[k], 4) for k in (0, 6, 12, 18, 24)]
        rows += [_obs("tt_news_negative", None, small, days[k], 1) for k in (3, 20)]
        rows += [
            _obs("tt_news_negative", None, sparse, YESTERDAY, 12),
            _obs("tt_news_negative", None, busy, YESTERDAY, 12),  # 12 <= 3 x its mean of 5
            _obs("tt_news_negative", None, small, YESTERDAY, 3),  # under min_value
        ]
        _upsert(conn, rows)
    try:
        spec = example.model_copy(
            update={"slug": "t_news_spike", "subjects": [sparse, busy, small]}
        )
        rule_id = _install(seeded, spec)
        rep = _evaluate(seeded, rule_id)  # period "latest": yesterday, the last day with data
        assert len(rep.opened) == 1
        with seeded.connect() as conn:
            a = adb.get_alert(conn, rep.opened[0])
        assert (a["area_kind"], a["area_ref"], a["value"]) == ("commune", sparse, 12.0)
        assert a["threshold"] == pytest.approx(3 * 20 / 28)
        ev = a["evidence"]
        assert ev["mode"] == "spike" and ev["baseline"] == pytest.approx(20 / 28, abs=1e-4)
        assert ev["history_periods"] == 28 and ev["period"] == YESTERDAY.isoformat()
        assert "12 tin > 2.14 (gấp 3 lần mức nền 0.71 của 28 ngày trước)" in a["title"]
        assert a["geometry"]["type"] == "MultiPolygon"
        # the next evaluation keeps the one alert (deduplicated), and nothing resolves it
        again = _evaluate(seeded, rule_id)
        assert again.opened == [] and again.refreshed == rep.opened and again.resolved == []
    finally:
        _cleanup(seeded, "tt_news_negative")


@pytest.mark.clock
def test_example_spike_rule_on_the_simulated_news(seeded: Engine) -> None:
    """The news simulator's planted burst (Diễn Châu, last three days) fires; nothing else does."""
    from analytics import kpi_jobs
    from ingest.connectors.config import NewsPull
    from ingest.connectors.news import _communes as commune_shapes
    from ingest.connectors.news import items_to_features
    from ingest.simulators.app import DEFAULT_SEED
    from ingest.simulators.demo import demo_config
    from ingest.simulators.systems import NEWS_SPIKE_COMMUNE, demo_units, news
    from layers.features.gazetteer import current_units
    from layers.features.placenames import Gazetteer

    spec = next(r for r in rules.EXAMPLE_RULES if r.slug == "news_negative_spike_commune")
    cfg = next(c for c in demo_config().connectors if isinstance(c, NewsPull))
    today = NOW.astimezone(ICT).date()
    records = news(demo_units(), DEFAULT_SEED, today)
    # one transaction, rolled back: the shared demo's news layer and counts stay as they were
    with seeded.connect() as conn, conn.begin() as tx:
        feats, _ = items_to_features(
            records, cfg, Gazetteer.from_units(current_units(conn)), commune_shapes(conn)
        )
        info = get_layer(conn, "news_items")
        upsert_features(conn, info.id, [replace(f, source_key=f"t_{f.source_key}") for f in feats])
        mark_layer_changed(conn, info.id)
        kpi_jobs.refresh_job(conn, "news_items", force=True)
        got = alerting.firings(conn, spec, NOW)
        tx.rollback()
    assert [(f.area_ref, f.extra["period"]) for f in got] == [
        (NEWS_SPIKE_COMMUNE, (today - timedelta(days=1)).isoformat())
    ]
    assert got[0].value >= 12


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
    mine = {"hcc_late_rate_commune", "yt_emergencies_hospital_p95", "news_negative_spike_commune"}
    codes = ["hcc_late_rate", "yt_emergencies", "tt_news_negative"]
    rep = alerting.evaluate_all(seeded, indicators=codes)
    assert rep.evaluated >= 3 and not mine & set(rep.errors)


def test_negative_news_per_commune_uses_the_items_commune(seeded: Engine) -> None:
    spec = rules.RuleSpec(
        slug="t_news_negative_24h",
        name="Tin tiêu cực tại một xã (24 giờ)",
        kind="count",
        layer="news_items",
        where={"sentiment": "negative"},
        threshold=3,
        window_s=86400,
        area=rules.RuleArea(kind="commune"),
        auto_resolve=True,
    )
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
