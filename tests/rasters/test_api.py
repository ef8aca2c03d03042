"""Raster tiles, TileJSON, point values, profiles, zonal statistics and flood exposure (API)."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from pyproj import Geod
from shapely.geometry import Point, Polygon, mapping
from sqlalchemy import Engine

from ingest.raster import RasterReport
from layers.features.bulk import FeatureRow, upsert_features
from layers.features.registry import LayerSpec, create_or_update_layer
from layers.rasters.colormaps import decode_terrain_rgb
from tests.rasters.conftest import LAT0, LON0, lonlat_tif


def lonlat_to_tile(lon: float, lat: float, z: int) -> tuple[int, int, float, float]:
    """Tile x, y and the pixel position (0..256) of a point inside it."""
    import math

    n = 2**z
    fx = (lon + 180) / 360 * n
    lr = math.radians(lat)
    fy = (1 - math.log(math.tan(lr) + 1 / math.cos(lr)) / math.pi) / 2 * n
    return int(fx), int(fy), (fx % 1) * 256, (fy % 1) * 256


def polygon_layer(
    engine: Engine, slug: str, polys: dict[str, Polygon], sensitive: bool = False
) -> None:
    with engine.begin() as conn:
        lid = create_or_update_layer(
            conn,
            LayerSpec(
                slug=slug,
                title_vi=slug,
                title_en=slug,
                sector="admin" if slug.startswith("t_units") else "other",
                geometry_type="Polygon",
                sensitive=sensitive,
            ),
        )
        rows = [
            FeatureRow(
                code, g, {"code": code, "name": f"Xã {code}", "population": 1000, "area_km2": None}
            )
            for code, g in polys.items()
        ]
        upsert_features(conn, lid, rows, delete_missing=True)


def point_layer(
    engine: Engine, slug: str, points: dict[str, tuple[float, float]], sensitive: bool = False
) -> None:
    with engine.begin() as conn:
        lid = create_or_update_layer(
            conn,
            LayerSpec(
                slug=slug,
                title_vi=slug,
                title_en=slug,
                sector="health",
                geometry_type="Point",
                sensitive=sensitive,
            ),
        )
        rows = [FeatureRow(k, Point(*xy), {"name": k}) for k, xy in points.items()]
        upsert_features(conn, lid, rows, delete_missing=True)


def test_tiles_colour_the_raster_and_leave_nodata_transparent(
    tmp_path: Path, client: TestClient, do_import: Callable[..., RasterReport]
) -> None:
    data = np.full((50, 50), 100.0, np.float32)
    data[:, :25] = -9999.0  # west half nodata
    do_import(lonlat_tif(tmp_path / "half.tif", data, nodata=-9999.0), "t_half", role="generic")
    z = 14
    tx, ty, px, py = lonlat_to_tile(LON0 + 0.0375, LAT0 - 0.025, z)
    r = client.get(f"/tiles/t_half/{z}/{tx}/{ty}.png?colormap=gray&rescale=0,100")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    img = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGBA"))
    assert tuple(img[int(py), int(px)]) == (255, 255, 255, 255)  # 100 at the top of 0..100
    tx2, ty2, px2, py2 = lonlat_to_tile(LON0 + 0.0125, LAT0 - 0.025, z)
    r2 = client.get(f"/tiles/t_half/{z}/{tx2}/{ty2}.png?colormap=gray&rescale=0,100")
    if r2.status_code == 200:
        img2 = np.asarray(Image.open(io.BytesIO(r2.content)).convert("RGBA"))
        assert img2[int(py2), int(px2)][3] == 0  # nodata: transparent
    else:
        assert r2.status_code == 204
    # Outside the raster: empty tile. Bad parameters: a clear 400.
    assert client.get("/tiles/t_half/14/0/0.png").status_code == 204
    bad = client.get(f"/tiles/t_half/{z}/{tx}/{ty}.png?colormap=rainbowish")
    assert bad.status_code == 400 and "colormap" in bad.json()["detail"]
    assert client.get(f"/tiles/t_half/{z}/{tx}/{ty}.png?rescale=5").status_code == 400
    # Cached and revalidated like vector tiles; a re-import changes the ETag.
    etag = r.headers["etag"]
    again = client.get(
        f"/tiles/t_half/{z}/{tx}/{ty}.png?colormap=gray&rescale=0,100",
        headers={"If-None-Match": etag},
    )
    assert again.status_code == 304
    do_import(lonlat_tif(tmp_path / "half2.tif", data * 0 + 50, nodata=-9999.0), "t_half")
    new = client.get(f"/tiles/t_half/{z}/{tx}/{ty}.png?colormap=gray&rescale=0,100")
    assert new.headers["etag"] != etag
    img3 = np.asarray(Image.open(io.BytesIO(new.content)).convert("RGBA"))
    assert 120 <= img3[int(py), int(px)][0] <= 135  # 50 of 0..100


def test_tilejson_and_terrain_rgb(
    tmp_path: Path, client: TestClient, do_import: Callable[..., RasterReport]
) -> None:
    dem = np.full((40, 40), 1234.5, np.float32)
    do_import(lonlat_tif(tmp_path / "dem_small.tif", dem), "t_dem_small", role="elevation")
    tj = client.get("/tiles/t_dem_small.json").json()
    assert tj["kind"] == "raster" and tj["tiles"][0].endswith("rescale=0,1234.5")
    assert tj["raster"]["role"] == "elevation" and tj["raster"]["legend"]
    assert "/tiles/t_dem_small/terrain/" in tj["terrain"]["tiles"][0]
    z = 13
    tx, ty, px, py = lonlat_to_tile(LON0 + 0.02, LAT0 - 0.02, z)
    r = client.get(f"/tiles/t_dem_small/terrain/{z}/{tx}/{ty}.png")
    assert r.status_code == 200
    img = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGBA"))
    assert decode_terrain_rgb(img[int(py), int(px)]) == pytest.approx(1234.5, abs=0.05)
    # Terrain tiles of a non-elevation raster: a clear 400.
    do_import(lonlat_tif(tmp_path / "other.tif", dem), "t_not_dem", role="generic")
    assert client.get(f"/tiles/t_not_dem/terrain/{z}/{tx}/{ty}.png").status_code == 400
    listing = client.get("/api/rasters").json()
    assert {"t_dem_small", "t_not_dem"} <= {x["slug"] for x in listing}


def test_point_and_profile(
    tmp_path: Path, client: TestClient, do_import: Callable[..., RasterReport]
) -> None:
    cols = np.tile(np.arange(100, dtype=np.float32), (20, 1))  # value = column index
    do_import(lonlat_tif(tmp_path / "ramp.tif", cols), "t_ramp", role="elevation")
    r = client.get("/api/rasters/t_ramp/point", params={"lon": LON0 + 0.0405, "lat": LAT0 - 0.005})
    assert r.json()["values"] == [40.0]
    line = {
        "type": "LineString",
        "coordinates": [[LON0 + 0.0005, LAT0 - 0.01], [LON0 + 0.0995, LAT0 - 0.01]],
    }
    p = client.post("/api/rasters/t_ramp/profile", json={"line": line, "samples": 11}).json()
    vals = [pt["value"] for pt in p["points"]]
    assert vals[0] == 0 and vals[-1] == 99 and vals == sorted(vals)
    assert p["length_m"] == pytest.approx(
        Geod(ellps="WGS84").inv(*line["coordinates"][0], *line["coordinates"][1])[2], rel=1e-6
    )
    bad = client.post(
        "/api/rasters/t_ramp/profile", json={"line": {"type": "Point", "coordinates": [1, 2]}}
    )
    assert bad.status_code == 400


def test_zonal_constant_raster_gives_its_mean_and_the_exact_area(
    tmp_path: Path, client: TestClient, engine: Engine, do_import: Callable[..., RasterReport]
) -> None:
    data = np.full((100, 100), 7.0, np.float32)
    data[0:10, 0:10] = -1  # nodata in a corner, outside the polygons
    do_import(lonlat_tif(tmp_path / "const.tif", data, nodata=-1), "t_const")
    # Polygons cutting pixels anywhere (not on the 0.001° grid).
    a = Polygon(
        [
            (LON0 + 0.01234, LAT0 - 0.01234),
            (LON0 + 0.04567, LAT0 - 0.01501),
            (LON0 + 0.03999, LAT0 - 0.05432),
            (LON0 + 0.01503, LAT0 - 0.04999),
        ]
    )
    b = Polygon(
        [
            (LON0 + 0.06, LAT0 - 0.06),
            (LON0 + 0.0871, LAT0 - 0.06),
            (LON0 + 0.0871, LAT0 - 0.0833),
            (LON0 + 0.06, LAT0 - 0.0833),
        ]
    )
    polygon_layer(engine, "t_units_z", {"A": a, "B": b})
    body = {
        "raster": "t_const",
        "units": "t_units_z",
        "stats": [
            "mean",
            "min",
            "max",
            "sum",
            "count",
            "area_km2",
            {"area_km2_above": 5},
            {"area_km2_above": 8},
        ],
    }
    rows = {
        f["properties"]["code"]: f["properties"]
        for f in client.post("/api/query/zonal", json=body).json()["features"]
    }
    geod = Geod(ellps="WGS84")
    for code, poly in (("A", a), ("B", b)):
        area_km2 = abs(geod.geometry_area_perimeter(poly)[0]) / 1e6
        row = rows[code]
        assert row["name"] == f"Xã {code}"
        assert row["mean"] == pytest.approx(7.0) and row["min"] == 7 and row["max"] == 7
        assert row["area_km2"] == pytest.approx(area_km2, rel=2e-3)
        assert row["area_km2_above_5"] == pytest.approx(area_km2, rel=2e-3)
        assert row["area_km2_above_8"] == 0
        assert row["sum"] == pytest.approx(7.0 * row["count"], rel=1e-6)
    # A drawn polygon, and the exports.
    one = client.post("/api/query/zonal", json={**body, "units": mapping(b)}).json()["features"]
    assert one[0]["properties"]["area_km2"] == pytest.approx(rows["B"]["area_km2"], rel=1e-9)
    csv = client.post("/api/query/zonal?format=csv", json=body)
    assert csv.status_code == 200 and "area_km2_above_5" in csv.text.splitlines()[0]
    gpkg = client.post("/api/query/zonal?format=gpkg", json=body)
    path = tmp_path / "z.gpkg"
    path.write_bytes(gpkg.content)
    assert len(pyogrio.read_dataframe(path)) == 2
    bad = client.post("/api/query/zonal", json={**body, "stats": ["median"]})
    assert bad.status_code in (400, 422) and "median" in bad.text


def test_zonal_leaves_nodata_out(
    tmp_path: Path, client: TestClient, engine: Engine, do_import: Callable[..., RasterReport]
) -> None:
    data = np.full((20, 20), 10.0, np.float32)
    data[:, 10:] = -1
    data[:, :5] = 20.0
    do_import(lonlat_tif(tmp_path / "nd.tif", data, nodata=-1), "t_nd")
    whole = Polygon(
        [(LON0, LAT0), (LON0 + 0.02, LAT0), (LON0 + 0.02, LAT0 - 0.02), (LON0, LAT0 - 0.02)]
    )
    r = client.post(
        "/api/query/zonal",
        json={"raster": "t_nd", "units": mapping(whole), "stats": ["mean", "area_km2", "min"]},
    )
    row = r.json()["features"][0]["properties"]
    half = abs(Geod(ellps="WGS84").geometry_area_perimeter(whole)[0]) / 2e6
    assert row["mean"] == pytest.approx(15.0) and row["min"] == 10
    # The nodata half is left out; the edge between them may move by half a pixel when the
    # raster is warped to the stored grid (0.0005° x 0.02° = 0.12 km²).
    assert row["area_km2"] == pytest.approx(half, abs=0.12)


def _dem_with_hollow(tmp_path: Path) -> tuple[Path, dict[str, tuple[float, float]]]:
    """A 100x100 DEM (0.001°): a river channel (row 50) at 1 m, a plain at 3 m connected to it,
    a ridge at 50 m cutting off a hollow at 0.5 m in the north-east corner, and a hill."""
    dem = np.full((100, 100), 3.0, np.float32)
    dem[48:53, :] = 1.0  # river channel
    dem[:40, 60:] = 50.0  # ridge ring...
    dem[5:35, 65:95] = 0.5  # ...around a hollow lower than the river
    dem[60:80, 10:30] = 40.0  # a hill in the plain
    px = lambda r, c: (LON0 + (c + 0.5) * 0.001, LAT0 - (r + 0.5) * 0.001)  # noqa: E731
    places = {"wet": px(70, 50), "hill": px(70, 20), "hollow": px(20, 80)}
    return lonlat_tif(tmp_path / "dem_hollow.tif", dem), places


def test_flood_from_level_leaves_a_disconnected_hollow_dry_and_finds_the_hospital(
    tmp_path: Path,
    client: TestClient,
    engine: Engine,
    do_import: Callable[..., RasterReport],
    auth_headers: Callable[..., dict[str, str]],
) -> None:
    path, places = _dem_with_hollow(tmp_path)
    do_import(path, "t_dem_hollow", role="elevation")
    box = Polygon([(LON0, LAT0), (LON0 + 0.1, LAT0), (LON0 + 0.1, LAT0 - 0.1), (LON0, LAT0 - 0.1)])
    polygon_layer(engine, "t_units_f", {"C1": box})
    point_layer(
        engine,
        "t_hospitals",
        {"in water": places["wet"], "on hill": places["hill"], "in hollow": places["hollow"]},
    )
    river = {
        "type": "LineString",
        "coordinates": [[LON0 + 0.001, LAT0 - 0.0505], [LON0 + 0.099, LAT0 - 0.0505]],
    }
    body = {
        "dem": "t_dem_hollow",
        "level_m": 4.0,
        "seed": river,
        "units": "t_units_f",
        "layers": ["t_hospitals"],
    }
    r = client.post("/api/query/flood-exposure", json=body, headers=auth_headers("operator"))
    assert r.status_code == 200, r.text
    out = r.json()
    hits = {h["name"]: h["depth_m"] for h in out["exposed"]["t_hospitals"]}
    assert hits == {"in water": pytest.approx(1.0, abs=1e-3)}  # not the hill, not the hollow
    (c1,) = out["communes"]
    # Flooded: everything but the ridge block (40x40), the hill (20x20) and the hollow inside.
    geod = Geod(ellps="WGS84")
    total = abs(geod.geometry_area_perimeter(box)[0]) / 1e6
    expect = total * (10000 - 40 * 40 - 20 * 20) / 10000
    assert c1["flooded_km2"] == pytest.approx(expect, rel=0.01)
    assert c1["people_exposed"] == pytest.approx(1000 * c1["share"], abs=1)
    assert out["written_layer"] == "flood_extent"
    # Below the plain, only the channel floods; above the ridge the hollow joins.
    low = client.post(
        "/api/query/flood-exposure", json={**body, "level_m": 2.0, "write_layer": None}
    ).json()
    assert "t_hospitals" not in low["exposed"]
    high = client.post(
        "/api/query/flood-exposure", json={**body, "level_m": 60.0, "write_layer": None}
    ).json()
    assert {h["name"] for h in high["exposed"]["t_hospitals"]} == {
        "in water",
        "on hill",
        "in hollow",
    }
    # A depth raster works the same way.
    depth = np.zeros((100, 100), np.float32)
    depth[60:80, 40:60] = 2.5
    do_import(lonlat_tif(tmp_path / "depth.tif", depth), "t_depth", role="flood_depth")
    d = client.post(
        "/api/query/flood-exposure",
        json={
            "depth": "t_depth",
            "units": "t_units_f",
            "layers": ["t_hospitals"],
            "write_layer": None,
        },
    ).json()
    assert [h["name"] for h in d["exposed"]["t_hospitals"]] == ["in water"]
    assert d["exposed"]["t_hospitals"][0]["depth_m"] == pytest.approx(2.5)


def test_access_check_sees_every_named_slug(
    tmp_path: Path,
    client: TestClient,
    engine: Engine,
    do_import: Callable[..., RasterReport],
    auth_headers: Callable[..., dict[str, str]],
) -> None:
    data = np.full((20, 20), 1.0, np.float32)
    do_import(lonlat_tif(tmp_path / "open.tif", data), "t_open", role="elevation")
    do_import(
        lonlat_tif(tmp_path / "secret.tif", data), "t_secret", role="elevation", sensitive=True
    )
    sq = Polygon(
        [(LON0, LAT0), (LON0 + 0.01, LAT0), (LON0 + 0.01, LAT0 - 0.01), (LON0, LAT0 - 0.01)]
    )
    polygon_layer(engine, "t_units_open", {"U": sq})
    polygon_layer(engine, "t_secret_units", {"U": sq}, sensitive=True)
    point_layer(engine, "t_secret_points", {"p": (LON0 + 0.005, LAT0 - 0.005)}, sensitive=True)
    seed = {"type": "Point", "coordinates": [LON0 + 0.005, LAT0 - 0.005]}
    refused = [
        ("/api/query/zonal", {"raster": "t_secret", "units": "t_units_open"}),
        ("/api/query/zonal", {"raster": "t_open", "units": "t_secret_units"}),
        ("/api/query/flood-exposure", {"depth": "t_secret", "units": "t_units_open"}),
        (
            "/api/query/flood-exposure",
            {"dem": "t_secret", "level_m": 5, "seed": seed, "units": "t_units_open"},
        ),
        ("/api/query/flood-exposure", {"depth": "t_open", "units": "t_secret_units"}),
        (
            "/api/query/flood-exposure",
            {"depth": "t_open", "units": "t_units_open", "layers": ["t_secret_points"]},
        ),
    ]
    for url, body in refused:
        r = client.post(url, json=body)
        assert r.status_code in (401, 403), (url, body, r.status_code)
    for path in (
        "/api/rasters/t_secret",
        "/api/rasters/t_secret/point?lon=105.3&lat=18.9",
        "/tiles/t_secret.json",
        "/tiles/t_secret/14/0/0.png",
        "/tiles/t_secret/terrain/14/0/0.png",
    ):
        assert client.get(path).status_code == 401, path
    assert "t_secret" not in {x["slug"] for x in client.get("/api/rasters").json()}
    # Allowed: ordinary layers anonymously, restricted ones with a role that may read them.
    assert (
        client.post(
            "/api/query/zonal", json={"raster": "t_open", "units": "t_units_open"}
        ).status_code
        == 200
    )
    ok = client.post(
        "/api/query/zonal",
        json={"raster": "t_secret", "units": "t_secret_units"},
        headers=auth_headers("planner"),
    )
    assert ok.status_code == 200
    # Without naming it, an anonymous exposure leaves restricted layers out and says so.
    anon = client.post(
        "/api/query/flood-exposure",
        json={"depth": "t_open", "units": "t_units_open", "write_layer": None},
    ).json()
    assert "t_secret_points" in anon["withheld_layers"] and "t_secret_points" not in anon["exposed"]
    assert anon["written_layer"] is None
    seen = client.post(
        "/api/query/flood-exposure",
        json={"depth": "t_open", "units": "t_units_open", "write_layer": None},
        headers=auth_headers("operator"),
    ).json()
    assert seen["exposed"]["t_secret_points"][0]["depth_m"] == pytest.approx(1.0)
    # The request models name the same slugs for the redesigned check.
    from geo_api.routers.rasters import FloodBody, ZonalBody

    assert ZonalBody(raster="a_r", units="b_u").layer_slugs() == ["a_r", "b_u"]
    assert set(
        FloodBody(dem="d_m", level_m=1, seed=seed, units="u_u", layers=["l_l"]).layer_slugs()
    ) == {"d_m", "u_u", "l_l"}
    assert json.loads(json.dumps(anon["extent"]))["type"] == "Feature"


def test_import_form_takes_a_geotiff(
    tmp_path: Path, client: TestClient, auth_headers: Callable[..., dict[str, str]]
) -> None:
    import time

    src = lonlat_tif(tmp_path / "upload.tif", np.full((10, 10), 3.0, np.float32))
    headers = auth_headers("gis_staff")
    dry = client.post(
        "/api/imports",
        data={"layer": "t_uploaded", "dry_run": "true"},
        files={"file": ("upload.tif", src.read_bytes(), "image/tiff")},
        headers=headers,
    )
    assert dry.status_code == 200 and dry.json()["kind"] == "raster" and dry.json()["dry_run"]
    as_people = client.post(
        "/api/imports",
        data={"layer": "t_uploaded", "dry_run": "true", "raster_role": "population"},
        files={"file": ("upload.tif", src.read_bytes(), "image/tiff")},
        headers=headers,
    )
    assert as_people.status_code == 200 and as_people.json()["raster"]["role"] == "population"
    assert client.post(
        "/api/imports",
        data={"layer": "t_uploaded", "dry_run": "true", "raster_role": "people"},
        files={"file": ("upload.tif", src.read_bytes(), "image/tiff")},
        headers=headers,
    ).status_code in (400, 422)
    r = client.post(
        "/api/imports",
        data={"layer": "t_uploaded"},
        files={"file": ("upload.tif", src.read_bytes(), "image/tiff")},
        headers=headers,
    )
    assert r.status_code == 202, r.text
    for _ in range(100):
        job = client.get(r.json()["href"], headers=headers).json()
        if job["status"] != "running":
            break
        time.sleep(0.1)
    assert job["status"] == "succeeded" and job["layer"] == "t_uploaded"
    assert client.get("/api/rasters/t_uploaded").json()["bands"] == 1
    bad = client.post(
        "/api/imports",
        data={"layer": "t_uploaded"},
        files={"file": ("broken.tif", b"II*\x00 not really", "image/tiff")},
        headers=headers,
    )
    for _ in range(100):
        job = client.get(bad.json()["href"], headers=headers).json()
        if job["status"] != "running":
            break
        time.sleep(0.1)
    assert job["status"] == "failed" and "broken.tif" in job["errors"][0]["error"]
    # The layer is as it was.
    assert client.get("/api/rasters/t_uploaded").json()["statistics"][0]["mean"] == 3.0


@pytest.mark.parametrize("terrain", [False, True], ids=["colormap", "terrain"])
def test_warm_raster_tiles_are_answered_before_routing_as_the_cold_ones(
    tmp_path: Path,
    client: TestClient,
    do_import: Callable[..., RasterReport],
    monkeypatch: pytest.MonkeyPatch,
    terrain: bool,
) -> None:
    from geo_api.routers import tiles as tiles_router

    slug = f"t_warm_{int(terrain)}"
    dem = np.full((40, 40), 321.0, np.float32)
    do_import(lonlat_tif(tmp_path / f"{slug}.tif", dem), slug, role="elevation")
    answered: list[bool] = []
    real = tiles_router._warm_hit

    def spy(scope: dict[str, object]) -> object:
        hit = real(scope)
        answered.append(hit is not None)
        return hit

    monkeypatch.setattr(tiles_router, "_warm_hit", spy)
    z = 13
    tx, ty, _, _ = lonlat_to_tile(LON0 + 0.02, LAT0 - 0.02, z)
    url = (
        f"/tiles/{slug}/terrain/{z}/{tx}/{ty}.png"
        if terrain
        else f"/tiles/{slug}/{z}/{tx}/{ty}.png?colormap=gray&rescale=0,400"
    )
    cold = client.get(url)
    warm = client.get(url)
    assert answered == [False, True]
    assert cold.status_code == warm.status_code == 200
    assert cold.content == warm.content
    keys = ("etag", "cache-control", "content-type", "content-length", "x-content-type-options")
    assert {k: cold.headers.get(k) for k in keys} == {k: warm.headers.get(k) for k in keys}
    assert client.get(url, headers={"If-None-Match": cold.headers["etag"]}).status_code == 304
    assert answered[-1]
    # Another colormap is another tile; a bad one still gets the router's clear 400.
    if not terrain:
        other = client.get(url.replace("gray", "terrain"))
        assert other.status_code == 200 and other.headers["etag"] != cold.headers["etag"]
        assert client.get(url.replace("gray", "nope")).status_code == 400
    # A re-import is a new version: the warm path no longer answers the old tile.
    do_import(lonlat_tif(tmp_path / f"{slug}b.tif", dem + 100), slug, role="elevation")
    for _ in range(100):
        new = client.get(url)
        if new.headers["etag"] != cold.headers["etag"]:
            break
        time.sleep(0.05)
    assert new.headers["etag"] != cold.headers["etag"]
    assert new.content != cold.content


def test_people_exposed_come_from_a_population_raster_when_one_is_loaded(
    tmp_path: Path, client: TestClient, engine: Engine, do_import: Callable[..., RasterReport]
) -> None:
    from rasterio.transform import from_origin

    from layers.features.registry import delete_layer
    from layers.rasters.read import to_mercator
    from tests.rasters.conftest import write_tif

    # Both rasters in EPSG:3857 (stored as they are): a 100 m depth grid and a 200 m
    # population grid of 8 people per pixel, aligned, so the expected count is exact.
    corner = to_mercator(Point(LON0, LAT0))
    x0, y0 = round(corner.x / 200) * 200, round(corner.y / 200) * 200
    depth = np.zeros((60, 60), np.float32)
    depth[20:30, 20:40] = 1.5  # 200 cells of 100 m under water
    do_import(
        write_tif(tmp_path / "pd.tif", depth, from_origin(x0, y0, 100, 100), "EPSG:3857"),
        "t_pop_depth",
        role="flood_depth",
    )
    units = Polygon(
        [(LON0 - 0.01, LAT0 + 0.01), (LON0 + 0.07, LAT0 + 0.01), (LON0 + 0.07, LAT0 - 0.07),
         (LON0 - 0.01, LAT0 - 0.07)]
    )  # fmt: skip
    polygon_layer(engine, "t_units_pop", {"P1": units})
    body = {"depth": "t_pop_depth", "units": "t_units_pop", "layers": [], "write_layer": None}
    # No population raster yet: commune population x flooded share.
    before = client.post("/api/query/flood-exposure", json=body).json()
    (c,) = before["communes"]
    assert c["people_method"] == "area_share" and before["population_raster"] is None
    assert c["people_exposed"] == pytest.approx(1000 * c["share"], abs=1)
    people = np.full((30, 30), 8.0, np.float32)
    do_import(
        write_tif(tmp_path / "pp.tif", people, from_origin(x0, y0, 200, 200), "EPSG:3857"),
        "t_pop_people",
        role="population",
    )
    try:
        after = client.post("/api/query/flood-exposure", json=body).json()
        assert after["population_raster"] == "t_pop_people"
        (c,) = after["communes"]
        # 200 cells of 100 m = 50 population pixels of 200 m, 8 people each.
        assert c["people_exposed"] == 400 and c["people_method"] == "population_raster"
        assert after["totals"]["people_exposed"] == pytest.approx(400.0)
        named = client.post(
            "/api/query/flood-exposure", json={**body, "population": "t_pop_people"}
        )
        assert named.json()["communes"][0]["people_exposed"] == 400
        # A population raster covering only the western half of the water: the rest of it
        # counts by the commune's share.
        west = np.full((30, 15), 8.0, np.float32)
        do_import(
            write_tif(tmp_path / "pw.tif", west, from_origin(x0, y0, 200, 200), "EPSG:3857"),
            "t_pop_people",
            role="population",
        )
        half = client.post("/api/query/flood-exposure", json=body).json()["communes"][0]
        assert half["people_method"] == "population_raster+area_share"
        # 100 cells in the raster (200 people) plus 1000 x the share of the other 100 cells.
        assert half["people_exposed"] == pytest.approx(200 + 1000 * c["share"] / 2, abs=1)
        bad = client.post("/api/query/flood-exposure", json={**body, "population": "t_pop_depth"})
        assert bad.status_code == 400 and "population" in bad.json()["detail"]
    finally:
        with engine.begin() as conn:
            delete_layer(conn, "t_pop_people")


def test_a_warped_population_raster_keeps_its_people(
    tmp_path: Path, engine: Engine, settings: Any, do_import: Callable[..., RasterReport]
) -> None:
    import rasterio

    from layers.features.registry import delete_layer
    from layers.rasters.store import get_raster

    people = np.full((50, 60), 2.0, np.float32)  # 6,000 people in lon/lat pixels
    do_import(lonlat_tif(tmp_path / "pop_ll.tif", people, nodata=-1), "t_pop_ll", role="population")
    try:
        with engine.connect() as conn:
            r = get_raster(conn, "t_pop_ll")
        with rasterio.open(r.file(settings)) as ds:
            got = ds.read(1, masked=True)
        # Nearest resampling would count each person once per WebMercator pixel it landed in.
        assert float(got.sum()) == pytest.approx(6000.0, rel=0.01)
    finally:
        with engine.begin() as conn:
            delete_layer(conn, "t_pop_ll")
