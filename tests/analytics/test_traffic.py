"""traffic_density: vehicle counts of cameras and imported counters summed per H3 cell × 15 min."""

from __future__ import annotations

from datetime import timedelta

import h3
import numpy as np
import shapely
from sqlalchemy import Engine

from analytics import h3jobs
from analytics.traffic import TRAFFIC_COUNTS_SPEC, ensure_density_layer
from layers.analytics import h3 as h3db
from layers.features.bulk import FeatureRow, upsert_features
from layers.features.registry import LayerSpec, create_or_update_layer
from tests.analytics.conftest import T0, MakeLayer

CAMS = {"CAM1": (105.6900, 18.6750), "CAM2": (105.6905, 18.6752), "CAM3": (105.70, 18.70)}


def test_traffic_density_sums_cameras_and_counters(engine: Engine, make_layer: MakeLayer) -> None:
    rng = np.random.default_rng(2)
    rows = []
    expected: dict[tuple[str, int], float] = {}
    for cam, (x, y) in CAMS.items():
        for minute in range(0, 60, 3):
            for cls in ("car", "motorbike"):
                n = int(rng.integers(0, 30))
                t = T0 + timedelta(minutes=minute)
                rows.append(
                    FeatureRow(
                        f"{cam}|{cls}|{minute}",
                        shapely.Point(x, y),
                        {
                            "camera_id": cam,
                            "vehicle_class": cls,
                            "count": n,
                            "minute": t.isoformat(),
                        },
                        t,
                    )
                )
                key = (h3.latlng_to_cell(y, x, 9), int(t.timestamp()) // 900 * 900)
                expected[key] = expected.get(key, 0) + n
    make_layer(TRAFFIC_COUNTS_SPEC, rows)
    counter = LayerSpec(
        slug="traffic_counters_qd",
        title_vi="Bộ đếm",
        title_en="Counters",
        sector="traffic",
        geometry_type="Point",
        property_schema={"type": "object", "properties": {"volume": {"type": "integer"}}},
        time_field="t",
    )
    x, y = 105.71, 18.71
    make_layer(counter, [FeatureRow("k1", shapely.Point(x, y), {"volume": 120}, T0)])
    expected[(h3.latlng_to_cell(y, x, 9), int(T0.timestamp()))] = 120
    with engine.begin() as conn:
        density_id = ensure_density_layer(conn)
        assert density_id is not None and ensure_density_layer(conn) == density_id
    rep = h3jobs.refresh_layer(engine, "traffic_density")
    assert rep is not None and rep.mode == "full"
    with engine.connect() as conn:
        got = h3db.read_aggregates(conn, density_id)
    m = (got.res == 9) & (got.bucket_s == 900)
    mine = {
        (h3.int_to_str(int(c)), int(b)): float(v)
        for c, b, v in zip(got.cell[m], got.bucket[m], got.sums[m][:, 0], strict=True)
    }
    assert mine == expected
    # new minutes from vision: the incremental refresh equals a full one
    with engine.begin() as conn:
        lid = create_or_update_layer(conn, TRAFFIC_COUNTS_SPEC)
        t = T0 + timedelta(minutes=61)
        upsert_features(
            conn,
            lid,
            [
                FeatureRow(
                    "CAM1|car|61",
                    shapely.Point(*CAMS["CAM1"]),
                    {
                        "camera_id": "CAM1",
                        "vehicle_class": "car",
                        "count": 7,
                        "minute": t.isoformat(),
                    },
                    t,
                )
            ],
        )
    with engine.begin() as conn:
        target = h3jobs.target_for(conn, h3jobs.get_layer(conn, "traffic_density"))
        assert target is not None and len(target.sources) == 2
        assert h3jobs.refresh_target(conn, target, overlap=timedelta(0)).mode == "incremental"
        inc = h3db.read_aggregates(conn, density_id)
        h3jobs.refresh_target(conn, target, full=True)
        full = h3db.read_aggregates(conn, density_id)
    np.testing.assert_array_equal(inc.cell, full.cell)
    np.testing.assert_allclose(inc.sums, full.sums)
    assert (
        inc.sums[(inc.res == 9) & (inc.bucket_s == 900)][:, 0].sum() == sum(expected.values()) + 7
    )
