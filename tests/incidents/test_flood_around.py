"""/around counts people and schools inside the part of the radius under a flood extent."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from geo_api.main import create_app
from layers.features.registry import delete_layer, find_layer
from layers.models.core import admin_unit
from layers.rasters.extent import write_extent
from layers.settings import Settings

Headers = Callable[..., dict[str, str]]
SLUG = "flood_extent"


@pytest.fixture(scope="module")
def client(seeded: Engine, settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), base_url="https://testserver") as c:
        yield c


@pytest.fixture()
def no_extent(seeded: Engine) -> Iterator[None]:
    """No flood extent before the test (another test may have written one), none after it."""

    def drop() -> None:
        with seeded.begin() as conn:
            if find_layer(conn, SLUG) is not None:
                delete_layer(conn, SLUG)

    drop()
    yield
    drop()


def _extent(engine: Engine, geom: shapely.Geometry) -> None:
    with engine.begin() as conn:
        write_extent(
            conn, SLUG, geom, {"source": "test_dem", "level_m": 4.5, "flooded_km2": 1.0}, True
        )


def test_around_reports_people_and_schools_under_the_flood_extent(
    client: TestClient, seeded: Engine, auth_headers: Headers, no_extent: None
) -> None:
    op = auth_headers("operator")
    pt = func.ST_PointOnSurface(admin_unit.c.geom)
    with seeded.connect() as conn:
        x, y = conn.execute(
            select(func.ST_X(pt), func.ST_Y(pt))
            .where(admin_unit.c.level == "commune", admin_unit.c.valid_to.is_(None))
            .order_by(admin_unit.c.population.desc(), admin_unit.c.code)
            .limit(1)
        ).one()
    r = client.post(
        "/api/incidents",
        json={
            "geometry": {"type": "Point", "coordinates": [x, y]},
            "type": "flood",
            "severity": 2,
            "title": "Ngập khu dân cư (flood extent test)",
            "radius_m": 1500,
        },
        headers=op,
    )
    assert r.status_code == 200, r.text
    iid = r.json()["id"]

    # No extent written yet: nothing is claimed about water.
    base = client.get(f"/api/incidents/{iid}/around", headers=op).json()
    assert base["flood"] is None
    assert base["population"] > 0 and base["schools"], "the test place needs schools nearby"

    # An extent covering the whole radius: the flooded part is the radius itself.
    _extent(seeded, shapely.box(x - 0.1, y - 0.1, x + 0.1, y + 0.1))
    full = client.get(f"/api/incidents/{iid}/around", headers=op).json()["flood"]
    assert full is not None and full["layer"] == SLUG and full["synthetic"] is True
    assert full["source"] == "test_dem" and full["level_m"] == 4.5
    assert full["flooded_km2"] == pytest.approx(math.pi * 1.5**2, rel=0.02)
    assert full["population"] == pytest.approx(base["population"], rel=0.001, abs=1)
    assert {s["id"] for s in full["schools"]} == {s["id"] for s in base["schools"]}
    assert full["pupils"] == base["pupils"] and full["communes"] == base["communes"]

    # Only the eastern half under water: half the area, the schools east of the incident.
    _extent(seeded, shapely.box(x, y - 0.1, x + 0.1, y + 0.1))
    half = client.get(f"/api/incidents/{iid}/around", headers=op).json()
    east = half["flood"]
    assert east["flooded_km2"] == pytest.approx(math.pi * 1.5**2 / 2, rel=0.02)
    assert 0 < east["population"] < full["population"]
    assert {s["id"] for s in east["schools"]} == {s["id"] for s in base["schools"] if s["lng"] > x}
    assert east["pupils"] == sum(s["pupils"] or 0 for s in base["schools"] if s["lng"] > x)
    assert half["population"] == base["population"]  # the radius figures are unchanged

    # An extent elsewhere (outside the radius): zero under water here, not an error.
    _extent(seeded, shapely.box(x + 0.5, y + 0.5, x + 0.6, y + 0.6))
    dry = client.get(f"/api/incidents/{iid}/around", headers=op).json()["flood"]
    assert dry["flooded_km2"] == 0 and dry["population"] == 0 and dry["schools"] == []
    assert dry["communes"] == []

    # The last analysis found no water at all (an empty extent): zero, with where it came from.
    _extent(seeded, shapely.Polygon())
    none = client.get(f"/api/incidents/{iid}/around", headers=op).json()["flood"]
    assert none is not None and none["population"] == 0 and none["flooded_km2"] == 0
    assert none["schools"] == [] and none["pupils"] == 0
