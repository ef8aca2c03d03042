"""Derived indicators: pa_* from field_reports and gt_vehicles from traffic_counts, idempotent."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from sqlalchemy import Connection, Engine, text

from analytics import dashboards, kpi_jobs
from layers.indicators import store as ind
from layers.vision.events import CountIn, upsert_traffic_counts

TZ = "Asia/Ho_Chi_Minh"

# Runs under fixed clocks at the day boundaries too (scripts/test).
pytestmark = pytest.mark.clock


def _reports(conn: Connection) -> pd.DataFrame:
    rows = conn.execute(
        text(
            "SELECT f.properties FROM feature f JOIN layer l ON l.id = f.layer_id "
            "WHERE l.slug = 'field_reports'"
        )
    ).scalars()
    df = pd.DataFrame(list(rows))

    def day(col: str) -> pd.Series:
        return pd.to_datetime(df[col], utc=True).dt.tz_convert(TZ).dt.date

    resolved = (df["status"] == "resolved") & df["resolved_at"].notna()
    on_time = resolved & (
        pd.to_datetime(df["resolved_at"], utc=True) <= pd.to_datetime(df["due_at"], utc=True)
    )
    return df.assign(
        rday=day("received_at"),
        sday=day("resolved_at").where(resolved),
        resolved=resolved,
        on_time=on_time,
    )


def _stored(conn: Connection, code: str) -> dict[tuple[str, date], float]:
    rows = conn.execute(
        text(
            "SELECT s.key, o.period_start, o.value FROM indicator_observation o "
            "JOIN indicator_subject s ON s.id = o.subject_id "
            "WHERE o.indicator_code = :c AND o.value <> 0"
        ),
        {"c": code},
    ).all()
    return {(k, d): v for k, d, v in rows}


def test_feedback_indicators_equal_pandas_and_rerun_is_idempotent(seeded: Engine) -> None:
    reports = kpi_jobs.refresh_derived(seeded, force=True)
    by_source = {r.source: r for r in reports}
    assert by_source["field_reports"].status == "refreshed"
    assert by_source["field_reports"].rejected == 0
    # a source layer that does not exist yet is skipped, not an error
    assert all(r.status in ("refreshed", "no_source") for r in reports)

    with seeded.connect() as conn:
        df = _reports(conn)
        received = df.groupby(["commune_code", "rday"]).size()
        assert _stored(conn, "pa_received") == received.astype(float).to_dict()
        resolved = df[df["resolved"]].groupby(["commune_code", "sday"]).size()
        assert _stored(conn, "pa_resolved") == resolved.astype(float).to_dict()
        on_time = df[df["on_time"]].groupby(["commune_code", "sday"]).size()
        assert _stored(conn, "pa_on_time") == on_time.astype(float).to_dict()
        # the derived rate reads like any other indicator
        vals = ind.indicator_values(conn, "pa_on_time_rate", level="province", grain="year")
        col = dashboards.latest_column(vals)
        assert col is not None and 0 < vals.values[0, col] <= 100

    again = {r.source: r for r in kpi_jobs.refresh_derived(seeded)}
    assert again["field_reports"].status == "up_to_date"
    forced = {r.source: r for r in kpi_jobs.refresh_derived(seeded, force=True)}
    rep = forced["field_reports"]
    assert (rep.inserted, rep.updated) == (0, 0) and rep.unchanged > 0


def test_a_deleted_report_is_reflected_as_zero(seeded: Engine) -> None:
    kpi_jobs.refresh_derived(seeded, sources=["field_reports"])
    with seeded.connect() as conn:
        key, props = conn.execute(
            text(
                "SELECT f.source_key, f.properties FROM feature f JOIN layer l "
                "ON l.id = f.layer_id WHERE l.slug = 'field_reports' ORDER BY f.source_key "
                "LIMIT 1"
            )
        ).one()
        day = pd.Timestamp(props["received_at"]).tz_convert(TZ).date()
        commune = props["commune_code"]
        before = _stored(conn, "pa_received")[(commune, day)]
        conn.execute(
            text(
                "DELETE FROM feature f USING layer l WHERE l.id = f.layer_id "
                "AND l.slug = 'field_reports' AND f.source_key = :k"
            ),
            {"k": key},
        )
        rep = kpi_jobs.refresh_job(conn, "field_reports", force=True)
        assert rep.updated >= 1
        after = conn.execute(
            text(
                "SELECT o.value FROM indicator_observation o JOIN indicator_subject s "
                "ON s.id = o.subject_id WHERE o.indicator_code = 'pa_received' "
                "AND s.key = :c AND o.period_start = :d"
            ),
            {"c": commune, "d": day},
        ).scalar_one()
        assert after == before - 1
        conn.rollback()


def test_vehicle_counts_per_camera_day(seeded: Engine) -> None:
    with seeded.connect() as conn:
        cam, lon, lat = conn.execute(
            text(
                "SELECT f.source_key, ST_X(f.geom), ST_Y(f.geom) FROM feature f "
                "JOIN layer l ON l.id = f.layer_id WHERE l.slug = 'cameras' "
                "ORDER BY f.source_key LIMIT 1"
            )
        ).one()
        # 23:30 UTC on 1 March is 06:30 on 2 March in Vietnam
        t1 = datetime(2013, 3, 1, 10, 0, tzinfo=UTC)
        t2 = datetime(2013, 3, 1, 23, 30, tzinfo=UTC)
        counts = [
            CountIn(camera_id=cam, zone_id=1, minute=t1, vehicle_class="car", count=5, lon=lon, lat=lat),
            CountIn(camera_id=cam, zone_id=1, minute=t1, vehicle_class="motorbike", count=12, lon=lon, lat=lat),
            CountIn(camera_id=cam, zone_id=2, minute=t2, vehicle_class="car", count=3, lon=lon, lat=lat),
            CountIn(camera_id="NO-SUCH-CAM", zone_id=1, minute=t1, vehicle_class="car", count=1, lon=lon, lat=lat),
        ]  # fmt: skip
        upsert_traffic_counts(conn, counts)
        rep = kpi_jobs.refresh_job(conn, "traffic_counts", force=True)
        assert rep.status == "refreshed" and rep.rejected >= 1
        assert any("unknown subject cameras/NO-SUCH-CAM" in r for _, r in rep.reject_samples)
        vals = ind.indicator_values(
            conn,
            "gt_vehicles",
            level="feature",
            start=date(2013, 3, 1),
            end=date(2013, 3, 2),
            subjects=[cam],
        )
        assert list(vals.values[0]) == [17.0, 3.0]

        # Between full runs only recent days are recomputed: a count for today shows up, a
        # late one for 2013 waits for the next full run.
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        more = [
            CountIn(camera_id=cam, zone_id=1, minute=now, vehicle_class="bus", count=4, lon=lon, lat=lat),
            CountIn(camera_id=cam, zone_id=1, minute=t1, vehicle_class="truck", count=2, lon=lon, lat=lat),
        ]  # fmt: skip
        upsert_traffic_counts(conn, more)
        rep = kpi_jobs.refresh_job(conn, "traffic_counts")
        today = now.astimezone(ZoneInfo(TZ)).date()
        # Days are Vietnam days: the recompute starts before today in Vietnam, whatever UTC says.
        assert rep.status == "refreshed" and rep.since is not None and rep.since < today

        def value(day: date) -> float:
            v = ind.indicator_values(
                conn, "gt_vehicles", level="feature", start=day, end=day, subjects=[cam]
            )
            return float(v.values[0, 0])

        assert value(today) >= 4 and value(date(2013, 3, 1)) == 17.0
        kpi_jobs.refresh_job(conn, "traffic_counts", force=True)
        assert value(date(2013, 3, 1)) == 19.0
        conn.rollback()


def test_demo_counter_history_feeds_the_traffic_kpi(seeded: Engine) -> None:
    from ingest.simulators.traffic import (
        CLASSES,
        SLOTS_PER_DAY,
        counter_sites,
        counts_for_day,
        write_counter_history,
    )

    day = date(2012, 5, 7)  # a Monday no other test writes
    with seeded.connect() as conn:
        sites = counter_sites(conn)
        assert len(sites) == 51 and sum(s.urban for s in sites) == 32
        two = [sites[0], sites[-1]]
        # Half of the day is over: only finished 15-minute slots are written.
        noon = datetime(2012, 5, 7, 5, 0, tzinfo=UTC)  # 12:00 in Vietnam
        added = write_counter_history(conn, day, days=2, seed=40, now=noon, sites=two)
        assert added == 2 * len(CLASSES) * (SLOTS_PER_DAY + SLOTS_PER_DAY // 2)
        # Idempotent: nothing new, and the layer is not marked changed.
        version = ind.layer_version(conn, "traffic_counts")
        assert write_counter_history(conn, day, days=2, seed=40, now=noon, sites=two) == 0
        assert ind.layer_version(conn, "traffic_counts") == version
        rep = kpi_jobs.refresh_job(conn, "traffic_counts", force=True)
        assert rep.status == "refreshed" and rep.rejected == 0
        vals = ind.indicator_values(
            conn,
            "gt_vehicles",
            level="feature",
            start=date(2012, 5, 6),
            end=day,
            subjects=[s.camera_id for s in two],
        )
        for i, site in enumerate(two):
            full_day = counts_for_day(site, date(2012, 5, 6), 40).sum()
            morning = counts_for_day(site, day, 40)[:, : SLOTS_PER_DAY // 2].sum()
            assert list(vals.values[i]) == [float(full_day), float(morning)]
        # Busy Vinh streets see more traffic than a commune-centre camera, rush hours peak.
        urban = next(s for s in sites if s.urban)
        rural = next(s for s in sites if not s.urban)
        u = counts_for_day(urban, date(2012, 5, 6), 40).sum(axis=0)
        assert u[7 * 4 : 8 * 4].sum() > 5 * u[2 * 4 : 3 * 4].sum()
        assert u.sum() > counts_for_day(rural, date(2012, 5, 6), 40).sum()
        conn.rollback()
