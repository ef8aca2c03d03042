"""Item 1 of issue 14: restricted layers named in a body are checked on the body the handler
parses, so encoding tricks that once fooled a stricter second parser are refused and audited."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from geo_api.main import create_app
from layers.models.reports import audit_log
from layers.settings import Settings

Headers = Callable[..., dict[str, str]]
POLYGON = {
    "type": "Polygon",
    "coordinates": [[[104.0, 18.0], [106.0, 18.0], [106.0, 20.0], [104.0, 18.0]]],
}


def _body(route: str, layer: str, variant: str) -> bytes:
    body: dict[str, object] = {"layer": layer}
    if route == "within":
        body["polygon"] = POLYGON
    else:
        body.update(lon=105.69, lat=18.68, k=3)
    text = json.dumps(body)
    if variant == "bom":
        return b"\xef\xbb\xbf" + text.encode()
    if variant == "utf16":
        return text.encode("utf-16")
    if variant == "1e400":
        # a number beyond float range where the model accepts any JSON (GeoJSON or a filter)
        if route == "within":
            return text.replace("104.0,", "1e400,", 1).encode()
        return (
            text.replace('"k": 3', '"k": 3, "where": {"x": "1"}').replace('"1"', "1e400").encode()
        )
    if variant == "surrogate":
        return text.replace('"layer"', '"where": {"name": "\\ud800"}, "layer"').encode()
    return text.encode()


@pytest.fixture(scope="module")
def client(seeded: Engine, settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings.model_copy(update={"report_rate_burst": 100_000}))
    with TestClient(app) as c:
        yield c


@pytest.mark.parametrize("variant", ["plain", "bom", "utf16", "1e400", "surrogate"])
@pytest.mark.parametrize("route", ["within", "nearest"])
@pytest.mark.parametrize("layer", ["land_parcels", "cameras"])
def test_restricted_layers_in_odd_bodies_are_refused_and_audited(
    client: TestClient, seeded: Engine, route: str, layer: str, variant: str
) -> None:
    marker = f"odd-body-{route}-{layer}-{variant}"
    res = client.post(
        f"/api/query/{route}",
        content=_body(route, layer, variant),
        headers={"Content-Type": "application/json", "User-Agent": marker},
    )
    assert 400 <= res.status_code < 500, res.text[:300]
    assert "features" not in res.text and "stream_url" not in res.text
    with seeded.connect() as conn:
        row = conn.execute(
            select(audit_log.c.status, audit_log.c.details, audit_log.c.actor)
            .where(audit_log.c.user_agent == marker)
            .order_by(audit_log.c.id.desc())
        ).first()
    assert row is not None and row.actor == "anonymous" and row.status == res.status_code
    if res.status_code == 401:
        # the handler read the body and the check ran on it: the audit names the layer
        assert row.details["layers"] == [layer], row.details
    else:
        # a body the handler cannot read is refused before any layer is read
        assert res.status_code in (400, 422), res.text[:300]


def test_allowed_roles_read_restricted_layers_and_the_audit_names_them(
    client: TestClient, seeded: Engine, auth_headers: Headers
) -> None:
    marker = "odd-body-planner"
    res = client.post(
        "/api/query/nearest",
        content=_body("nearest", "land_parcels", "bom"),
        headers={
            "Content-Type": "application/json",
            "User-Agent": marker,
            **auth_headers("planner"),
        },
    )
    assert res.status_code == 200, res.text[:300]
    denied = client.post(
        "/api/query/nearest",
        json={"layer": "cameras", "lon": 105.69, "lat": 18.68},
        headers=auth_headers("citizen"),
    )
    assert denied.status_code == 403 and "cameras" in denied.json()["detail"]
    with seeded.connect() as conn:
        details = conn.execute(
            select(audit_log.c.details).where(audit_log.c.user_agent == marker)
        ).scalar_one()
    assert details["layers"] == ["land_parcels"]


def test_two_layers_are_both_checked(client: TestClient) -> None:
    res = client.post(
        "/api/query/near-layer",
        json={"layer": "hospitals", "other_layer": "land_parcels", "radius_m": 10},
    )
    assert res.status_code == 401 and "land_parcels" in res.json()["detail"]


def test_a_malformed_slug_is_a_400_naming_the_field(client: TestClient) -> None:
    res = client.post("/api/query/nearest", json={"layer": "x\x00y", "lon": 105.0, "lat": 18.0})
    # the field in words in the message, and by its name for programs
    assert res.status_code == 400 and res.json()["param"] == "layer"
    assert "Lớp" in res.json()["detail"]
    res = client.get("/api/layers/bad%00slug/features")
    assert res.status_code == 400 and "slug" in res.json()["detail"]
