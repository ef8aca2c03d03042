"""CQL2 parsing/translation and OGC parameter parsing, without a server."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, func, select

from layers.errors import InvalidInputError
from layers.features import cql, ogc, registry
from layers.models import feature


def test_temporal_functions_are_rewritten_for_pygeofilter() -> None:
    text = "T_AFTER(received_at, TIMESTAMP('2025-01-01T00:00:00Z')) AND name = 'T_BEFORE(x)'"
    out = cql.rewrite_temporal_functions(text)
    assert out.startswith("(received_at T_AFTER TIMESTAMP('2025-01-01T00:00:00Z'))")
    assert "'T_BEFORE(x)'" in out
    assert "NOT (a T_INTERSECTS" in cql.rewrite_temporal_functions("T_DISJOINT(a, b)")


def test_parse_errors_say_what_is_wrong() -> None:
    with pytest.raises(InvalidInputError, match="invalid CQL2-text"):
        cql.parse_cql2_text("pupils >> 3")
    with pytest.raises(InvalidInputError, match="2 arguments"):
        cql.parse_cql2_text("T_AFTER(a)")


def test_crs_and_bbox_and_datetime_parsing() -> None:
    assert ogc.parse_crs(None, "crs") == ogc.STORAGE_CRS
    assert ogc.parse_crs("EPSG:9208", "crs").srid == 9208
    assert ogc.parse_crs("[OGC:CRS84]", "crs").srid == 4326
    assert ogc.parse_crs("http://www.opengis.net/def/crs/EPSG/0/4326", "crs").lat_lon
    with pytest.raises(InvalidInputError, match="not supported"):
        ogc.parse_crs("EPSG:2154", "crs")
    latlon = ogc.parse_crs("http://www.opengis.net/def/crs/EPSG/0/4326", "bbox-crs")
    assert ogc.parse_bbox_in("18.6,105.6,18.8,105.8", latlon) == (105.6, 18.6, 105.8, 18.8)
    merc = ogc.parse_crs("http://www.opengis.net/def/crs/EPSG/0/3857", "bbox-crs")
    box = ogc.parse_bbox_in("11755000,2110000,11775000,2130000", merc)
    assert box is not None and 105.5 < box[0] < box[2] < 105.9
    with pytest.raises(InvalidInputError, match="inverted"):
        ogc.parse_bbox_in("3,0,1,1", ogc.STORAGE_CRS)
    assert ogc.parse_datetime("../2025-02-01T00:00:00Z") == (
        None,
        datetime(2025, 2, 1, tzinfo=UTC),
    )
    with pytest.raises(InvalidInputError, match="RFC 3339"):
        ogc.parse_datetime("yesterday")
    # what GDAL 3.6's OAPIF driver sends for -where "received_at >= '2026-06-01'"
    assert ogc.parse_datetime("2026-06-01T/..") == (datetime(2026, 6, 1, tzinfo=UTC), None)


def test_filters_count_like_sql(seeded: Engine) -> None:
    with seeded.connect() as conn:
        info = registry.get_layer(conn, "hospitals")

        def n(text: str) -> int:
            cond = cql.compile_filter(text, info)
            stmt = (
                select(func.count()).select_from(feature).where(feature.c.layer_id == info.id, cond)
            )
            return int(conn.execute(stmt).scalar_one())

        total = n("INCLUDE")
        big = n("beds >= 100")
        assert 0 < big < total
        assert n("NOT (beds >= 100)") == total - big
        assert n("type IN ('health_station')") + n("type <> 'health_station'") == total
        assert n("CASEI(type) = casei('HEALTH_STATION')") == n("type = 'health_station'")
        assert n("beds BETWEEN 100 AND 100000") == big
        assert n("BBOX(geometry, 103, 17, 107, 21)") == total
        with pytest.raises(InvalidInputError, match="number"):
            n("beds > 'many'")
