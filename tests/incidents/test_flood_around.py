"""/around counts people and schools inside the part of the radius under a flood extent."""

from __future__ import annotations

import math
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

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


def _flood_incident(
    client: TestClient, seeded: Engine, op: dict[str, str], title: str, radius_m: float
) -> tuple[int, float, float]:
    """A flood incident opened on the map in the most populous commune: id and place."""
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
            "severity": 3,
            "title": title,
            "radius_m": radius_m,
        },
        headers=op,
    )
    assert r.status_code == 200, r.text
    return int(r.json()["id"]), float(x), float(y)


def test_around_reports_people_and_schools_under_the_flood_extent(
    client: TestClient, seeded: Engine, auth_headers: Headers, no_extent: None
) -> None:
    op = auth_headers("operator")
    iid, x, y = _flood_incident(client, seeded, op, "Ngập khu dân cư (flood extent test)", 1500)

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
    assert {h["id"] for h in full["hospitals"]} <= {h["id"] for h in base["hospitals"]}
    assert full["beds"] == sum(h["beds"] or 0 for h in full["hospitals"])
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


def _vi(value: float, digits: int) -> str:
    return f"{value:,.{digits}f}".translate(str.maketrans(",.", ".,"))


def _pdf_text(pdf: bytes, out: Path, name: str) -> str:
    path = out / f"{name}.pdf"
    path.write_bytes(pdf)
    # the pages as pictures too (pdftoppm), to look at: the map shows the water
    subprocess.run(["pdftoppm", "-png", "-r", "60", str(path), str(out / name)], check=True)
    assert list(out.glob(f"{name}-*.png"))
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


def test_after_action_report_carries_the_flood_figures(
    client: TestClient, seeded: Engine, auth_headers: Headers, no_extent: None
) -> None:
    op = auth_headers("operator")
    iid, x, y = _flood_incident(client, seeded, op, "Ngập diện rộng (report flood test)", 2000)
    art = Path("test-artifacts/incidents")
    art.mkdir(parents=True, exist_ok=True)

    # No extent: the report claims nothing about water.
    words = _pdf_text(
        client.get(f"/api/incidents/{iid}/report.pdf", headers=op).content, art, "dry"
    )
    assert "Vùng ngập trong bán kính" not in words
    assert "Vùng ngập" not in client.get(f"/api/incidents/{iid}/report.html", headers=op).text

    # The western half under water: the panel's figures, in the PDF and the HTML, vi and en.
    _extent(seeded, shapely.box(x - 0.1, y - 0.1, x, y + 0.1))
    fl = client.get(f"/api/incidents/{iid}/around", headers=op).json()["flood"]
    assert fl["flooded_km2"] > 0 and fl["population"] > 0 and fl["schools"]
    pdf = client.get(f"/api/incidents/{iid}/report.pdf?lang=vi", headers=op)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    words = _pdf_text(pdf.content, art, "flood-report")
    flat = " ".join(words.split())
    assert "Vùng ngập trong bán kính ảnh hưởng" in flat
    assert f"Diện tích ngập trong bán kính {_vi(fl['flooded_km2'], 2)} km²" in flat
    assert f"Dân số bị ngập trong bán kính (ước tính) {_vi(fl['population'], 0)}" in flat
    assert f"Trường học bị ngập {len(fl['schools'])} ({_vi(fl['pupils'], 0)} học sinh)" in flat
    assert f"Cơ sở y tế bị ngập {len(fl['hospitals'])}" in flat
    assert fl["schools"][0]["name"] in flat  # what is under water, by name
    assert "test_dem (dữ liệu mô phỏng)" in flat and "4,5 m" in flat
    html = client.get(f"/api/incidents/{iid}/report.html?lang=en", headers=op).text
    assert "Flooding inside the affected radius" in html
    assert f"{fl['flooded_km2']:,.2f} km²" in html and f"{fl['population']:,}" in html
    assert f"{len(fl['schools'])} ({fl['pupils']:,} pupils)" in html
    en = _pdf_text(
        client.get(f"/api/incidents/{iid}/report.pdf?lang=en", headers=op).content, art, "flood-en"
    )
    assert f"{fl['flooded_km2']:,.2f} km²" in " ".join(en.split())
