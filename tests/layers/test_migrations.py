"""Alembic migrations upgrade an empty database and downgrade it cleanly."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from layers import migrate

CORE_TABLES = {"layer", "feature", "admin_unit", "import_batch"}


def test_upgrade_from_empty_then_downgrade_to_base(fresh_db: Engine) -> None:
    migrate.upgrade(fresh_db)
    assert migrate.is_up_to_date(fresh_db)
    tables = set(inspect(fresh_db).get_table_names())
    assert tables >= CORE_TABLES

    migrate.downgrade(fresh_db, "base")
    assert migrate.current_heads(fresh_db) == set()
    left = set(inspect(fresh_db).get_table_names()) - {"spatial_ref_sys", "alembic_version"}
    assert left == set()
    with fresh_db.connect() as conn:
        assert (
            conn.execute(text("SELECT count(*) FROM spatial_ref_sys WHERE srid = 9208")).scalar()
            == 0
        )

    migrate.upgrade(fresh_db)
    assert migrate.is_up_to_date(fresh_db)


def test_feature_table_is_partitioned_by_layer(engine: Engine) -> None:
    with engine.connect() as conn:
        strategy = conn.execute(
            text("SELECT partstrat FROM pg_partitioned_table WHERE partrelid = 'feature'::regclass")
        ).scalar()
    assert strategy == "l"


@pytest.mark.parametrize("srid", [9205, 9208, 9218])
def test_vn2000_tm3_srids_transform_like_pyproj(engine: Engine, srid: int) -> None:
    from pyproj import Transformer

    x, y = 590_000.0, 2_067_000.0
    with engine.connect() as conn:
        lon, lat = conn.execute(
            text(
                "SELECT ST_X(g), ST_Y(g) FROM (SELECT ST_Transform("
                "ST_SetSRID(ST_MakePoint(:x, :y), :srid), 4326) AS g) t"
            ),
            {"x": x, "y": y, "srid": srid},
        ).one()
    # pyproj picks EPSG:6960, the official 7-parameter VN-2000 -> WGS 84 transformation.
    exp_lon, exp_lat = Transformer.from_crs(srid, 4326, always_xy=True).transform(x, y)
    assert abs(lon - exp_lon) < 1e-8 and abs(lat - exp_lat) < 1e-8


def test_vinh_point_round_trips_through_9208(engine: Engine) -> None:
    with engine.connect() as conn:
        lon, lat = conn.execute(
            text(
                "SELECT ST_X(g), ST_Y(g) FROM (SELECT ST_Transform(ST_Transform("
                "ST_SetSRID(ST_MakePoint(105.6813, 18.6734), 4326), 9208), 4326) AS g) t"
            )
        ).one()
    # The Helmert inverse is iterative: a millimetre is the honest tolerance (1e-7 deg ~ 1 cm).
    assert abs(lon - 105.6813) < 1e-7 and abs(lat - 18.6734) < 1e-7


def test_0008_backfills_lod_size_and_moves_the_lod_indexes_onto_it(fresh_db: Engine) -> None:
    lod_defs = (
        "SELECT indexdef FROM pg_indexes WHERE indexname IN "
        "('ix_feature_geom_lod12', 'ix_feature_geom_lod10')"
    )
    migrate.upgrade(fresh_db, "0007_tile_lod")
    with fresh_db.begin() as conn:
        layer_id = conn.execute(
            text(
                "INSERT INTO layer (slug, title_vi, title_en, sector, geometry_type) "
                "VALUES ('lod_mig', 'a', 'a', 'land', 'Polygon') RETURNING id"
            )
        ).scalar_one()
        conn.execute(
            text(f"CREATE TABLE feature_lod_mig PARTITION OF feature FOR VALUES IN ({layer_id})")
        )
        conn.execute(
            text(
                "INSERT INTO feature (layer_id, geom) VALUES "
                "(:l, ST_MakeEnvelope(105, 18, 105.004, 18.001, 4326))"
            ),
            {"l": layer_id},
        )
    migrate.upgrade(fresh_db)
    with fresh_db.connect() as conn:
        assert conn.execute(text("SELECT lod_size FROM feature")).scalar_one() == pytest.approx(
            0.002
        )
        defs = conn.execute(text(lod_defs)).scalars().all()
    assert len(defs) == 2 and all("lod_size >=" in d and "st_xmax" not in d.lower() for d in defs)
    migrate.downgrade(fresh_db, "0007_tile_lod")
    with fresh_db.connect() as conn:
        defs = conn.execute(text(lod_defs)).scalars().all()
        cols = {c["name"] for c in inspect(conn).get_columns("feature")}
    assert len(defs) == 2 and all("st_xmax" in d.lower() for d in defs)
    assert "lod_size" not in cols


def test_0009_time_index_leaves_out_rows_without_a_time(engine: Engine) -> None:
    """Only time-enabled rows are in the time index, and a time-window query still uses it."""
    with engine.begin() as conn:
        (definition,) = conn.execute(
            text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_feature_observed_at'")
        ).one()
        assert "WHERE (observed_at IS NOT NULL)" in definition
        conn.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(
            conn.execute(
                text(
                    "EXPLAIN SELECT id FROM feature WHERE layer_id = 1 "
                    "AND observed_at >= now() - interval '1 day'"
                )
            ).scalars()
        )
    assert "observed_at" in plan and "Index" in plan, plan


def test_0010_source_key_unique_per_layer_for_rows_that_have_one(engine: Engine) -> None:
    """Keys stay unique within a layer; rows without a key are not indexed at all."""
    with engine.connect() as conn:
        (definition,) = conn.execute(
            text(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'uq_feature_layer_id_source_key'"
            )
        ).one()
        assert "UNIQUE" in definition and "WHERE (source_key IS NOT NULL)" in definition
        layer_id = conn.execute(
            text(
                "INSERT INTO layer (slug, title_vi, title_en, sector, geometry_type) "
                "VALUES ('uq_probe', 'a', 'a', 'other', 'Point') RETURNING id"
            )
        ).scalar_one()  # its rows land in the default partition; all rolled back below
        insert = text(
            "INSERT INTO feature (layer_id, geom, source_key) "
            "VALUES (:l, ST_SetSRID(ST_MakePoint(105.6, 18.6), 4326), :k)"
        )
        for key in (None, None, "a"):
            conn.execute(insert, {"l": layer_id, "k": key})
        with pytest.raises(IntegrityError), conn.begin_nested():
            conn.execute(insert, {"l": layer_id, "k": "a"})
        conn.rollback()
