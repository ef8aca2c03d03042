"""GDAL as GIS staff run it: Debian's ogrinfo/ogr2ogr (GDAL 3.6) and pyogrio's newer GDAL.

A live server records every request it answers, so the tests see what GDAL really sent:
the OGCAPI driver building one layer per zoom level from our tilesets, the OAPIF page size
with and without `-oo PAGE_SIZE`, a `-where` on a date, and restricted layers read with HTTP
Basic credentials.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import httpx
import pyogrio
import pytest
from sqlalchemy import Engine

from geo_api.security import reset_rate_limits
from layers.auth import users
from layers.settings import Settings
from tests.conftest import RequestRecorder as Recorder
from tests.conftest import live_server_for

PASSWORD = "gdal test password"


@pytest.fixture(scope="module")
def recorder() -> Recorder:
    """The request recorder of the module's server."""
    return Recorder()


@pytest.fixture(scope="module")
def server(seeded: Engine, settings: Settings, recorder: Recorder) -> Iterator[str]:
    """A live, recording server with a planner account for the restricted parcels."""
    with seeded.begin() as conn:
        try:
            users.get_user(conn, "gdal_planner")
        except Exception:
            users.create_user(conn, "gdal_planner", PASSWORD, "planner")
    reset_rate_limits(seeded)
    with live_server_for(settings, recorder.wrap) as base:
        yield base


BASIC = ["--config", "GDAL_HTTP_AUTH", "BASIC", "--config", "GDAL_HTTP_USERPWD"]
PLANNER = [*BASIC, f"gdal_planner:{PASSWORD}"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=600, check=False)


def _geojson_count(*args: str) -> int:
    done = _run("ogr2ogr", "-f", "GeoJSON", "/vsistdout/", *args)
    assert done.returncode == 0, done.stderr[-2000:]
    return len(json.loads(done.stdout)["features"])


def test_ogrinfo_ogcapi_lists_the_tilesets(server: str, recorder: Recorder) -> None:
    """GDAL 3.6's OGCAPI driver picks the WorldCRS84Quad tileset and builds a layer per zoom."""
    done = _run("ogrinfo", "-ro", "-so", f"OGCAPI:{server}/ogc/collections/hospitals")
    assert done.returncode == 0, done.stderr[-2000:]
    layers = [line for line in done.stdout.splitlines() if "Zoom level" in line]
    assert any("Zoom level 0" in line for line in layers) and len(layers) >= 10, done.stdout
    tilesets = [r for r in recorder.requests if "/tiles/WorldCRS84Quad" in r["path"]]
    assert tilesets and all(r["status"] == 200 for r in tilesets)
    # every hospital comes back from the tiles of one zoom level, once
    assert _geojson_count(f"OGCAPI:{server}/ogc/collections/hospitals", "Zoom level 8") == 151


def test_ogcapi_landing_lists_the_collections(server: str) -> None:
    done = _run("gdalinfo", f"OGCAPI:{server}/ogc")
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"OGCAPI:{server}/ogc/collections/hospitals" in done.stdout
    assert "land_parcels" not in done.stdout  # restricted: not listed to anonymous callers


def test_restricted_tiles_through_gdal_with_basic_auth(server: str) -> None:
    url = f"OGCAPI:{server}/ogc/collections/land_parcels"
    refused = _run("ogrinfo", "-ro", "-so", url)
    assert refused.returncode != 0
    done = _run("ogrinfo", "-ro", "-so", url, *PLANNER)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Zoom level 14" in done.stdout
    assert _geojson_count(url, "Zoom level 12", *PLANNER) > 0


def test_gdal36_pages_with_page_size_option(server: str, recorder: Recorder) -> None:
    """Debian's GDAL pages 10 at a time unless told; -oo PAGE_SIZE=10000 reads in big pages."""
    since = len(recorder.requests)
    assert _geojson_count(f"OAPIF:{server}/ogc", "land_parcels", "-limit", "30", *PLANNER) == 30
    small = recorder.items("land_parcels", since)
    assert {r["query"]["limit"][0] for r in small} == {"10"} and len(small) >= 3

    since = len(recorder.requests)
    count = _geojson_count(
        f"OAPIF:{server}/ogc", "land_parcels", "-oo", "PAGE_SIZE=10000", *PLANNER
    )
    assert count == 3000
    pages = recorder.items("land_parcels", since)
    assert {r["query"]["limit"][0] for r in pages} == {"10000"}
    assert len(pages) <= 2 and all(r["status"] == 200 for r in pages)


def test_pyogrio_gdal_takes_large_pages_without_option(server: str, recorder: Recorder) -> None:
    """pyogrio's wheel GDAL (≥ 3.8) reads the `limit` maximum /ogc/api advertises."""
    since = len(recorder.requests)
    pyogrio.set_gdal_config_options(
        {"GDAL_HTTP_AUTH": "BASIC", "GDAL_HTTP_USERPWD": f"gdal_planner:{PASSWORD}"}
    )
    try:
        frame = pyogrio.read_dataframe(f"OAPIF:{server}/ogc", layer="land_parcels")
    finally:
        pyogrio.set_gdal_config_options({"GDAL_HTTP_AUTH": None, "GDAL_HTTP_USERPWD": None})
    assert len(frame) == 3000
    pages = recorder.items("land_parcels", since)
    limits = {int(r["query"]["limit"][0]) for r in pages if "limit" in r["query"]}
    assert limits and max(limits) >= 1000, limits  # (a small first page may fix the schema)
    assert len(pages) <= 4


def test_gdal_where_on_a_date_is_accepted(server: str, recorder: Recorder) -> None:
    """A -where on the time field becomes `datetime=2026-06-01T/..`, which the server takes."""
    since = len(recorder.requests)
    got = _geojson_count(
        f"OAPIF:{server}/ogc",
        "field_reports",
        "-where",
        "received_at >= '2026-06-01'",
        "-oo",
        "PAGE_SIZE=10000",
    )
    sent = recorder.items("field_reports", since)
    assert sent and all(r["status"] == 200 for r in sent)
    assert any(r["query"].get("datetime", [""])[0].startswith("2026-06-01") for r in sent), sent
    expected = httpx.get(
        f"{server}/ogc/collections/field_reports/items",
        params={"datetime": "2026-06-01T00:00:00Z/..", "limit": 1},
    ).json()["numberMatched"]
    assert got == expected
