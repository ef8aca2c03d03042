"""Every reject reason lands in the quarantine table with its row number and original values."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import Engine, text

from layers.features.registry import LayerSpec, create_or_update_layer
from layers.ingest.batches import list_rejects

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "beds": {"type": "integer"},
        "opened_at": {"type": "string", "format": "date-time"},
        "kind": {"type": "string", "enum": ["hospital", "clinic"]},
    },
    "required": ["name"],
    "additionalProperties": True,
}


def _make_layer(engine: Engine, slug: str, geometry_type: str) -> None:
    with engine.begin() as conn:
        create_or_update_layer(
            conn,
            LayerSpec(
                slug=slug,
                title_vi=slug,
                title_en=slug,
                sector="health",
                geometry_type=geometry_type,  # type: ignore[arg-type]
                property_schema=SCHEMA,
            ),
        )


def test_property_and_coordinate_rejects(tmp_path: Path, engine: Engine, do_import) -> None:  # type: ignore[no-untyped-def]
    _make_layer(engine, "val_csv", "Point")
    rows = [
        "name;lat;lon;beds;opened_at;kind",
        "BV Đa khoa;18,6796;105,6813;500;2020-01-02;hospital",  # 1 ok
        "Không tọa độ;;;10;2020-01-02;clinic",  # 2 null geometry
        "Hà Nội;21,0285;105,8542;10;2020-01-02;clinic",  # 3 outside province
        "Sai số;18,68;105,68;nhiều;2020-01-02;clinic",  # 4 unparsable number
        "Sai ngày;18,68;105,68;5;ngày mai;clinic",  # 5 unparsable date
        ";18,68;105,68;5;02/01/2020;clinic",  # 6 required name missing
        "Tọa độ hỏng;18,6a;105,68;5;2020-01-02;clinic",  # 7 unparsable coordinates
        "Loại lạ;18,68;105,68;5;2020-01-02;pharmacy",  # 8 enum violation
        "Nửa giường;18,68;105,68;2,5;2020-01-02;clinic",  # 9 not an integer
        "Trạm y tế;18,70;105,60;20;02/01/2020 08:30;clinic",  # 10 ok (Vietnamese date)
    ]
    path = tmp_path / "bv.csv"
    path.write_text("\n".join(rows), encoding="utf-8")
    report = do_import(path, "val_csv", crs="EPSG:4326")
    assert report.rows_read == 10
    assert report.rows_valid == 2
    assert report.rejects_by_reason == {
        "null_geometry": 1,
        "outside_province": 1,
        "unparsable_number": 2,
        "unparsable_date": 1,
        "schema_violation": 2,
        "unparsable_coordinates": 1,
    }
    examples = {e["row"]: e for e in report.reject_examples}
    assert examples[4]["reason"] == "unparsable_number"
    assert "nhiều" in examples[4]["detail"]
    assert examples[3]["original"]["name"] == "Hà Nội"
    with engine.connect() as conn:
        stored = list_rejects(conn, report.batch_id)
        kept = (
            conn.execute(
                text(
                    "SELECT properties FROM feature f JOIN layer l ON l.id = f.layer_id "
                    "WHERE l.slug = 'val_csv' ORDER BY f.id"
                )
            )
            .scalars()
            .all()
        )
    assert [r["row"] for r in stored] == [2, 3, 4, 5, 6, 7, 8, 9]
    assert stored[0]["original"]["name"] == "Không tọa độ"
    assert kept[0]["beds"] == 500 and isinstance(kept[0]["beds"], int)
    assert kept[1]["opened_at"] == "2020-01-02T01:30:00Z"  # 08:30 in Vietnam (UTC+7)


def test_geometry_rejects_and_repairs(tmp_path: Path, engine: Engine, do_import) -> None:  # type: ignore[no-untyped-def]
    _make_layer(engine, "val_geo", "Polygon")
    x, y = 105.68, 18.68
    bowtie = [[x, y], [x + 0.01, y + 0.01], [x + 0.01, y], [x, y + 0.01], [x, y]]
    square = [[x, y], [x + 0.01, y], [x + 0.01, y + 0.01], [x, y + 0.01], [x, y]]
    spike = [
        [x, y], [x + 0.01, y], [x + 0.01, y + 0.01], [x + 0.02, y + 0.01],
        [x + 0.01, y + 0.01], [x, y + 0.01], [x, y],
    ]  # fmt: skip

    def feat(geom: object, name: str) -> dict[str, object]:
        return {"type": "Feature", "properties": {"name": name}, "geometry": geom}

    doc = {
        "type": "FeatureCollection",
        "features": [
            feat({"type": "Polygon", "coordinates": [square]}, "ok"),
            feat(None, "null"),
            feat({"type": "Polygon", "coordinates": []}, "empty"),
            feat({"type": "LineString", "coordinates": square[:3]}, "line"),
            feat({"type": "Polygon", "coordinates": [bowtie]}, "bowtie"),
            feat({"type": "Polygon", "coordinates": [spike]}, "spike"),
            feat({"type": "MultiPolygon", "coordinates": [[square]]}, "single-part multi"),
        ],
    }
    path = tmp_path / "g.geojson"
    path.write_text(json.dumps(doc), encoding="utf-8")
    report = do_import(path, "val_geo")
    assert report.rejects_by_reason == {
        "null_geometry": 1,
        "empty_geometry": 1,
        "geometry_type_mismatch": 2,
    }
    # The bow-tie repairs into two triangles, which a Polygon layer cannot hold: quarantined.
    # The spike repairs into one polygon (its dangling line dropped): kept.
    assert report.repaired == 2
    assert report.rows_valid == 3
    assert {e["original"]["name"] for e in report.reject_examples} == {
        "null",
        "empty",
        "line",
        "bowtie",
    }
    with engine.connect() as conn:
        kinds = conn.execute(
            text(
                "SELECT properties->>'name', GeometryType(geom), ST_IsValid(geom) FROM feature f "
                "JOIN layer l ON l.id = f.layer_id WHERE l.slug = 'val_geo' ORDER BY 1"
            )
        ).all()
    assert all(valid for _, _, valid in kinds)
    assert {k[1] for k in kinds} == {"POLYGON"}
    assert [k[0] for k in kinds] == ["ok", "single-part multi", "spike"]


def test_wkb_fast_path_matches_geos_path() -> None:
    import numpy as np
    import pyarrow as pa
    import shapely

    from ingest import crs as crsmod
    from ingest.province import bundled_boundary, tolerant_boundary
    from ingest.validate import prepare
    from tests.ingest.conftest import TRUTH_LONLAT, to_srid

    xy = to_srid(TRUTH_LONLAT, 9208)
    x, y = xy[0]
    spike = shapely.Polygon(
        [(x, y), (x + 10, y), (x + 10, y + 10), (x + 20, y + 10), (x + 10, y + 10), (x, y + 10)]
    )
    holed = shapely.Polygon(
        [(x, y), (x + 50, y), (x + 50, y + 50), (x, y + 50)],
        [[(x + 10, y + 10), (x + 20, y + 10), (x + 20, y + 20)]],
    )
    geoms = np.array([shapely.box(a, b, a + 20, b + 30) for a, b in xy] + [spike, holed, None])
    wkb = np.array([None if g is None else shapely.to_wkb(g) for g in geoms], dtype=object)
    choice = crsmod.recognise("EPSG:9208", "option")
    out = prepare(
        wkb,
        pa.table({"i": list(range(len(geoms)))}),
        choice,
        tolerant_boundary(bundled_boundary("40"), 1000),
        geometry_type=None,
        property_schema=None,
        typed=True,
    )
    assert out.repaired == 1 and out.count == 6
    got = shapely.from_wkb(out.wkb.to_numpy(zero_copy_only=False))
    expected = crsmod.transform_geometries(shapely.make_valid(geoms[:6]), choice.proj)
    for g, e in zip(got, expected, strict=True):
        if e.geom_type == "GeometryCollection":  # the spike's dangling line is dropped
            e = next(p for p in shapely.get_parts(e) if p.geom_type == "Polygon")
        assert g.geom_type == "Polygon"
        assert shapely.equals_exact(g, e, tolerance=1e-9)


def test_certainly_valid_never_vouches_for_an_invalid_polygon() -> None:
    """The coordinate-only validity shortcut agrees with GEOS whenever it says 'valid'."""
    import numpy as np
    import pyarrow as pa
    import shapely

    from layers.ingest import wkbfast

    rng = np.random.default_rng(3)
    rings = []
    for i in range(6000):
        k = int(rng.integers(3, 8))
        kind = i % 6
        if kind == 0:  # convex: points on a circle in angle order
            a = np.sort(rng.uniform(0, 2 * np.pi, k))
            pts = np.c_[np.cos(a), np.sin(a)] * rng.uniform(1, 100)
        elif kind == 1:  # random, often self-intersecting
            pts = rng.uniform(0, 10, (k, 2))
        elif kind == 2:  # pentagram: every turn the same way, but twice around
            a = np.arange(5) * 4 * np.pi / 5
            pts = np.c_[np.cos(a), np.sin(a)]
        elif kind == 3:  # convex with a repeated vertex
            a = np.sort(rng.uniform(0, 2 * np.pi, k))
            pts = np.c_[np.cos(a), np.sin(a)]
            pts = np.insert(pts, 1, pts[1], axis=0)
        elif kind == 4:  # nearly collinear
            pts = np.array([[0, 0], [1, 1e-12], [2, 0], [1, 1]], dtype=float)
        else:  # small integer grid: exact collinearity, spikes, zero area
            pts = rng.integers(0, 3, (k, 2)).astype(float)
        rings.append(np.vstack([pts, pts[:1]]) + 500_000.0)
    geoms = [shapely.Polygon(r) for r in rings]
    geoms.append(shapely.Polygon([(0, 0), (4, 0), (4, 4), (0, 4)], [[(1, 1), (2, 1), (2, 2)]]))
    arr = np.array(geoms, dtype=object)
    wkb = pa.array(shapely.to_wkb(arr), pa.binary())
    where = wkbfast.coordinate_positions(wkb)
    assert where is not None
    x, y = wkbfast.read_xy(wkb, where.pos)
    certain = wkbfast.certainly_valid(where, x, y, len(arr))
    valid = shapely.is_valid(arr)
    assert certain.sum() > 500 and not certain[-1]  # holes are left to GEOS
    assert not np.any(certain & ~valid)


def test_prepare_same_with_and_without_the_validity_shortcut(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Skipping GEOS for certainly-valid rows changes nothing in what prepare returns."""
    import numpy as np
    import pyarrow as pa
    import shapely

    from ingest import crs as crsmod
    from ingest.province import bundled_boundary, tolerant_boundary
    from ingest.validate import prepare
    from layers.ingest import wkbfast
    from tests.ingest.conftest import TRUTH_LONLAT, to_srid

    x, y = to_srid(TRUTH_LONLAT, 9208)[0]
    bowtie = shapely.Polygon([(x, y), (x + 10, y + 10), (x + 10, y), (x, y + 10)])
    far = shapely.box(x + 900_000, y, x + 900_020, y + 30)  # convex, outside the province
    boxes = [shapely.box(x + 30 * i, y, x + 30 * i + 20, y + 25) for i in range(50)]
    geoms = np.array([*boxes, bowtie, far, None], dtype=object)
    wkb = np.array([None if g is None else shapely.to_wkb(g) for g in geoms], dtype=object)
    choice = crsmod.recognise("EPSG:9208", "option")
    province = tolerant_boundary(bundled_boundary("40"), 1000)

    def run(geometry_type: str | None) -> tuple[object, ...]:
        out = prepare(
            wkb,
            pa.table({"i": list(range(len(geoms)))}),
            choice,
            province,
            geometry_type=geometry_type,
            property_schema=None,
            typed=True,
        )
        return (
            out.wkb.to_pylist(),
            out.row_numbers.tolist(),
            out.geometry_type,
            out.repaired,
            out.reject_counts(),
        )

    for geometry_type in (None, "Polygon", "MultiPolygon", "Geometry"):
        fast = run(geometry_type)
        with monkeypatch.context() as m:
            m.setattr(wkbfast, "certainly_valid", lambda where, x, y, n: np.zeros(n, dtype=bool))
            slow = run(geometry_type)
        assert fast == slow, geometry_type
        assert fast[3] == 1 and fast[4]["outside_province"] == 1
