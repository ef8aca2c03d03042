"""The foundation API: health, the catalog, the features endpoint and its errors, docs, map page."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine


def test_health_reports_a_migrated_database(client: TestClient) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["migrated"] is True and body["postgis"]


def test_catalog_lists_layers_with_counts_and_bbox(client: TestClient) -> None:
    layers = {item["slug"]: item for item in client.get("/api/layers").json()}
    assert layers["admin_communes"]["feature_count"] == 130
    assert layers["schools"]["feature_count"] == 1800
    minx, miny, maxx, maxy = layers["admin_communes"]["bbox"]
    # Nghệ An spans roughly 103.8–105.8 E, 18.5–20.0 N.
    assert 103.5 < minx < maxx < 106.0 and 18.3 < miny < maxy < 20.2
    assert layers["hospitals"]["synthetic"] is True
    assert layers["field_reports"]["time_field"] == "received_at"
    assert layers["field_reports"]["time_extent"] is not None


def test_features_are_geojson_with_bbox_filter(client: TestClient) -> None:
    vinh = "105.62,18.62,105.75,18.74"
    res = client.get(f"/api/layers/hospitals/features?bbox={vinh}&limit=500")
    assert res.status_code == 200
    assert res.headers["content-type"].startswith("application/geo+json")
    fc = res.json()
    assert fc["type"] == "FeatureCollection" and fc["features"]
    for feat in fc["features"]:
        lon, lat = feat["geometry"]["coordinates"]
        assert 105.62 <= lon <= 105.75 and 18.62 <= lat <= 18.74
    assert any(f["properties"]["type"] == "provincial_hospital" for f in fc["features"])


def test_next_links_walk_every_feature_once(client: TestClient) -> None:
    seen: list[int] = []
    url: str | None = "/api/layers/schools/features?limit=700"
    pages = 0
    while url:
        fc = client.get(url).json()
        seen += [f["id"] for f in fc["features"]]
        nxt = [link["href"] for link in fc["links"] if link["rel"] == "next"]
        url = nxt[0] if nxt else None
        pages += 1
    assert pages == 3
    assert len(seen) == len(set(seen)) == 1800


def test_property_equality_filters(client: TestClient) -> None:
    fc = client.get("/api/layers/schools/features?level=thpt&limit=10000").json()
    assert fc["features"] and {f["properties"]["level"] for f in fc["features"]} == {"thpt"}
    total = client.get("/api/layers/schools/features?limit=10000").json()
    assert len(fc["features"]) < len(total["features"])


@pytest.mark.parametrize(
    ("url", "status", "needle"),
    [
        ("/api/layers/nope/features", 404, "nope"),
        ("/api/layers/schools/features?bbox=1,2,3", 400, "4 numbers"),
        ("/api/layers/schools/features?bbox=a,b,c,d", 400, "not a number"),
        ("/api/layers/schools/features?bbox=106,19,105,18", 400, "inverted"),
        ("/api/layers/schools/features?bbox=0,0,200,10", 400, "WGS84"),
        ("/api/layers/schools/features?limit=0", 400, "limit"),
        ("/api/layers/schools/features?limit=10001", 400, "10000"),
        ("/api/layers/schools/features?limit=abc", 400, "limit"),
        ("/api/layers/schools/features?color=red", 400, "no property 'color'"),
    ],
)
def test_bad_inputs_give_clear_json_errors(
    client: TestClient, url: str, status: int, needle: str
) -> None:
    res = client.get(url)
    assert res.status_code == status
    body = res.json()
    # a validation error names the field in words; its raw location is in `fields`
    assert needle in body["detail"] or any(needle in f for f in body.get("fields", [])), body


def test_openapi_docs_are_served(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert "/api/layers/{slug}/features" in paths


def test_root_serves_the_web_map(client: TestClient) -> None:
    res = client.get("/")
    assert res.status_code == 200, "web map not built: run ./scripts/setup"
    assert "text/html" in res.headers["content-type"]
    assert "<script" in res.text


def test_error_context_cannot_clobber_the_error_fields() -> None:
    from geo_api.errors import error_body

    body = error_body(400, "invalid_input", "bad", {"code": "X1", "status": 999, "param": "bbox"})
    assert body["code"] == "invalid_input" and body["status"] == 400 and body["param"] == "bbox"


def test_features_carry_source_key_and_filter_by_it(client: TestClient, seeded: Engine) -> None:
    from sqlalchemy import text

    with seeded.connect() as conn:
        keys = dict(
            conn.execute(
                text(
                    "SELECT f.id, f.source_key FROM feature f JOIN layer l ON l.id = f.layer_id"
                    " WHERE l.slug = 'hospitals'"
                )
            ).all()
        )
    fc = client.get("/api/layers/hospitals/features?limit=10000").json()
    assert len(fc["features"]) == len(keys)
    assert all(f["properties"]["source_key"] == keys[f["id"]] for f in fc["features"])
    some_id, some_key = next(iter(keys.items()))
    one = client.get(f"/api/layers/hospitals/features?source_key={some_key}").json()
    assert [f["id"] for f in one["features"]] == [some_id]


def test_features_datetime_filter(client: TestClient, seeded: Engine) -> None:
    from datetime import datetime

    from sqlalchemy import text

    with seeded.connect() as conn:
        mid = conn.execute(
            text(
                "SELECT date_trunc('day', percentile_disc(0.5) WITHIN GROUP (ORDER BY observed_at))"
                " FROM feature f JOIN layer l ON l.id = f.layer_id"
                " WHERE l.slug = 'field_reports'"
            )
        ).scalar_one()
        n = conn.execute(
            text(
                "SELECT count(*) FROM feature f JOIN layer l ON l.id = f.layer_id"
                " WHERE l.slug = 'field_reports' AND observed_at >= :t"
            ),
            {"t": mid},
        ).scalar_one()
    iso = mid.isoformat().replace("+00:00", "Z")
    fc = client.get(f"/api/layers/field_reports/features?datetime={iso}/..&limit=10000").json()
    assert len(fc["features"]) == n > 0
    assert all(
        datetime.fromisoformat(f["properties"]["received_at"]) >= mid for f in fc["features"]
    )
    bad = client.get("/api/layers/hospitals/features?datetime=2026-01-01")
    assert bad.status_code == 400 and "no time field" in bad.json()["detail"]
    assert client.get("/api/layers/field_reports/features?datetime=nope").status_code == 400
