"""QGIS projects (/api/qgis/project.qgz), the credentials QGIS can send, and headless QGIS.

The headless tests run Debian's QGIS (python3-qgis, `scripts/setup --test`) in a subprocess of
the system python3 with QT_QPA_PLATFORM=offscreen against a live test server. They skip only
when python3-qgis is missing outside CI; in CI (CI set) a missing QGIS fails.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import httpx
import pytest
from sqlalchemy import Engine

from geo_api.security import reset_rate_limits
from layers.auth import users
from layers.settings import Settings
from tests.conftest import RequestRecorder, live_server_for

PASSWORD = "qgis test password"
SYSTEM_PYTHON = "/usr/bin/python3"
CHECK = Path(__file__).with_name("qgis_check.py")
DENSE = 2500  # land_parcels (3,000 in the test seed) is dense here, schools (1,800) are not
VINH = (105.64, 18.64, 105.72, 18.71)


def _have_qgis() -> bool:
    try:
        done = subprocess.run(
            [SYSTEM_PYTHON, "-c", "import qgis.core"], capture_output=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _require_qgis() -> None:
    if _have_qgis():
        return
    if os.environ.get("CI"):
        pytest.fail("python3-qgis is not installed (scripts/setup --test installs it)")
    pytest.skip("Debian's python3-qgis is not installed (apt-get install python3-qgis)")


@pytest.fixture(scope="module")
def recorder() -> RequestRecorder:
    """Every request the module's server answered."""
    return RequestRecorder()


@pytest.fixture(scope="module")
def server(seeded: Engine, settings: Settings, recorder: RequestRecorder) -> Iterator[str]:
    """A live server on the seeded test database with a planner and a citizen account."""
    with seeded.begin() as conn:
        for name, role in (("qgis_planner", "planner"), ("qgis_citizen", "citizen")):
            try:
                users.get_user(conn, name)
            except Exception:
                users.create_user(conn, name, PASSWORD, role)
    reset_rate_limits(seeded)
    # A long backoff keeps the guessing test deterministic on a slow machine; a larger address
    # bucket lets the module's sign-ins (all from 127.0.0.1) pass.
    dense = settings.model_copy(
        update={
            "qgis_dense_min_features": DENSE,
            "login_backoff_base_s": 60.0,
            "login_rate_burst": 50,
        }
    )
    with live_server_for(dense, recorder.wrap) as base:
        yield base


def _basic(username: str, password: str = PASSWORD) -> dict[str, str]:
    raw = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def _qgs(content: bytes) -> ET.Element:
    with zipfile.ZipFile(io.BytesIO(content)) as zf:
        names = zf.namelist()
        assert names == ["iocmap.qgs"]
        return ET.fromstring(zf.read(names[0]))


def _layers(root: ET.Element) -> dict[str, ET.Element]:
    return {str(ml.findtext("id")): ml for ml in root.iter("maplayer")}


def _catalogue(server: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = httpx.get(f"{server}/api/layers", headers=headers or {}, timeout=30)
    assert response.status_code == 200
    return {layer["slug"]: layer for layer in response.json()}


def test_anonymous_project_has_the_public_layers_only(server: str) -> None:
    response = httpx.get(f"{server}/api/qgis/project.qgz", params={"lang": "en"}, timeout=60)
    assert response.status_code == 200
    assert response.headers["content-disposition"] == 'attachment; filename="iocmap.qgz"'
    root = _qgs(response.content)
    layers = _layers(root)
    public = {slug for slug, info in _catalogue(server).items() if info.get("kind") != "raster"}
    assert {ml.split("_oapif")[0] for ml in layers if ml.endswith("_oapif")} == public
    assert "land_parcels_oapif" not in layers and "cameras_oapif" not in layers
    assert "authcfg" not in response.text
    groups = [g.get("name") for g in root.find("layer-tree-group").findall("layer-tree-group")]
    assert groups[-1] == "Administration" and "Health" in groups
    assert root.find("projectCrs/spatialrefsys/authid").text == "EPSG:3857"
    xmin = float(root.findtext("mapcanvas/extent/xmin"))
    assert 11_500_000 < xmin < 11_700_000  # Nghệ An's west edge, 103.9° E, in metres

    hospitals = layers["hospitals_oapif"]
    assert hospitals.findtext("provider") == "OAPIF"
    source = hospitals.findtext("datasource")
    assert f"url='{server}/ogc'" in source and "typename='hospitals'" in source
    renderer = hospitals.find("renderer-v2")
    assert renderer.get("type") == "categorizedSymbol" and renderer.get("attr") == "type"
    labels = {c.get("value"): c.get("label") for c in renderer.iter("category")}
    assert labels["health_station"] == "Commune health station"
    assert hospitals.find("labeling/settings/text-style").get("fieldName") == "name"


def test_signed_in_project_adds_restricted_layers_with_authcfg(server: str) -> None:
    response = httpx.get(
        f"{server}/api/qgis/project.qgz",
        params={"crs": 4326, "lang": "vi", "authcfg": "abc1234"},
        headers=_basic("qgis_planner"),
        timeout=60,
    )
    assert response.status_code == 200
    root = _qgs(response.content)
    layers = _layers(root)
    parcels = layers["land_parcels_oapif"]
    assert parcels.findtext("datasource").startswith("authcfg=abc1234 ")
    assert "authcfg" not in layers["hospitals_oapif"].findtext("datasource")
    # 3,000 parcels are dense here: vector tiles drawn, the OAPIF copy there but unchecked
    tiles = layers["land_parcels_vt"]
    assert tiles.get("type") == "vector-tile" and tiles.findtext("provider") == "vectortile"
    assert "authcfg=abc1234&type=xyz&url=" in tiles.findtext("datasource")
    styles = [s.get("expression") for s in tiles.iter("style")]
    assert "\"KyHieuMucDichSuDung\" = 'ODT'" in styles
    tree = {n.get("id"): n.get("checked") for n in root.iter("layer-tree-layer")}
    assert tree["land_parcels_vt"] == "Qt::Checked"
    assert tree["land_parcels_oapif"] == "Qt::Unchecked"
    assert root.find("projectCrs/spatialrefsys/authid").text == "EPSG:4326"
    abstract = root.findtext("projectMetadata/abstract")
    assert "abc1234" in abstract and "EsriToken" in abstract
    groups = [g.get("name") for g in root.find("layer-tree-group").findall("layer-tree-group")]
    assert "Đất đai" in groups


def test_named_layers_are_checked(server: str) -> None:
    url = f"{server}/api/qgis/project.qgz"
    assert httpx.get(url, params={"layers": "land_parcels"}).status_code == 401
    citizen = _basic("qgis_citizen")
    assert httpx.get(url, params={"layers": "land_parcels"}, headers=citizen).status_code == 403
    assert httpx.get(url, params={"layers": "no_such_layer"}).status_code == 404
    bad = httpx.get(url, params={"authcfg": "NOT VALID"})
    assert bad.status_code == 400
    only = httpx.get(url, params={"layers": "schools,hospitals"})
    assert set(_layers(_qgs(only.content))) == {"schools_oapif", "hospitals_oapif"}


def test_basic_and_api_key_headers_read_restricted_layers(server: str, seeded: Engine) -> None:
    items = f"{server}/ogc/collections/land_parcels/items"
    assert httpx.get(items, params={"limit": 1}).status_code == 401
    ok = httpx.get(items, params={"limit": 1}, headers=_basic("qgis_planner"))
    assert ok.status_code == 200 and len(ok.json()["features"]) == 1
    wrong = httpx.get(items, headers=_basic("qgis_planner", "not the password"))
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"].startswith("Basic ")
    assert wrong.json()["code"] == "invalid_credentials"

    token = httpx.post(
        f"{server}/api/auth/api-token",
        json={"username": "qgis_planner", "password": PASSWORD, "days": 30},
    )
    assert token.status_code == 200
    body = token.json()
    assert 29 * 86400 < body["expires_in"] <= 30 * 86400
    for header in (
        {"X-API-Key": body["token"]},
        {"X-Esri-Authorization": f"Bearer {body['token']}"},
        {"Authorization": f"Bearer {body['token']}"},
    ):
        assert httpx.get(items, params={"limit": 1}, headers=header).status_code == 200, header
    refused = httpx.post(
        f"{server}/api/auth/api-token", json={"username": "qgis_planner", "password": "nope"}
    )
    assert refused.status_code == 401


def test_basic_guessing_is_rate_limited_like_sign_in(server: str, seeded: Engine) -> None:
    with seeded.begin() as conn:
        try:
            users.get_user(conn, "qgis_guessed")
        except Exception:
            users.create_user(conn, "qgis_guessed", PASSWORD, "planner")
    reset_rate_limits(seeded)
    items = f"{server}/ogc/collections/land_parcels/items"
    statuses = [
        httpx.get(items, headers=_basic("qgis_guessed", f"guess {i}")).status_code for i in range(8)
    ]
    assert statuses[0] == 401 and statuses[-1] == 429, statuses
    throttled = httpx.get(items, headers=_basic("qgis_guessed", "guess again"))
    assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) >= 1
    # the right password is throttled too until the wait is over (the sign-in rule)
    assert httpx.get(items, headers=_basic("qgis_guessed")).status_code == 429
    reset_rate_limits(seeded)
    assert httpx.get(items, params={"limit": 1}, headers=_basic("qgis_guessed")).status_code == 200


ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "qgis"


def _around_a_parcel(server: str, headers: dict[str, str]) -> tuple[float, ...]:
    """A 2-km box around one parcel: close enough that its tiles keep the parcels (z15)."""
    doc = httpx.get(
        f"{server}/api/layers/land_parcels/features", params={"limit": 1}, headers=headers
    ).json()
    ring = doc["features"][0]["geometry"]["coordinates"][0]
    lon = sum(p[0] for p in ring) / len(ring)
    lat = sum(p[1] for p in ring) / len(ring)
    return (lon - 0.01, lat - 0.008, lon + 0.01, lat + 0.008)


def _run_qgis(
    tmp_path: Path,
    qgz: bytes,
    auth: dict[str, Any] | None,
    screenshots: str | None = None,
    tile_extent: tuple[float, ...] = VINH,
) -> dict[str, Any]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    project = tmp_path / "iocmap.qgz"
    project.write_bytes(qgz)
    auth_dir = tmp_path / "qgis-auth"
    auth_dir.mkdir()
    config = {
        "project": str(project),
        "auth_dir": str(auth_dir),
        "master_password": "qgis master password",
        "auth": auth,
        "tile_extent": tile_extent,
        "screenshots_dir": str(ARTIFACTS / screenshots) if screenshots else None,
    }
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "QT_QPA_PLATFORM": "offscreen",
        "XDG_RUNTIME_DIR": str(tmp_path),
        "LANG": "C.UTF-8",
    }
    done = subprocess.run(
        [SYSTEM_PYTHON, str(CHECK), str(config_path)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
    )
    lines = [json.loads(x) for x in done.stdout.splitlines() if x.startswith("{")]
    reports = [x for x in lines if "layers" in x]
    assert reports, (done.returncode, done.stderr[-3000:])
    report: dict[str, Any] = reports[0]
    # Screenshots are a by-product for the README: a crash while QGIS draws widgets on the
    # offscreen platform does not undo what was loaded and counted before it.
    shots = [x["screenshots"] for x in lines if "screenshots" in x]
    report["screenshots"] = shots[0] if shots else []
    if not screenshots:
        assert done.returncode == 0, done.stderr[-3000:]
    return report


def _assert_loaded(report: dict[str, Any], catalogue: dict[str, Any]) -> None:
    assert report["read"] is True
    for layer_id, entry in report["layers"].items():
        assert entry["valid"], (layer_id, entry)
        if entry["provider"] == "OAPIF":
            slug = layer_id.removesuffix("_oapif")
            assert entry["count"] == catalogue[slug]["feature_count"], (layer_id, entry)
        else:
            assert entry["provider"] == "vectortile"
    # The tiles are drawn around a parcel: the parcels must show there. Other dense layers
    # (made by other tests in the shared database) may have nothing in that box.
    parcels = report["layers"].get("land_parcels_vt")
    assert parcels is not None and parcels["pixels_drawn"] > 100, parcels


def test_headless_qgis_loads_every_layer_with_basic_auth(
    server: str, tmp_path: Path, recorder: RequestRecorder
) -> None:
    _require_qgis()
    planner = _basic("qgis_planner")
    qgz = httpx.get(
        f"{server}/api/qgis/project.qgz", params={"lang": "en"}, headers=planner, timeout=60
    ).content
    catalogue = _catalogue(server, planner)
    auth = {
        "id": "iocmap1",
        "method": "Basic",
        "values": {"username": "qgis_planner", "password": PASSWORD},
    }
    since = len(recorder.requests)
    box = _around_a_parcel(server, planner)
    report = _run_qgis(tmp_path, qgz, auth, screenshots="basic", tile_extent=box)
    assert report["crs"] == "EPSG:3857"
    ids = set(report["layers"])
    assert {"land_parcels_oapif", "land_parcels_vt", "hospitals_oapif"} <= ids
    assert "cameras_oapif" not in ids  # cameras are for operators, leaders and GIS staff
    _assert_loaded(report, catalogue)
    parcels = report["layers"]["land_parcels_oapif"]
    assert parcels["count"] == 3000 and parcels["group"] == "Land"
    hospitals = report["layers"]["hospitals_oapif"]
    assert hospitals["renderer"] == "categorizedSymbol" and hospitals["labels"] is True
    assert ["provincial_hospital", "Provincial hospital", "#b71c1c"] in hospitals["categories"]
    assert report["layers"]["land_parcels_vt"]["visible"] is True
    # QGIS read the 3,000 parcels in big pages, signed in, and drew their tiles signed in
    pages = recorder.items("land_parcels", since)
    assert pages and all(r["status"] == 200 for r in pages)
    assert len(pages) <= 3, [r["query"] for r in pages]
    tiles = [r for r in recorder.requests[since:] if r["path"].startswith("/tiles/land_parcels/")]
    assert tiles and {r["status"] for r in tiles} <= {200, 204}


def test_headless_qgis_with_an_api_token_and_without_auth(server: str, tmp_path: Path) -> None:
    _require_qgis()
    token = httpx.post(
        f"{server}/api/auth/api-token",
        json={"username": "qgis_planner", "password": PASSWORD},
    ).json()["token"]
    key = {"X-API-Key": token}
    qgz = httpx.get(
        f"{server}/api/qgis/project.qgz",
        params={"layers": "land_parcels,hospitals", "authcfg": "tok0001"},
        headers=key,
        timeout=60,
    ).content
    auth = {"id": "tok0001", "method": "EsriToken", "values": {"token": token}}
    box = _around_a_parcel(server, key)
    report = _run_qgis(tmp_path / "token", qgz, auth, screenshots="token", tile_extent=box)
    assert set(report["layers"]) == {"land_parcels_vt", "land_parcels_oapif", "hospitals_oapif"}
    _assert_loaded(report, _catalogue(server, key))

    # Without the auth config the restricted layers cannot load; the public one still does.
    bare = _run_qgis(tmp_path / "bare", qgz, None)
    assert bare["layers"]["hospitals_oapif"]["valid"] is True
    valid = {i for i, entry in bare["layers"].items() if entry["valid"]}
    assert valid == {"hospitals_oapif"}
