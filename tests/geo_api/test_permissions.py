"""The permission matrix: every route of the app × every role, generated from the policy table."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from geo_api import security
from geo_api.main import create_app
from layers.auth.users import ROLES
from layers.demo.specs import LAND_PARCELS
from layers.settings import Settings

Headers = Callable[..., dict[str, str]]
CALLERS = ("anonymous", *ROLES)
# Endpoints that never end when they are allowed (SSE); for those only refusals are requested.
STREAMS = {"/api/alerts/stream", "/api/events/stream", "/api/incidents/stream"}
PARAMS = {
    "z": "14",
    "x": "13020",
    "y": "7300",
    "path": "does-not-exist.js",
    "camera_id": "cam-x",
    "feature_id": "1",
    "photo_id": "1",
}
PUBLIC_LAYER, SENSITIVE_LAYER = "hospitals", "land_parcels"
LAYER_PARAMS = {"slug", "layer", "collection_id"}
# Valid bodies for the query routes: their layers are checked on the validated body.
VINH = {"lon": 105.69, "lat": 18.68}
# the body field that names the layer under test (raster queries name a raster or a depth grid)
SLUG_FIELD = {
    "/api/query/zonal": "raster",
    "/api/query/flood-exposure": "depth",
    "/api/qgis/project.qgz": "layers",
}
QUERY_BODIES: dict[str, dict[str, object]] = {
    "/api/query/within": {"polygon": {"type": "Polygon", "coordinates": [[
        [105.68, 18.67], [105.70, 18.67], [105.70, 18.69], [105.68, 18.67]]]}, "limit": 1},
    "/api/query/radius": {**VINH, "radius_m": 100, "limit": 1},
    "/api/query/near-layer": {"other_layer": PUBLIC_LAYER, "radius_m": 100, "limit": 1},
    "/api/query/nearest": {**VINH, "k": 1},
    "/api/query/per-commune": {},
    "/api/query/gaps": {"radius_m": 100},
    "/api/query/buffer": {"radius_m": 10, "limit": 1},
    "/api/query/intersection": {"other_layer": PUBLIC_LAYER, "limit": 1},
    "/api/query/zonal": {},
    "/api/query/flood-exposure": {},
    "/api/qgis/project.qgz": {},
}  # fmt: skip


def test_every_route_has_a_policy_entry(settings: Settings) -> None:
    app = create_app(settings)
    missing = [k for k in security.route_keys(app) if k not in security.POLICY]
    assert missing == [], f"routes without an entry in geo_api.security.POLICY: {missing}"


def _cases(app: FastAPI) -> list[tuple[str, str, str | None]]:
    """(method, template, layer slug or None) for every route, both layer kinds where relevant."""
    out: list[tuple[str, str, str | None]] = []
    for method, template in security.route_keys(app):
        rule = security.POLICY[(method, template)]
        if rule.layer_param or rule.layers_in_body:
            out += [(method, template, PUBLIC_LAYER), (method, template, SENSITIVE_LAYER)]
        else:
            out.append((method, template, None))
    return out


def _expected(rule: security.Rule, role: str, slug: str | None) -> bool:
    user_role = None if role == "anonymous" else role
    if user_role == "admin":
        return True
    if rule.roles is not None:
        if user_role is None or user_role not in rule.roles:
            return False
    elif rule.authenticated and user_role is None:
        return False
    if slug == SENSITIVE_LAYER:
        # the catalogue's visibility (layers/demo/specs.py) decides, not a table in the code
        return user_role in LAND_PARCELS.visibility.roles
    return True


@pytest.fixture(scope="module")
def client_options() -> dict[str, Any]:
    return {"settings": {"report_rate_burst": 100_000}, "base_url": "https://testserver"}


def _url(template: str, slug: str | None) -> str:
    def fill(m: re.Match[str]) -> str:
        name = m.group(1).split(":")[0]
        if name in LAYER_PARAMS:
            return slug or PUBLIC_LAYER
        return PARAMS.get(name, "1")

    return re.sub(r"\{([^}]+)\}", fill, template)


def test_permission_matrix(
    client: TestClient, auth_headers: Headers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(security, "ENFORCE_ALL", True)
    headers = {role: ({} if role == "anonymous" else auth_headers(role)) for role in CALLERS}
    failures: list[str] = []
    checked = 0
    for method, template, slug in _cases(client.app):  # type: ignore[arg-type]
        rule = security.POLICY[(method, template)]
        url = _url(template, slug)
        for role in CALLERS:
            allowed = _expected(rule, role, slug)
            if allowed and template in STREAMS:
                continue
            kwargs: dict[str, object] = {"headers": headers[role]}
            if rule.layers_in_body and method == "GET":
                # GET routes name their layers in the query (the QGIS project)
                kwargs["params"] = {SLUG_FIELD.get(template, "layers"): slug}
            elif rule.layers_in_body:
                field = SLUG_FIELD.get(template, "layer")
                kwargs["json"] = {field: slug, **QUERY_BODIES[template]}
            res = client.request(method, url, **kwargs)  # type: ignore[arg-type]
            checked += 1
            if allowed and res.status_code in (401, 403):
                failures.append(f"{role} {method} {url}: {res.status_code}, expected allowed")
            if not allowed:
                want = 401 if role == "anonymous" else 403
                if res.status_code != want:
                    failures.append(f"{role} {method} {url}: {res.status_code}, expected {want}")
    assert checked > 400
    assert failures == []


def test_routes_missing_from_the_policy_are_denied(
    seeded: Engine, settings: Settings, auth_headers: Headers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(security, "ENFORCE_ALL", True)
    app = create_app(settings)

    @app.get("/api/not-in-the-table")
    def hidden() -> dict[str, bool]:
        return {"ok": True}

    with TestClient(app) as c:
        assert c.get("/api/not-in-the-table").status_code == 401
        for role in ("leader", "operator", "citizen"):
            res = c.get(
                "/api/not-in-the-table", headers={**auth_headers(role), "Accept-Language": "en"}
            )
            assert res.status_code == 403 and "no access policy" in res.json()["detail"]
        assert c.get("/api/not-in-the-table", headers=auth_headers("admin")).status_code == 200


def test_sensitive_layers_need_a_permitted_role_by_every_generic_route(
    client: TestClient, auth_headers: Headers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(security, "ENFORCE_ALL", True)
    urls = [
        "/api/layers/land_parcels/features?limit=1",
        "/ogc/collections/land_parcels/items?limit=1",
        "/tiles/land_parcels.json",
        "/api/h3/land_parcels",
        "/api/layers/cameras/features?limit=1",
    ]
    for url in urls:
        assert client.get(url).status_code == 401, url
        assert client.get(url, headers=auth_headers("citizen")).status_code == 403, url
    assert client.get(urls[0], headers=auth_headers("planner")).status_code == 200
    assert client.get(urls[4], headers=auth_headers("operator")).status_code == 200
    assert client.get(urls[4], headers=auth_headers("planner")).status_code == 403
    res = client.post("/api/query/radius", json={"layer": "hospitals", "other_layer": None})
    assert res.status_code not in (401, 403)
    body = {"layer": "hospitals", "other_layer": "land_parcels", "radius_m": 100}
    assert client.post("/api/query/near-layer", json=body).status_code == 401
    # Public layers stay open to anonymous web-map users.
    assert client.get("/api/layers/hospitals/features?limit=1").status_code == 200
    assert client.get("/tiles/hospitals.json").status_code == 200
