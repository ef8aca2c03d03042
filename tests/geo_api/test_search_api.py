"""GET /api/search, sortby on the items endpoints, saved views and the briefing export (issue 18)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from geo_api.main import create_app
from layers.settings import Settings

Headers = Callable[..., dict[str, str]]


@pytest.fixture(scope="module")
def client(seeded: Engine, settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


def _search(client: TestClient, q: str, headers: dict[str, str] | None = None) -> list[Any]:
    r = client.get("/api/search", params={"q": q}, headers=headers or {})
    assert r.status_code == 200, r.text
    return [x for g in r.json()["groups"] for x in g["results"]]


def _first_commune(results: list[Any]) -> Any:
    return next(r for r in results if r["kind"] in ("commune", "place"))


@pytest.mark.parametrize("q", ["cua lo", "Cửa Lò", "CUA LO", "phường cửa lò"])
def test_cua_lo_spellings(client: TestClient, q: str) -> None:
    top = _first_commune(_search(client, q))
    assert top["label"] == "Cửa Lò"
    assert 105.6 < top["lon"] < 105.8 and 18.7 < top["lat"] < 18.9
    # the town, not its islands 25 km offshore
    assert top["bbox"][2] < 105.8


@pytest.mark.parametrize("q", ["hung nguyen", "Hưng Nguyên", "hưng nguyen"])
def test_hung_nguyen_spellings(client: TestClient, q: str) -> None:
    assert _search(client, q)[0]["label"] == "Hưng Nguyên"


@pytest.mark.parametrize("q", ["TP Vinh", "tp vinh", "thành phố Vinh"])
def test_former_city_of_vinh_is_its_wards(client: TestClient, q: str) -> None:
    top = _search(client, q)[0]
    assert top["kind"] == "place"
    assert len(top["codes"]) >= 3
    # the former city: around 18.67 N, 105.68 E
    assert top["bbox"][0] < 105.68 < top["bbox"][2] and top["bbox"][1] < 18.67 < top["bbox"][3]
    # the wards of the former city only (not the communes named Vĩnh…)
    assert top["bbox"][2] - top["bbox"][0] < 0.3


def test_coordinates_both_orders_and_vn2000(client: TestClient) -> None:
    a = _search(client, "18.81, 105.72")[0]
    b = _search(client, "105.72 18.81")[0]
    assert a["kind"] == "coordinate" and (a["lon"], a["lat"]) == (105.72, 18.81)
    assert (b["lon"], b["lat"]) == (105.72, 18.81)
    v = _search(client, "597910.3, 2065297.7")[0]
    assert v["kind"] == "coordinate" and v["system"] == "vn2000"
    assert abs(v["lon"] - 105.68) < 1e-4 and abs(v["lat"] - 18.67) < 1e-4


def test_sensitive_layers_and_reports_follow_their_rules(
    client: TestClient, seeded: Engine, auth_headers: Headers
) -> None:
    with seeded.connect() as conn:
        cam = conn.execute(
            text(
                "SELECT f.properties->>'camera_id' FROM feature f JOIN layer l ON l.id=f.layer_id"
                " WHERE l.slug='cameras' LIMIT 1"
            )
        ).scalar()
        code = conn.execute(text("SELECT code FROM field_report LIMIT 1")).scalar()
    assert cam
    assert not [r for r in _search(client, cam) if r["layer"] == "cameras"]
    hits = _search(client, cam, auth_headers("operator"))
    assert any(r["kind"] == "camera" and r["label"] == cam for r in hits)
    if code:
        assert not _search(client, code)
        assert _search(client, code, auth_headers("operator"))[0]["code"] == code


def test_named_feature_and_bad_query(client: TestClient, seeded: Engine) -> None:
    with seeded.connect() as conn:
        name = conn.execute(
            text(
                "SELECT f.properties->>'name' FROM feature f JOIN layer l ON l.id=f.layer_id"
                " WHERE l.slug='hospitals' ORDER BY f.id LIMIT 1"
            )
        ).scalar()
    assert name
    from layers.features.placenames import strip_marks

    hits = _search(client, strip_marks(name).lower())
    assert any(r["layer"] == "hospitals" and r["label"] == name for r in hits)
    assert client.get("/api/search", params={"q": " "}).status_code == 400
    assert client.get("/api/search", params={"q": "x" * 300}).status_code == 400


def test_sortby_on_items_endpoints(client: TestClient, auth_headers: Headers) -> None:
    r = client.get(
        "/ogc/collections/hospitals/items", params={"sortby": "-beds", "limit": 5}
    ).json()
    beds = [f["properties"]["beds"] for f in r["features"]]
    assert beds == sorted(beds, reverse=True)
    nxt = next(link["href"] for link in r["links"] if link["rel"] == "next")
    assert "offset=5" in nxt
    page2 = client.get(nxt).json()
    assert page2["features"][0]["properties"]["beds"] <= beds[-1]
    r2 = client.get("/api/layers/hospitals/features", params={"sortby": "name", "limit": 5}).json()
    names = [f["properties"]["name"] for f in r2["features"]]
    assert names == sorted(names)
    assert (
        client.get("/ogc/collections/hospitals/items", params={"sortby": "nope"}).status_code == 400
    )
    # filter + sort on the large layer, by a column, as the attribute table asks
    h = auth_headers("planner")
    f = client.get(
        "/ogc/collections/land_parcels/items",
        params={"filter": "KyHieuMucDichSuDung='ONT'", "sortby": "-DienTich", "limit": 3},
        headers=h,
    ).json()
    assert all(x["properties"]["KyHieuMucDichSuDung"] == "ONT" for x in f["features"])
    assert f["numberMatched"] >= len(f["features"])


def test_saved_views_per_user(client: TestClient, auth_headers: Headers) -> None:
    a, b = auth_headers("leader"), auth_headers("operator")
    assert client.get("/api/views").status_code == 401
    r = client.post("/api/views", json={"name": "Vinh", "state": "c=105.68,18.67&z=12"}, headers=a)
    assert r.status_code == 201, r.text
    vid = r.json()["id"]
    assert (
        client.post("/api/views", json={"name": "Vinh", "state": "x"}, headers=a).status_code == 409
    )
    assert (
        client.post("/api/views", json={"name": "V", "state": "x", "bad": 1}, headers=a).status_code
        == 400
    )
    assert [v["name"] for v in client.get("/api/views", headers=a).json()].count("Vinh") == 1
    assert all(v["id"] != vid for v in client.get("/api/views", headers=b).json())
    assert client.delete(f"/api/views/{vid}", headers=b).status_code == 404
    assert (
        client.patch(f"/api/views/{vid}", json={"rotate_s": 10}, headers=a).json()["rotate_s"] == 10
    )
    assert client.delete(f"/api/views/{vid}", headers=a).status_code == 204


def test_briefing_export_route(client: TestClient, auth_headers: Headers) -> None:
    r = client.get("/api/export/briefing", params={"layers": "hospitals", "lang": "en"})
    assert r.status_code == 200
    assert "attachment" in r.headers["content-disposition"]
    assert "<html" in r.text.lower() and "unpkg" not in r.text
    # a bbox with none of the layer's features still gives a page (the basemap)
    far = client.get(
        "/api/export/briefing",
        params={"layers": "hospitals,news_items", "bbox": "104,19.9,104.01,19.91"},
    )
    assert far.status_code == 200, far.text
    denied = client.get("/api/export/briefing", params={"layers": "land_parcels"})
    assert denied.status_code == 403
    ok = client.get(
        "/api/export/briefing", params={"layers": "cameras"}, headers=auth_headers("operator")
    )
    assert ok.status_code == 200
