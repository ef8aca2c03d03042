"""OGC API – Tiles and MapLibre styles, read by GDAL's OGCAPI driver and checked as documents."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import mapbox_vector_tile
import pytest
from sqlalchemy import Engine

from layers.settings import Settings
from tests.conftest import live_server_for


@pytest.fixture(scope="module")
def server(seeded: Engine, settings: Settings) -> Iterator[str]:
    """A live server on the seeded test database."""
    with live_server_for(settings) as base:
        yield base


def test_tiles_documents_chain_to_real_tiles(server: str) -> None:
    """Collection → tilesets → tileset → tile matrix set and item template → a real tile."""
    coll = httpx.get(f"{server}/ogc/collections/hospitals").json()
    rels = {link["rel"]: link["href"] for link in coll["links"]}
    tilesets = httpx.get(rels["http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"]).json()
    assert tilesets["tilesets"][0]["dataType"] == "vector"
    assert tilesets["tilesets"][0]["tileMatrixSetURI"].endswith("/WebMercatorQuad")
    link = next(
        x["href"]
        for x in tilesets["tilesets"][0]["links"]
        if x["rel"] == "http://www.opengis.net/def/rel/ogc/1.0/tileset"
    )
    tileset = httpx.get(link).json()
    tms = httpx.get(tileset["tileMatrixSetDefinition"]).json()
    assert tms["id"] == "WebMercatorQuad" and len(tms["tileMatrices"]) == 23
    item = next(x for x in tileset["links"] if x["rel"] == "item")
    assert item["type"] == "application/vnd.mapbox-vector-tile" and item["templated"]
    z12 = next(lim for lim in tileset["tileMatrixSetLimits"] if lim["tileMatrix"] == "12")
    # the tile holding Vinh's centre is inside the limits and holds hospitals
    col, row = 3250, 1831
    assert z12["minTileCol"] <= col <= z12["maxTileCol"]
    assert z12["minTileRow"] <= row <= z12["maxTileRow"]
    url = item["href"].format(tileMatrix=12, tileCol=col, tileRow=row)
    tile = httpx.get(url)
    assert tile.status_code == 200
    assert mapbox_vector_tile.decode(tile.content)["hospitals"]["features"]
    conf = httpx.get(f"{server}/ogc/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core" in conf


def test_restricted_tilesets_need_a_role(server: str) -> None:
    assert httpx.get(f"{server}/ogc/collections/land_parcels/tiles").status_code == 401
    assert httpx.get(f"{server}/styles/land_parcels.json").status_code == 401
    named = httpx.get(f"{server}/styles/map.json", params={"layers": "hospitals,land_parcels"})
    assert named.status_code == 401
    assert httpx.get(f"{server}/ogc/tileMatrixSets/NoSuchSet").status_code == 404


def test_maplibre_styles(server: str) -> None:
    """Per-layer and whole-map styles point at the TileJSONs and carry the catalogue colours."""
    style = httpx.get(f"{server}/styles/hospitals.json").json()
    assert style["version"] == 8
    assert style["sources"]["hospitals"]["url"].endswith("/tiles/hospitals.json")
    circle = next(layer for layer in style["layers"] if layer["type"] == "circle")
    assert circle["source-layer"] == "hospitals"
    colour = circle["paint"]["circle-color"]
    assert colour[0] == "match" and "health_station" in colour
    whole = httpx.get(f"{server}/styles/map.json").json()
    assert "admin_communes" in whole["sources"] and "land_parcels" not in whole["sources"]
    named = httpx.get(f"{server}/styles/map.json", params={"layers": "schools,hospitals"}).json()
    assert set(named["sources"]) == {"schools", "hospitals"}
    assert httpx.get(f"{server}/styles/map.json", params={"layers": "nope"}).status_code == 404


def test_crs84_tileset_for_gdal(server: str) -> None:
    """WorldCRS84Quad tiles (what GDAL 3.6's OGCAPI driver prefers) hold every feature once."""
    sets = httpx.get(f"{server}/ogc/collections/hospitals/tiles").json()["tilesets"]
    assert [t["tileMatrixSetURI"].rsplit("/", 1)[1] for t in sets] == [
        "WebMercatorQuad",
        "WorldCRS84Quad",
    ]
    tileset = httpx.get(f"{server}/ogc/collections/hospitals/tiles/WorldCRS84Quad").json()
    tms = httpx.get(tileset["tileMatrixSetDefinition"]).json()
    assert tms["supportedCRS"].endswith("/CRS84") and tms["identifier"] == "WorldCRS84Quad"
    assert tms["tileMatrices"][0]["matrixWidth"] == 2
    z0 = next(lim for lim in tileset["tileMatrixSetLimits"] if lim["tileMatrix"] == "0")
    assert (z0["minTileCol"], z0["minTileRow"], z0["maxTileCol"]) == (1, 0, 1)
    item = next(x for x in tileset["links"] if x["rel"] == "item")["href"]
    tile = httpx.get(item.format(tileMatrix=0, tileRow=0, tileCol=1))
    assert tile.status_code == 200
    features = mapbox_vector_tile.decode(tile.content)["hospitals"]["features"]
    assert len(features) == 151 and "name" in features[0]["properties"]
    base = f"{server}/ogc/collections/hospitals/tiles"
    assert httpx.get(f"{base}/WorldCRS84Quad/0/0/0").status_code == 204  # the western half
    assert httpx.get(f"{base}/WorldCRS84Quad/0/1/0").status_code == 400
    moved = httpx.get(f"{base}/WebMercatorQuad/12/1831/3250")
    assert moved.status_code == 307
    assert moved.headers["location"] == "/tiles/hospitals/12/3250/1831.mvt"
