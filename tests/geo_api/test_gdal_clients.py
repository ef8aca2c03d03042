"""GDAL as GIS staff run it: Debian's ogrinfo/ogr2ogr (GDAL 3.6) and pyogrio's newer GDAL.

A live server records every request it answers, so the tests see what GDAL really sent:
the OGCAPI driver building one layer per zoom level from our tilesets, the OAPIF page size
with and without `-oo PAGE_SIZE`, a `-where` on a date, and restricted layers read with HTTP
Basic credentials.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import httpx
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


def _libgdal_has_ogcapi_vector_tiles() -> bool:
    """Whether the system libgdal was built with the OGCAPI driver's vector-tile branch.

    GDAL 3.6 compiles it only under `#ifdef OGR_ENABLE_DRIVER_GML`, which its CMake leaves
    unset for frmts/ogcapi: Debian 12's libgdal.so.32 lacks the branch (and its "vectorType"
    string), so its OGCAPI driver opens no vector tileset from any server.
    """
    ldd = _run("ldd", "/usr/bin/ogrinfo").stdout
    lib = next(line.split("=>")[1].split()[0] for line in ldd.splitlines() if "libgdal" in line)
    with open(lib, "rb") as f:
        return b"vectorType" in f.read()


OGCAPI_LIST = """
import sys, pyogrio
pyogrio.set_gdal_config_options(dict(zip(sys.argv[3::2], sys.argv[4::2])))
names = [str(n) for n in pyogrio.list_layers(sys.argv[1])[:, 0]]
print(len(pyogrio.read_dataframe(sys.argv[1], layer=sys.argv[2])), *names, sep="|")
"""


def _ogcapi_layers(url: str, zoom_layer: str, **config: str) -> tuple[int, list[str]]:
    """(features of one zoom level, layer names) through pyogrio's GDAL, in its own process."""
    args = [x for kv in config.items() for x in kv]
    done = subprocess.run(
        [sys.executable, "-c", OGCAPI_LIST, url, zoom_layer, *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    count, *names = done.stdout.strip().splitlines()[-1].split("|")
    return int(count), names


def test_ogcapi_tilesets_list_as_zoom_levels(server: str, recorder: Recorder) -> None:
    """GDAL's OGCAPI driver picks the WorldCRS84Quad tileset and builds a layer per zoom."""
    url = f"OGCAPI:{server}/ogc/collections/hospitals"
    since = len(recorder.requests)
    done = _run("ogrinfo", "-ro", "-so", url)
    fetched = {r["path"]: r["status"] for r in recorder.requests[since:]}
    # Debian's GDAL 3.6 reads the whole chain of documents without an error...
    for path in (
        "/ogc/collections/hospitals/tiles",
        "/ogc/collections/hospitals/tiles/WorldCRS84Quad",
        "/ogc/tileMatrixSets/WorldCRS84Quad",
    ):
        assert fetched.get(path) == 200, (path, fetched)
    if _libgdal_has_ogcapi_vector_tiles():
        assert done.returncode == 0 and "Zoom level 0" in done.stdout, done.stdout
    else:
        # ...but its build has no vector-tile layers to make (see above)
        assert done.returncode != 0
    # the collection's features through the same driver (API=ITEMS), as Debian's GDAL can
    items = _run("ogrinfo", "-ro", "-so", url, "-oo", "API=ITEMS")
    assert items.returncode == 0 and "1: hospitals" in items.stdout, items.stdout
    # a GDAL with the branch (pyogrio's, 3.12) lists the zoom levels and reads the tiles:
    # every hospital comes back from the tiles of one zoom level, once
    count, names = _ogcapi_layers(url, "Zoom level 8")
    assert names[0] == "Zoom level 0" and "Zoom level 18" in names
    assert count == 151


def test_ogcapi_landing_lists_the_collections(server: str) -> None:
    done = _run("gdalinfo", f"OGCAPI:{server}/ogc")
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"OGCAPI:{server}/ogc/collections/hospitals" in done.stdout
    assert "land_parcels" not in done.stdout  # restricted: not listed to anonymous callers


def test_restricted_tiles_through_gdal_with_basic_auth(server: str) -> None:
    url = f"OGCAPI:{server}/ogc/collections/land_parcels"
    refused = _run("ogrinfo", "-ro", "-so", url, "-oo", "API=ITEMS")
    assert refused.returncode != 0
    done = _run("ogrinfo", "-ro", "-so", url, "-oo", "API=ITEMS", *PLANNER)
    assert done.returncode == 0 and "1: land_parcels" in done.stdout, done.stderr[-2000:]
    count, names = _ogcapi_layers(
        url, "Zoom level 15", GDAL_HTTP_AUTH="BASIC", GDAL_HTTP_USERPWD=f"gdal_planner:{PASSWORD}"
    )
    assert "Zoom level 14" in names and count >= 3000  # parcels across tile edges repeat


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


PYOGRIO_READ = """
import sys, pyogrio
pyogrio.set_gdal_config_options(dict(zip(sys.argv[3::2], sys.argv[4::2])))
print(len(pyogrio.read_dataframe(sys.argv[1], layer=sys.argv[2])))
"""


def _pyogrio_count(url: str, layer: str, **config: str) -> int:
    """Features pyogrio reads, in a process of its own: its GDAL holds the GIL while it waits
    on HTTP, which would starve this process's server thread."""
    args = [x for kv in config.items() for x in kv]
    done = subprocess.run(
        [sys.executable, "-c", PYOGRIO_READ, url, layer, *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return int(done.stdout.strip().splitlines()[-1])


def test_pyogrio_gdal_takes_large_pages_without_option(server: str, recorder: Recorder) -> None:
    """pyogrio's wheel GDAL (≥ 3.8) reads the `limit` maximum /ogc/api advertises."""
    since = len(recorder.requests)
    count = _pyogrio_count(
        f"OAPIF:{server}/ogc",
        "land_parcels",
        GDAL_HTTP_AUTH="BASIC",
        GDAL_HTTP_USERPWD=f"gdal_planner:{PASSWORD}",
    )
    assert count == 3000
    pages = recorder.items("land_parcels", since)
    limits = {int(r["query"]["limit"][0]) for r in pages if "limit" in r["query"]}
    assert limits and max(limits) >= 1000, limits  # (a small first page may fix the schema)
    assert len(pages) <= 4


def test_gdal_with_a_personal_api_token(server: str) -> None:
    """A personal API token reads a restricted layer through both GDALs."""
    token = httpx.post(
        f"{server}/api/auth/api-token",
        json={"username": "gdal_planner", "password": PASSWORD},
    ).json()["token"]
    # GDAL >= 3.9 (pyogrio's) sends it as a bearer token; its OAPIF driver drops
    # GDAL_HTTP_HEADERS, which Debian's GDAL 3.6 sends (X-API-Key)
    bearer = {"GDAL_HTTP_AUTH": "BEARER", "GDAL_HTTP_BEARER": token}
    assert _pyogrio_count(f"OAPIF:{server}/ogc", "land_parcels", **bearer) == 3000
    header = ["--config", "GDAL_HTTP_HEADERS", f"X-API-Key: {token}"]
    done = _run("ogrinfo", "-ro", "-so", f"OAPIF:{server}/ogc", "land_parcels", *header)
    assert done.returncode == 0 and "Feature Count: 3000" in done.stdout, done.stderr[-2000:]


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
