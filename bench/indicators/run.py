"""Indicator benchmark: observation upserts with history, and roll-up reads.

A throwaway database with the demo (few parcels) gets daily yt_records / yt_insured for every
hospital over --days days. Measured: the first upsert, re-sending it unchanged, and a 1%
late correction (rows/s); then indicator_values for the rate yt_insured_rate at commune and
province level by month, and for all hospitals by day over one month (p50 of --repeat).
Anchor: the same commune x month rate computed in pandas from every raw observation row
(read with one SELECT, then groupby), in this run.

Last line: one JSON object with the figures and ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from datetime import date, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import text

from layers import cluster, migrate, testing
from layers.db import make_engine
from layers.demo.seed import seed_demo
from layers.indicators import store as ind
from layers.indicators.store import ObservationIn
from layers.settings import Settings

D0 = date(2023, 1, 1)


def _p50(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    """Run the benchmark and print the JSON line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    base = Settings()
    cluster.ensure_running(base)
    name = testing.create_database(base, "iocmap_bench_ind")
    try:
        settings = base.model_copy(
            update={"database_url": cluster.database_url(base, name), "demo_parcels": 1000}
        )
        engine = make_engine(settings)
        migrate.upgrade(engine)
        seed_demo(engine, settings)
        rng = np.random.default_rng(0)
        with engine.connect() as conn:
            keys = [
                k
                for (k,) in conn.execute(
                    text(
                        "SELECT f.source_key FROM feature f JOIN layer l ON l.id = f.layer_id "
                        "WHERE l.slug = 'hospitals'"
                    )
                )
            ]
        rows: list[ObservationIn] = []
        for k in keys:
            rec = rng.integers(20, 400, args.days)
            for d in range(args.days):
                day = D0 + timedelta(days=d)
                for code, v in (("yt_records", rec[d]), ("yt_insured", rec[d] * 0.9)):
                    rows.append(
                        ObservationIn(
                            indicator=code,
                            subject_layer="hospitals",
                            subject_key=k,
                            period_start=day,
                            period_end=day,
                            value=float(v),
                        )
                    )
        n = len(rows)

        def upsert(batch: list[ObservationIn]) -> tuple[float, ind.ObservationCounts]:
            t0 = time.perf_counter()
            with engine.begin() as conn:
                c = ind.upsert_observations(conn, None, batch)
            return time.perf_counter() - t0, c

        first_s, c1 = upsert(rows)
        assert c1.inserted == n, c1
        same_s, c2 = upsert(rows)
        assert c2.unchanged == n, c2
        fix = [r.model_copy(update={"value": r.value + 1}) for r in rows[::100]]
        fix_s, c3 = upsert(fix)
        assert c3.updated == len(fix), c3

        end = D0 + timedelta(days=args.days - 1)
        with engine.connect() as conn:
            commune_s = _p50(
                lambda: ind.indicator_values(
                    conn, "yt_insured_rate", level="commune", grain="month", start=D0, end=end
                ),
                args.repeat,
            )
            province_s = _p50(
                lambda: ind.indicator_values(
                    conn, "yt_insured_rate", level="province", grain="month", start=D0, end=end
                ),
                args.repeat,
            )
            feature_s = _p50(
                lambda: ind.indicator_values(
                    conn,
                    "yt_records",
                    level="feature",
                    start=end - timedelta(days=29),
                    end=end,
                ),
                args.repeat,
            )

            def anchor() -> pd.Series:
                raw = pd.DataFrame(
                    conn.execute(
                        text(
                            "SELECT o.indicator_code, s.commune_code, o.period_start, o.value "
                            "FROM indicator_observation o JOIN indicator_subject s "
                            "ON s.id = o.subject_id "
                            "WHERE o.indicator_code IN ('yt_records', 'yt_insured')"
                        )
                    ).all(),
                    columns=["code", "commune", "day", "value"],
                )
                raw["month"] = pd.to_datetime(raw["day"]).dt.to_period("M")
                sums = raw.pivot_table(
                    index=["commune", "month"], columns="code", values="value", aggfunc="sum"
                )
                return sums["yt_insured"] / sums["yt_records"] * 100

            anchor_s = _p50(anchor, args.repeat)
        engine.dispose()
    finally:
        testing.drop_database(base, name)
    print(
        json.dumps(
            {
                "observations": n,
                "hospitals": len(keys),
                "days": args.days,
                "upsert_first_rows_per_s": round(n / first_s),
                "upsert_unchanged_rows_per_s": round(n / same_s),
                "upsert_correction_rows_per_s": round(len(fix) / fix_s),
                "commune_month_rate_p50_s": round(commune_s, 4),
                "province_month_rate_p50_s": round(province_s, 4),
                "feature_day_30d_all_hospitals_p50_s": round(feature_s, 4),
                "anchor_pandas_commune_month_rate_p50_s": round(anchor_s, 4),
                "ratio_commune_rate_ours_over_anchor": round(commune_s / anchor_s, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
