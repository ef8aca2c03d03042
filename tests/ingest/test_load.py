"""Atomic and idempotent loads: upsert by key, replace, batches, stale hook, and a real SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from sqlalchemy import Engine, text

from layers.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _parcels(n: int, seed: int = 1, start: int = 0) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    x = rng.uniform(105.60, 105.70, n)
    y = rng.uniform(18.62, 18.72, n)
    return gpd.GeoDataFrame(
        {
            "ma_thua": [f"T{start + i:07d}" for i in range(n)],
            "dien_tich": np.round(rng.uniform(50, 500, n), 1),
        },
        geometry=shapely.box(x, y, x + 0.0002, y + 0.0002),
        crs=4326,
    )


def _state(engine: Engine, slug: str) -> tuple[int, int, dict[str, tuple[int, str]]]:
    with engine.connect() as conn:
        version = conn.execute(
            text("SELECT data_version FROM layer WHERE slug = :s"), {"s": slug}
        ).scalar_one()
        rows = conn.execute(
            text(
                "SELECT f.source_key, f.id, md5(f.properties::text || ST_AsText(f.geom)) "
                "FROM feature f JOIN layer l ON l.id = f.layer_id WHERE l.slug = :s"
            ),
            {"s": slug},
        ).all()
    return version, len(rows), {r[0]: (r[1], r[2]) for r in rows}


def test_upsert_is_idempotent_and_updates_in_place(
    tmp_path: Path, engine: Engine, do_import
) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "thua.gpkg"
    gdf = _parcels(500)
    gdf.to_file(path)
    first = do_import(path, "load_upsert", key="ma_thua", mode="upsert")
    assert first.layer_created and first.inserted == 500
    v1, n1, rows1 = _state(engine, "load_upsert")
    again = do_import(path, "load_upsert", key="ma_thua", mode="upsert")
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 500)
    v2, n2, rows2 = _state(engine, "load_upsert")
    assert (v2, n2, rows2) == (v1, n1, rows1)  # nothing changed, not even the version
    gdf.loc[7, "dien_tich"] = 999.5
    gdf.to_file(path)
    changed = do_import(path, "load_upsert", key="ma_thua", mode="upsert")
    assert (changed.inserted, changed.updated, changed.unchanged) == (0, 1, 499)
    v3, n3, rows3 = _state(engine, "load_upsert")
    assert v3 == v2 + 1 and n3 == 500
    key = gdf.loc[7, "ma_thua"]
    assert rows3[key][0] == rows1[key][0]  # same feature id: updated in place
    assert rows3[key][1] != rows1[key][1]
    with engine.connect() as conn:
        batches = conn.execute(
            text(
                "SELECT import_batch_id, count(*) FROM feature f JOIN layer l ON l.id = f.layer_id "
                "WHERE l.slug = 'load_upsert' GROUP BY 1 ORDER BY 1"
            )
        ).all()
        statuses = (
            conn.execute(
                text("SELECT status FROM import_batch WHERE id = ANY(:ids)"),
                {"ids": [first.batch_id, again.batch_id, changed.batch_id]},
            )
            .scalars()
            .all()
        )
    assert batches == [(first.batch_id, 499), (changed.batch_id, 1)]
    assert statuses == ["succeeded"] * 3


def test_append_then_replace(tmp_path: Path, engine: Engine, do_import) -> None:  # type: ignore[no-untyped-def]
    a = tmp_path / "a.fgb"
    _parcels(300, seed=2).to_file(a)
    b = tmp_path / "b.fgb"
    _parcels(200, seed=3, start=1000).to_file(b)
    do_import(a, "load_replace")
    appended = do_import(b, "load_replace", mode="append")
    assert appended.strategy == "stage_append" and appended.inserted == 200
    assert _state(engine, "load_replace")[1] == 500
    replaced = do_import(b, "load_replace", mode="replace", force=True)
    assert replaced.strategy == "partition_swap"
    assert (replaced.inserted, replaced.deleted) == (200, 500)
    _, n, rows = _state(engine, "load_replace")
    assert n == 200 and all(k is None for k in rows)
    with engine.connect() as conn:
        lid = conn.execute(text("SELECT id FROM layer WHERE slug='load_replace'")).scalar_one()
        idx = (
            conn.execute(
                text("SELECT indexdef FROM pg_indexes WHERE tablename = :t"),
                {"t": f"feature_l{lid}"},
            )
            .scalars()
            .all()
        )
        attached = conn.execute(
            text(
                "SELECT count(*) FROM pg_inherits WHERE inhrelid = to_regclass(:t) "
                "AND inhparent = 'feature'::regclass"
            ),
            {"t": f"feature_l{lid}"},
        ).scalar_one()
        # The GiST index is used for a bbox query on the new partition.
        hits = conn.execute(
            text(
                "SELECT count(*) FROM feature WHERE layer_id = :l AND "
                "geom && ST_MakeEnvelope(105.6, 18.6, 105.7, 18.7, 4326)"
            ),
            {"l": lid},
        ).scalar_one()
    assert attached == 1
    assert any("USING gist" in d for d in idx)
    assert hits > 0


KILL_SCRIPT = """
import sys
from pathlib import Path
from layers.db import make_engine
from layers.settings import Settings
from ingest.pipeline import ImportOptions, run_import
settings = Settings()
engine = make_engine(settings)
run_import(engine, settings, ImportOptions(path=Path(sys.argv[1]), layer=sys.argv[2], mode=sys.argv[3]))
"""


def _kill_during_copy(settings: Settings, engine: Engine, path: Path, slug: str, mode: str) -> None:
    env = {**os.environ, "IOC_DATABASE_URL": settings.database_url or "", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, str(path), slug, mode], env=env, cwd=ROOT
    )
    db = engine.url.database
    caught = False
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            with engine.connect() as conn:
                busy = conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = :db "
                        "AND query ILIKE 'COPY %ingest_%' AND state = 'active'"
                    ),
                    {"db": db},
                ).scalar_one()
            if busy:
                os.kill(proc.pid, signal.SIGKILL)
                caught = True
                break
            time.sleep(0.005)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert caught, "the import finished before it could be killed"
    # Wait for the server to notice the dead client and roll back.
    for _ in range(200):
        with engine.connect() as conn:
            left = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = :db "
                    "AND query ILIKE 'COPY %ingest_%'"
                ),
                {"db": db},
            ).scalar_one()
        if not left:
            break
        time.sleep(0.05)


def test_kill_mid_import_leaves_layer_as_before(
    tmp_path: Path, engine: Engine, settings: Settings, do_import
) -> None:  # type: ignore[no-untyped-def]
    small = tmp_path / "small.gpkg"
    _parcels(50, seed=5).to_file(small)
    do_import(small, "load_kill", key="ma_thua", mode="upsert")
    before = _state(engine, "load_kill")
    big = tmp_path / "big.gpkg"
    _parcels(200_000, seed=6, start=10_000).to_file(big)
    for mode in ("replace", "append"):
        _kill_during_copy(settings, engine, big, "load_kill", mode)
        assert _state(engine, "load_kill") == before
        with engine.connect() as conn:
            running = conn.execute(
                text(
                    "SELECT count(*) FROM import_batch WHERE status = 'running' AND source = 'big.gpkg'"
                )
            ).scalar_one()
        # Only an unattached build table may be left (the staging table vanished with the
        # rollback); it is no part of the layer.
        left = _ingest_tables(engine)
        assert all(name.startswith("ingest_build_") for name in left), left
        assert running >= 1  # the killed batch stays visible as not finished
    # The next import drops what the killed ones left behind.
    other = tmp_path / "other.gpkg"
    _parcels(20, seed=7, start=90_000).to_file(other)
    do_import(other, "load_kill_next", mode="replace")
    assert _ingest_tables(engine) == []
    assert _state(engine, "load_kill") == before


def _ingest_tables(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                text("SELECT relname FROM pg_class WHERE relname LIKE 'ingest\\_%' ORDER BY 1")
            ).scalars()
        )


def test_sweep_spares_a_live_build(engine: Engine) -> None:
    """A build table whose import still holds its lock survives another import's sweep."""
    from layers.features.partitions import BuildSet, sweep_orphan_builds

    builds = BuildSet(engine)
    with engine.begin() as conn:
        layer_id = conn.execute(text("SELECT min(id) FROM layer")).scalar_one() or 1
        live = builds.open(conn, layer_id, 990_001)
    try:
        import psycopg

        with psycopg.connect(live.url, autocommit=True) as other:
            other.execute("CREATE TABLE ingest_build_990002 (x int)")  # its owner is gone
            assert sweep_orphan_builds(other) == ["ingest_build_990002"]
        assert live.name in _ingest_tables(engine)
    finally:
        builds.close()
    assert live.name not in _ingest_tables(engine)


def test_commands_drop_builds_of_killed_imports(engine: Engine, settings: Settings) -> None:
    """Every CLI command (serve, up, import…) starts by dropping orphaned build tables."""
    from geo_api.cli.common import migrated_engine

    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE ingest_build_990003 (x int)"))
    with migrated_engine(settings):
        pass
    assert "ingest_build_990003" not in _ingest_tables(engine)


def _messy_parcels() -> gpd.GeoDataFrame:
    """Parcels with a repairable polygon, one outside the province and a repeated key."""
    gdf = _parcels(400, seed=9)
    x0, y0 = 105.65, 18.65
    d = 0.0001
    # Self-touching ring: invalid, and make_valid keeps it a Polygon (with a hole).
    ring = [(0, 0), (4, 0), (4, 4), (2, 4), (3, 2), (1, 2), (2, 4), (0, 4), (0, 0)]
    gdf.loc[10, "geometry"] = shapely.Polygon([(x0 + a * d, y0 + b * d) for a, b in ring])
    # In the second half, so a COPY split over two connections has fixes in both parts.
    gdf.loc[300, "geometry"] = shapely.box(110.0, 10.0, 110.001, 10.001)
    gdf.loc[31, "ma_thua"] = gdf.loc[30, "ma_thua"]
    return gdf


def _content(engine: Engine, slug: str) -> list[tuple[str, str, int | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT f.source_key, md5(f.properties::text || ST_AsEWKT(f.geom)), "
                "f.import_batch_id IS NOT NULL FROM feature f JOIN layer l ON l.id = f.layer_id "
                "WHERE l.slug = :s ORDER BY 1, 2"
            ),
            {"s": slug},
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def _lod_mismatches(engine: Engine, slug: str) -> int:
    """Rows whose stored lod_size is not the size PostGIS computes from their geometry."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM feature f JOIN layer l ON l.id = f.layer_id "
                    "WHERE l.slug = :s AND NOT coalesce(abs(f.lod_size - "
                    "feature_lod_size(f.geom)) <= 1e-12, false)"
                ),
                {"s": slug},
            ).scalar_one()
        )


def test_early_load_matches_ordinary_load(
    tmp_path: Path, engine: Engine, do_import, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """Loading while validating gives the same layer as loading after it, on every path."""
    import ingest.load
    import layers.features.partitions
    import layers.ingest.wkbfast
    from ingest.load import EarlyLoad

    path = tmp_path / "messy.gpkg"
    _messy_parcels().to_file(path)
    base = tmp_path / "base.gpkg"
    _parcels(50, seed=10, start=5000).to_file(base)
    real_sound = layers.ingest.wkbfast.sound_rows
    real_finish = EarlyLoad.finish
    patched: list[bool] = []

    def spy(self, prepared, progress=None):  # type: ignore[no-untyped-def]
        counts = real_finish(self, prepared, progress)
        patched.append(counts is not None)
        return counts

    def variant(name: str) -> None:
        monkeypatch.undo()
        patched.clear()
        monkeypatch.setattr(EarlyLoad, "finish", spy)
        if name == "ordinary":
            monkeypatch.setattr(EarlyLoad, "start", lambda self, layer_id, early: None)
        elif name == "fallback":  # too many fixes: the savepoint is rolled back
            monkeypatch.setattr(ingest.load, "EARLY_MAX_FIXES", 0)
            monkeypatch.setattr(ingest.load, "EARLY_MAX_FIX_SHARE", 0.0)
        elif name in ("unsent", "split"):  # rows held back from the early COPY are added after

            def fewer(wkb, where):  # type: ignore[no-untyped-def]
                ok = real_sound(wkb, where)
                ok[::7] = False
                return ok

            monkeypatch.setattr(layers.ingest.wkbfast, "sound_rows", fewer)
            if name == "split":  # the build table's COPY runs on two connections at once
                monkeypatch.setattr(layers.features.partitions, "MIN_ROWS_PER_WORKER", 100)

    results = {}
    for name in ("ordinary", "early", "fallback", "unsent", "split"):
        variant(name)
        slug = f"load_early_{name}"
        fresh = do_import(path, slug, key="ma_thua", mode="replace")
        replace_content = _content(engine, slug)
        # The importer writes each row's tile size itself (the swapped-in table has no trigger).
        assert _lod_mismatches(engine, slug) == 0, name
        do_import(base, slug, key="ma_thua", mode="replace", force=True)
        appended = do_import(path, slug, key="ma_thua", mode="upsert")
        assert _lod_mismatches(engine, slug) == 0, name
        results[name] = (
            replace_content,
            _content(engine, slug),
            fresh.repaired,
            fresh.rejects_by_reason,
            appended.rejects_by_reason,
            (appended.inserted, appended.updated, appended.unchanged),
            fresh.geometry_type,
        )
        assert fresh.strategy == "partition_swap" and appended.strategy == "stage_upsert"
        # Which loads the early COPY completed (the clean base file never needs a fix).
        expected = {"ordinary": [], "fallback": [False, True, False]}.get(name, [True] * 3)
        assert patched == expected, name
    monkeypatch.undo()
    ordinary = results["ordinary"]
    assert ordinary[2] == 1
    assert ordinary[3] == {"outside_province": 1, "duplicate_key": 1}
    assert len(ordinary[0]) == 398 and len(ordinary[1]) == 448
    for name in ("early", "fallback", "unsent", "split"):
        assert results[name] == ordinary, name


@pytest.mark.parametrize(
    "wkts",
    [
        ["POINT (105 18)", "POINT EMPTY"],
        ["POLYGON ((105 18, 105.004 18, 105.004 18.001, 105 18))", "POLYGON EMPTY"],
        ["LINESTRING (105 18, 105.01 18.0001)", "MULTIPOLYGON (((1 1, 2 1, 2 3, 1 1)))"],
    ],
)
def test_lod_sizes_match_postgis(engine: Engine, wkts: list[str]) -> None:
    """The importer's numpy sizes equal the trigger's SQL ones, NULL for empty shapes."""
    import pyarrow as pa
    import shapely

    from layers.ingest.copy import lod_sizes

    wkb = pa.array(shapely.to_wkb(shapely.from_wkt(wkts)), pa.binary())
    size, null = lod_sizes(wkb)
    with engine.connect() as conn:
        want = [
            conn.execute(
                text("SELECT feature_lod_size(ST_GeomFromText(:w, 4326))"), {"w": w}
            ).scalar_one()
            for w in wkts
        ]
    got = [
        None if no else pytest.approx(float(v), abs=1e-15) for v, no in zip(size, null, strict=True)
    ]
    assert got == want
