"""The demo seed: real boundaries kept and repaired, realistic synthetic layers, idempotent."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from layers import migrate
from layers.db import make_engine
from layers.demo.seed import seed_demo
from layers.settings import Settings
from layers.testing import create_database, drop_database, settings_for


# Exact demo contents are asserted here, so this module seeds a database of its own rather
# than the session's shared one, which other packages' tests add rows to.
@pytest.fixture(scope="module")
def settings(
    base_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    """Settings on a database private to this module."""
    name = create_database(base_settings, "iocmap_seed")
    yield settings_for(base_settings, name, tmp_path_factory.mktemp("seed-state"))
    drop_database(base_settings, name)


@pytest.fixture(scope="module")
def seeded(settings: Settings) -> Iterator[Engine]:
    """The demo, seeded once into the private database."""
    engine = make_engine(settings)
    migrate.upgrade(engine)
    seed_demo(engine, settings)
    yield engine
    engine.dispose()


EXPECTED_COUNTS = {
    "admin_province": 1,
    "admin_communes": 130,
    "hospitals": 151,
    "schools": 1800,
    "tourism_sites": 120,
    "cameras": 51,
    "field_reports": 600,
    "land_parcels": 3000,
}


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT l.slug, count(f.id) FROM layer l LEFT JOIN feature f ON f.layer_id = l.id "
                "GROUP BY l.slug"
            )
        ).all()
    return {slug: n for slug, n in rows}


def test_every_demo_layer_has_its_features(seeded: Engine) -> None:
    counts = _counts(seeded)
    for slug, expected in EXPECTED_COUNTS.items():
        assert counts[slug] == expected, slug


def test_all_130_wards_are_kept_valid_and_four_were_repaired(seeded: Engine) -> None:
    with seeded.connect() as conn:
        n, valid, repaired = conn.execute(
            text(
                "SELECT count(*), count(*) FILTER (WHERE ST_IsValid(geom)), "
                "count(*) FILTER (WHERE (properties->>'repaired')::boolean) "
                "FROM feature f JOIN layer l ON l.id = f.layer_id WHERE l.slug = 'admin_communes'"
            )
        ).one()
        units = conn.execute(
            text(
                "SELECT level, count(*), sum(population) FROM admin_unit GROUP BY level ORDER BY level"
            )
        ).all()
    assert (n, valid, repaired) == (130, 130, 4)
    assert units == [("commune", 130, 3_831_694), ("province", 1, 3_831_694)]


def test_synthetic_layers_are_marked_and_real_ones_are_not(seeded: Engine) -> None:
    with seeded.connect() as conn:
        flags = dict(conn.execute(text("SELECT slug, synthetic FROM layer")).all())
    assert flags["admin_communes"] is False and flags["admin_province"] is False
    for slug in (
        "hospitals",
        "schools",
        "tourism_sites",
        "cameras",
        "field_reports",
        "land_parcels",
    ):
        assert flags[slug] is True


def test_points_lie_inside_the_commune_they_name(seeded: Engine) -> None:
    with seeded.connect() as conn:
        outside = conn.execute(
            text(
                "SELECT l.slug, count(*) FROM feature f JOIN layer l ON l.id = f.layer_id "
                "JOIN admin_unit a ON a.code = f.properties->>'commune_code' AND a.level = 'commune' "
                "WHERE l.geometry_type = 'Point' AND NOT ST_Covers(a.geom, f.geom) GROUP BY l.slug"
            )
        ).all()
    assert outside == []


def test_parcels_do_not_overlap_and_carry_cadastral_fields(seeded: Engine) -> None:
    with seeded.connect() as conn:
        overlaps = conn.execute(
            text(
                "WITH p AS (SELECT f.id, f.geom FROM feature f JOIN layer l ON l.id = f.layer_id "
                "WHERE l.slug = 'land_parcels') "
                "SELECT count(*) FROM p a JOIN p b ON a.id < b.id AND a.geom && b.geom "
                "AND ST_Area(ST_Intersection(a.geom, b.geom)::geography) > 0.01"
            )
        ).scalar()
        bad = conn.execute(
            text(
                "SELECT count(*) FROM feature f JOIN layer l ON l.id = f.layer_id "
                "WHERE l.slug = 'land_parcels' AND NOT ("
                " properties ? 'MaXa' AND properties ? 'SoHieuToBanDo' AND properties ? 'SoThuTuThua'"
                " AND (properties->>'DienTich')::float > 20"
                " AND properties->>'KyHieuMucDichSuDung' IN ('ODT','ONT','LUC','CLN','TMD','DGT','SKC','DGD')"
                " AND ST_IsValid(geom))"
            )
        ).scalar()
        area_err = conn.execute(
            text(
                "SELECT max(abs(ST_Area(ST_Transform(geom, 9208)) - (properties->>'DienTich')::float)) "
                "FROM feature f JOIN layer l ON l.id = f.layer_id WHERE l.slug = 'land_parcels'"
            )
        ).scalar()
    assert overlaps == 0
    assert bad == 0
    assert area_err < 0.5  # DienTich is the VN-2000 area in m², rounded to 0.1


def test_cameras_have_the_registry_fields(seeded: Engine) -> None:
    with seeded.connect() as conn:
        owners = dict(
            conn.execute(
                text(
                    "SELECT properties->>'owner', count(*) FROM feature f JOIN layer l ON l.id = f.layer_id "
                    "WHERE l.slug = 'cameras' AND (properties->>'fov_deg')::float > 0 "
                    "AND properties->>'stream_url' LIKE 'file://%.mp4' GROUP BY 1"
                )
            ).all()
        )
    assert owners == {"cong_an_tinh": 19, "vms_vinh": 32}


def test_field_reports_span_twelve_months_and_are_time_enabled(seeded: Engine) -> None:
    with seeded.connect() as conn:
        span_days, untimed = conn.execute(
            text(
                "SELECT extract(epoch FROM max(observed_at) - min(observed_at)) / 86400, "
                "count(*) FILTER (WHERE observed_at IS NULL) "
                "FROM feature f JOIN layer l ON l.id = f.layer_id WHERE l.slug = 'field_reports'"
            )
        ).one()
        time_field = conn.execute(
            text("SELECT time_field FROM layer WHERE slug = 'field_reports'")
        ).scalar()
    assert 330 < span_days <= 366
    assert untimed == 0
    assert time_field == "received_at"


def test_seeding_twice_changes_nothing(seeded: Engine, settings: Settings) -> None:
    snapshot_sql = text(
        "SELECT (SELECT max(updated_at) FROM feature), (SELECT sum(data_version) FROM layer), "
        "(SELECT max(updated_at) FROM layer), (SELECT count(*) FROM import_batch), "
        "(SELECT count(*) FROM feature), (SELECT count(*) FROM admin_unit)"
    )
    with seeded.connect() as conn:
        before = conn.execute(snapshot_sql).one()
    report = seed_demo(seeded, settings)
    with seeded.connect() as conn:
        after = conn.execute(snapshot_sql).one()
    assert not report.changed
    assert before == after


def test_demo_users_exist_one_per_role(seeded: Engine) -> None:
    with seeded.connect() as conn:
        roles = dict(
            conn.execute(
                text("SELECT username, role FROM app_user WHERE username LIKE 'demo_%'")
            ).all()
        )
    assert set(roles.values()) == {
        "admin",
        "leader",
        "planner",
        "operator",
        "gis_staff",
        "commune_staff",
        "citizen",
        "agency_staff",  # issue 21: bound to the UBND of the demo commune
    }
