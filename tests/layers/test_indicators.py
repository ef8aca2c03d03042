"""Indicator model: upserts with history, rejects, and roll-ups checked against pandas."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Connection, Engine, text

from layers.errors import InvalidInputError, NotFoundError
from layers.indicators import catalog as indicator_catalog
from layers.indicators import store as ind
from layers.indicators.store import ObservationIn
from tests.conftest import hospital_observations

# Tests write into years nobody else uses, and always read with start/end, so the shared
# seeded database may hold other observations.
D0 = date(2019, 1, 1)
NDAYS = 90


def _batch(conn: Connection, source: str) -> int:
    return int(
        conn.execute(
            text(
                "INSERT INTO import_batch (source, kind, actor) VALUES (:s, 'connector', 'test') "
                "RETURNING id"
            ),
            {"s": source},
        ).scalar_one()
    )


def _hospitals(conn: Connection) -> pd.DataFrame:
    rows = conn.execute(
        text(
            "SELECT f.source_key AS key, f.properties->>'commune_code' AS commune "
            "FROM feature f JOIN layer l ON l.id = f.layer_id "
            "WHERE l.slug = 'hospitals' ORDER BY f.source_key"
        )
    ).all()
    return pd.DataFrame(rows, columns=["key", "commune"])


@pytest.fixture(scope="module")
def health(seeded: Engine) -> pd.DataFrame:
    """Daily records and insured visits for 60 hospitals over 90 days of 2019, with gaps."""
    rng = np.random.default_rng(9)
    with seeded.begin() as conn:
        hosp = _hospitals(conn).sample(60, random_state=1)
        recs = []
        for key, commune in hosp.itertuples(index=False):
            for d in range(NDAYS):
                if rng.random() < 0.1:
                    continue  # a missing day
                day = D0 + timedelta(days=d)
                n = float(rng.integers(20, 400))
                recs.append((key, commune, day, n, float(rng.integers(0, int(n) + 1))))
        df = pd.DataFrame(recs, columns=["key", "commune", "day", "records", "insured"])
        rows = hospital_observations(df)
        counts = ind.upsert_observations(conn, _batch(conn, "test-health"), rows)
    assert counts.rejected == []
    assert counts.inserted + counts.unchanged == len(rows)
    return df


def _matrix(vals: ind.IndicatorValues) -> pd.DataFrame:
    return pd.DataFrame(
        vals.values, index=[s.key for s in vals.subjects], columns=list(vals.periods)
    )


def _assert_equal(got: pd.DataFrame, want: pd.Series) -> None:
    """Every value of `want` ((unit, period) -> v) is in `got`, and `got` has nothing else."""
    for (unit, p), v in want.items():
        assert got.loc[unit, p] == pytest.approx(v, rel=1e-12), (unit, p)
    assert int(np.isfinite(got.to_numpy()).sum()) == len(want)


def test_feature_level_is_the_stored_daily_values(seeded: Engine, health: pd.DataFrame) -> None:
    keys = sorted(health["key"].unique())[:5]
    end = D0 + timedelta(days=NDAYS - 1)
    with seeded.connect() as conn:
        vals = ind.indicator_values(
            conn, "yt_records", level="feature", start=D0, end=end, subjects=keys
        )
    assert vals.grain == "day" and len(vals.periods) == NDAYS
    assert [s.key for s in vals.subjects] == keys
    assert all(s.layer == "hospitals" and s.lng and s.lat for s in vals.subjects)
    want = health[health["key"].isin(keys)].set_index(["key", "day"])["records"]
    _assert_equal(_matrix(vals), want)


@pytest.mark.parametrize("grain", ["month", "quarter"])
def test_commune_and_province_rollups_equal_pandas(
    seeded: Engine, health: pd.DataFrame, grain: str
) -> None:
    df = health.assign(p=[ind.period_floor(d, grain) for d in health["day"]])
    end = D0 + timedelta(days=NDAYS - 1)
    by_commune = df.groupby(["commune", "p"])[["records", "insured"]].sum()
    by_province = df.assign(u="40").groupby(["u", "p"])[["records", "insured"]].sum()
    with seeded.connect() as conn:
        for level, want in (("commune", by_commune), ("province", by_province)):
            rec = ind.indicator_values(
                conn, "yt_records", level=level, start=D0, end=end, grain=grain
            )
            _assert_equal(_matrix(rec), want["records"])
            rate = ind.indicator_values(
                conn, "yt_insured_rate", level=level, start=D0, end=end, grain=grain
            )
            # sum(insured) / sum(records) at each level, never a mean of subject rates
            _assert_equal(_matrix(rate), want["insured"] / want["records"] * 100.0)
    assert rec.level == "province" and [s.key for s in rec.subjects] == ["40"]


def test_rate_of_a_feature_and_daily_grain(seeded: Engine, health: pd.DataFrame) -> None:
    key = health["key"].iloc[0]
    end = D0 + timedelta(days=NDAYS - 1)
    with seeded.connect() as conn:
        vals = ind.indicator_values(
            conn, "yt_insured_rate", level="feature", start=D0, end=end, subjects=[key]
        )
    want = health[health["key"] == key].set_index(["key", "day"])
    _assert_equal(_matrix(vals), want["insured"] / want["records"] * 100.0)


def test_admin_unit_indicators_roll_up_to_the_province(seeded: Engine) -> None:
    rng = np.random.default_rng(3)
    with seeded.connect() as conn:
        communes = [
            c
            for (c,) in conn.execute(
                text("SELECT code FROM admin_unit WHERE level = 'commune' ORDER BY code")
            )
        ][:30]
        hh = {c: float(rng.integers(1000, 9000)) for c in communes}
        poor = {c: float(rng.integers(0, int(hh[c] * 0.2))) for c in communes}
        y = date(2018, 1, 1)
        rows = [
            ObservationIn(
                indicator=code,
                subject_layer=None,
                subject_key=c,
                period_start=y,
                period_end=date(2018, 12, 31),
                value=src[c],
            )
            for c in communes
            for code, src in (("kt_households", hh), ("kt_poor_households", poor))
        ]
        assert ind.upsert_observations(conn, None, rows).rejected == []
        rate = ind.indicator_values(conn, "kt_poor_rate", level="province", start=y, end=y)
        assert rate.values[0, 0] == pytest.approx(sum(poor.values()) / sum(hh.values()) * 100)
        com = ind.indicator_values(
            conn, "kt_poor_rate", level="commune", start=y, end=y, subjects=communes[:3]
        )
        for i, c in enumerate(communes[:3]):
            assert com.values[i, 0] == pytest.approx(poor[c] / hh[c] * 100)
        with pytest.raises(InvalidInputError, match="admin units"):
            ind.indicator_values(conn, "kt_poor_rate", level="feature")


def test_late_correction_updates_in_place_and_keeps_history(seeded: Engine) -> None:
    with seeded.connect() as conn:
        key = _hospitals(conn)["key"].iloc[0]
        day = date(2017, 5, 4)
        row = ObservationIn(
            indicator="yt_emergencies",
            subject_layer="hospitals",
            subject_key=key,
            period_start=day,
            period_end=day,
            value=7,
        )
        b1, b2, b3 = _batch(conn, "a"), _batch(conn, "b"), _batch(conn, "c")
        c1 = ind.upsert_observations(conn, b1, [row])
        assert (c1.inserted, c1.updated, c1.unchanged) == (1, 0, 0)
        c2 = ind.upsert_observations(conn, b2, [row.model_copy(update={"value": 9})])
        assert (c2.inserted, c2.updated, c2.unchanged) == (0, 1, 0)
        c3 = ind.upsert_observations(conn, b3, [row.model_copy(update={"value": 9})])
        assert (c3.inserted, c3.updated, c3.unchanged) == (0, 0, 1)
        n = conn.execute(
            text(
                "SELECT count(*), max(value), max(import_batch_id) FROM indicator_observation o "
                "JOIN indicator_subject s ON s.id = o.subject_id "
                "WHERE o.indicator_code = 'yt_emergencies' AND s.key = :k AND period_start = :d"
            ),
            {"k": key, "d": day},
        ).one()
        assert tuple(n) == (1, 9.0, b2)  # the unchanged re-send does not touch the row
        hist = ind.observation_history(conn, "yt_emergencies", "hospitals", key, day)
        assert [(h["value"], h["import_batch_id"]) for h in hist] == [(7.0, b1), (9.0, b2)]
        vals = ind.indicator_values(conn, "yt_emergencies", level="province", start=day, end=day)
        assert vals.values[0, 0] == 9.0


def test_rejects_name_the_row_and_reason(seeded: Engine) -> None:
    with seeded.connect() as conn:
        key = _hospitals(conn)["key"].iloc[0]
        d = date(2016, 3, 1)
        good = ObservationIn(
            indicator="yt_records",
            subject_layer="hospitals",
            subject_key=key,
            period_start=d,
            period_end=d,
            value=5,
        )
        rows = [
            good.model_copy(update={"indicator": "nope"}),
            good.model_copy(update={"subject_key": "BV-9"}),
            good.model_copy(update={"indicator": "yt_insured_rate"}),
            good.model_copy(update={"subject_layer": "schools"}),
            good.model_copy(update={"indicator": "kt_budget_revenue", "subject_layer": None}),
            good.model_copy(update={"period_end": date(2016, 3, 2)}),
            good.model_copy(update={"value": float("nan")}),
            good,
            good.model_copy(update={"value": 6}),
            good.model_copy(update={"subject_layer": None, "subject_key": "99999"}),
        ]
        counts = ind.upsert_observations(conn, None, rows)
        reasons = dict(counts.rejected)
        assert reasons[0] == "unknown indicator 'nope'"
        assert reasons[1] == "unknown subject hospitals/BV-9"
        assert reasons[2].startswith("computed indicator 'yt_insured_rate'")
        assert "is about hospitals, not schools" in reasons[3]
        assert "is not one month" in reasons[4]
        assert "is not one day" in reasons[5]
        assert "not a finite number" in reasons[6]
        assert reasons[7] == "superseded by row 8 of the same batch"
        assert "is about hospitals, not an admin unit" in reasons[9]
        assert sorted(reasons) == [0, 1, 2, 3, 4, 5, 6, 7, 9]
        assert (counts.inserted, counts.updated) == (1, 0)
        vals = ind.indicator_values(
            conn, "yt_records", level="feature", start=d, end=d, subjects=[key]
        )
        assert vals.values[0, 0] == 6.0


def test_grain_conversion_sums_recomputes_rates_and_keeps_stock(
    seeded: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with seeded.connect() as conn:
        key = _hospitals(conn)["key"].iloc[1]
        days = [date(2015, 1, 30), date(2015, 1, 31), date(2015, 2, 1)]
        rec, ins = [100.0, 10.0, 50.0], [90.0, 0.0, 25.0]
        rows = [
            ObservationIn(
                indicator=code,
                subject_layer="hospitals",
                subject_key=key,
                period_start=d,
                period_end=d,
                value=v,
            )
            for code, vs in (("yt_records", rec), ("yt_inpatients", rec), ("yt_insured", ins))
            for d, v in zip(days, vs, strict=True)
        ]
        assert ind.upsert_observations(conn, None, rows).rejected == []
        kw = {"level": "feature", "start": days[0], "end": days[-1], "subjects": [key]}
        m = ind.indicator_values(conn, "yt_records", grain="month", **kw)  # type: ignore[arg-type]
        assert m.periods == [date(2015, 1, 1), date(2015, 2, 1)]
        assert list(m.values[0]) == [110.0, 50.0]
        r = ind.indicator_values(conn, "yt_insured_rate", grain="month", **kw)  # type: ignore[arg-type]
        # 90/110, not the mean of 90% and 0%
        assert r.values[0, 0] == pytest.approx(90 / 110 * 100)
        y = ind.indicator_values(conn, "yt_records", grain="school_year", **kw)  # type: ignore[arg-type]
        assert y.periods == [date(2014, 9, 1)] and y.values[0, 0] == 160.0
        monkeypatch.setattr(indicator_catalog, "STOCK_CODES", frozenset({"yt_inpatients"}))
        s = ind.indicator_values(conn, "yt_inpatients", grain="month", **kw)  # type: ignore[arg-type]
        assert list(s.values[0]) == [10.0, 50.0]  # the last day of January, not the sum
        with pytest.raises(InvalidInputError, match="cannot be read by"):
            ind.indicator_values(conn, "gd_pupils", level="commune", grain="month")
        with pytest.raises(InvalidInputError, match="unknown grain"):
            ind.indicator_values(conn, "yt_records", level="commune", grain="week")


def test_read_errors(seeded: Engine) -> None:
    with seeded.connect() as conn:
        with pytest.raises(NotFoundError, match="unknown indicator 'x'"):
            ind.indicator_values(conn, "x", level="commune")
        with pytest.raises(NotFoundError, match="unknown commune subject"):
            ind.indicator_values(conn, "yt_records", level="commune", subjects=["nope"])
        with pytest.raises(InvalidInputError, match="before start"):
            ind.indicator_values(
                conn, "yt_records", level="commune", start=date(2020, 2, 1), end=date(2020, 1, 1)
            )


def test_catalog_syncs_idempotently_and_periods(seeded: Engine) -> None:
    with seeded.connect() as conn:
        defs = ind.list_indicators(conn)
        assert ind.sync_catalog(conn) == 0
        n = conn.execute(text("SELECT count(*) FROM indicator")).scalar_one()
        assert n == len(defs) == len(indicator_catalog.INDICATORS)
    codes = {d.code for d in defs}
    for d in defs:
        if d.rollup == "rate":
            assert {d.numerator, d.denominator} <= codes
    assert {d.sector for d in defs} == {s for s, _, _ in indicator_catalog.SECTORS}
    assert ind.period_floor(date(2025, 8, 31), "school_year") == date(2024, 9, 1)
    assert ind.period_end(date(2024, 9, 1), "school_year") == date(2025, 8, 31)
    assert ind.period_end(date(2024, 2, 1), "month") == date(2024, 2, 29)
    assert ind.period_floor(date(2024, 11, 5), "quarter") == date(2024, 10, 1)
