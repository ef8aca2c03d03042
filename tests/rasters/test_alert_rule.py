"""The flood_exposure alert rule fires when the exposure of a depth raster passes a threshold."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, text

from analytics import alerting, rules
from ingest.raster import RasterReport
from layers.settings import Settings
from tests.rasters.conftest import lonlat_tif


def test_flood_exposure_rule_fires_per_commune_and_in_total(
    tmp_path: Path, seeded: Engine, settings: Settings, do_import: Callable[..., RasterReport]
) -> None:
    depth = np.zeros((60, 60), np.float32)
    depth[10:50, 10:50] = 1.5
    do_import(
        lonlat_tif(tmp_path / "depth_rule.tif", depth, lon0=105.28, lat0=18.92),
        "t_depth_rule",
        role="flood_depth",
    )
    specs = [
        rules.RuleSpec(
            slug="t_flood_people",
            name="Flood",
            kind="flood_exposure",
            layer="t_depth_rule",
            measure="people_exposed",
            threshold=1,
            condition=">=",
        ),
        rules.RuleSpec(
            slug="t_flood_commune",
            name="Flood",
            kind="flood_exposure",
            layer="t_depth_rule",
            measure="flooded_km2",
            threshold=0.5,
            area=rules.RuleArea(kind="commune"),
        ),
        rules.RuleSpec(
            slug="t_flood_quiet",
            name="Flood",
            kind="flood_exposure",
            layer="t_depth_rule",
            measure="flooded_km2",
            threshold=10_000,
        ),
    ]
    with seeded.begin() as conn:
        alerting.install_rules(conn, specs)
    rep = alerting.evaluate_all(seeded, layers=["t_depth_rule"], settings=settings)
    assert rep.errors == {}
    with seeded.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT r.slug, a.area_kind, a.area_ref, a.value FROM alert a JOIN alert_rule r ON r.id = a.rule_id WHERE r.slug LIKE 't_flood_%'"
            )
        ).all()
    by_rule: dict[str, list[tuple[str, str, float]]] = {}
    for slug, kind, ref, value in rows:
        by_rule.setdefault(slug, []).append((kind, ref, value))
    assert "t_flood_quiet" not in by_rule
    (total,) = by_rule["t_flood_people"]
    assert total[1] == "t_depth_rule" and total[2] >= 1
    # About 0.04° x 0.04° (~17.7 km²) is flooded; communes with at least 0.5 km² of it fire.
    assert by_rule["t_flood_commune"] and all(v >= 0.5 for _, _, v in by_rule["t_flood_commune"])
    assert sum(v for _, _, v in by_rule["t_flood_commune"]) == pytest.approx(17.7, rel=0.1)
    with pytest.raises(ValueError, match="measure"):
        rules.RuleSpec(slug="t_bad", name="x", kind="flood_exposure", layer="a", threshold=1)
