"""Spatial queries checked against independent geopandas computations on the seeded demo."""

from __future__ import annotations

import io
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from sqlalchemy import Engine, text

from layers.errors import InvalidInputError, NotFoundError
from layers.features import queries

METRIC = 9208  # VN-2000 / TM-3, the province's official metric CRS
BIG = 10**6


def layer_gdf(engine: Engine, slug: str) -> gpd.GeoDataFrame:
    with engine.connect() as conn:
        gdf = gpd.read_postgis(
            text(
                "SELECT f.id, f.properties, f.geom FROM feature f JOIN layer l ON l.id = f.layer_id"
                " WHERE l.slug = :s ORDER BY f.id"
            ),
            conn,
            params={"s": slug},
            geom_col="geom",
        )
    props = pd.json_normalize(list(gdf["properties"]))
    return gpd.GeoDataFrame(
        pd.concat([gdf[["id"]].reset_index(drop=True), props], axis=1),
        geometry=gdf.geometry.values,
        crs=4326,
    )


def communes(engine: Engine) -> gpd.GeoDataFrame:
    with engine.connect() as conn:
        return gpd.read_postgis(
            text(
                "SELECT code, name, population, geom FROM admin_unit"
                " WHERE level = 'commune' AND valid_to IS NULL ORDER BY code"
            ),
            conn,
            geom_col="geom",
        )


def ids(result: queries.QueryResult) -> set[int]:
    return {int(r["id"]) for r in result.rows}


@pytest.fixture(scope="module")
def schools(seeded: Engine) -> gpd.GeoDataFrame:
    return layer_gdf(seeded, "schools")


@pytest.fixture(scope="module")
def hospitals(seeded: Engine) -> gpd.GeoDataFrame:
    return layer_gdf(seeded, "hospitals")


def test_within_admin_unit(seeded: Engine, schools: gpd.GeoDataFrame) -> None:
    com = communes(seeded)
    code = com.iloc[0]["code"]
    with seeded.connect() as conn:
        res = queries.within_admin(conn, "schools", code, BIG)
        thpt = queries.within_admin(conn, "schools", code, BIG, {"level": "thpt"})
        with pytest.raises(NotFoundError):
            queries.within_admin(conn, "schools", "nope", 10)
        with pytest.raises(NotFoundError):
            queries.within_admin(conn, "nope", code, 10)
        with pytest.raises(InvalidInputError, match="colour"):
            queries.within_admin(conn, "schools", code, 10, {"colour": "red"})
    poly = com.iloc[0].geom
    want = set(schools[schools.intersects(poly)]["id"])
    assert ids(res) == want and want
    assert ids(thpt) == set(schools[schools.intersects(poly) & (schools.level == "thpt")]["id"])


def test_within_polygon(seeded: Engine, schools: gpd.GeoDataFrame) -> None:
    poly = shapely.Polygon([(105.6, 18.6), (105.75, 18.62), (105.72, 18.8), (105.6, 18.7)])
    with seeded.connect() as conn:
        res = queries.within_polygon(conn, "schools", shapely.geometry.mapping(poly), BIG)
        with pytest.raises(InvalidInputError, match="Polygon"):
            queries.within_polygon(conn, "schools", {"type": "Point", "coordinates": [1, 2]}, 10)
    assert ids(res) == set(schools[schools.intersects(poly)]["id"]) != set()


def _metric_dist(gdf: gpd.GeoDataFrame, point: shapely.Point) -> pd.Series:
    p = gpd.GeoSeries([point], crs=4326).to_crs(METRIC).iloc[0]
    return gdf.to_crs(METRIC).distance(p)


def test_within_radius_and_nearest(seeded: Engine, schools: gpd.GeoDataFrame) -> None:
    lon, lat, r = 105.68, 18.67, 2000.0
    d = _metric_dist(schools, shapely.Point(lon, lat))
    with seeded.connect() as conn:
        res = queries.within_radius(conn, "schools", lon, lat, r, BIG)
        near = queries.nearest(conn, "schools", lon, lat, 7)
        with pytest.raises(InvalidInputError, match="metres"):
            queries.within_radius(conn, "schools", lon, lat, -5, 10)
    got = ids(res)
    sure_in = set(schools[d < r * 0.995]["id"])
    maybe = set(schools[d < r * 1.005]["id"])
    assert sure_in and sure_in <= got <= maybe
    dists = [row["distance_m"] for row in res.rows]
    assert dists == sorted(dists)
    by_id = dict(zip(schools["id"], d, strict=True))
    for row in res.rows:
        assert row["distance_m"] == pytest.approx(by_id[row["id"]], rel=5e-3)
    want = list(schools.assign(d=d).sort_values("d")["id"][:7])
    assert [row["id"] for row in near.rows] == want


def test_near_other_layer(
    seeded: Engine, schools: gpd.GeoDataFrame, hospitals: gpd.GeoDataFrame
) -> None:
    r = 2000.0
    with seeded.connect() as conn:
        res = queries.near_layer(conn, "schools", "hospitals", r, BIG)
    s = schools.to_crs(METRIC)
    h = hospitals.to_crs(METRIC)
    joined = gpd.sjoin_nearest(s, h[["id", "geometry"]], distance_col="dist", max_distance=r * 1.01)
    nearest = joined.groupby("id_left")["dist"].min()
    sure = set(nearest[nearest < r * 0.995].index)
    maybe = set(nearest.index)
    assert sure and sure <= ids(res) <= maybe
    for row in res.rows:
        assert row["distance_m"] <= r
        assert row["distance_m"] == pytest.approx(nearest[row["id"]], rel=5e-3, abs=0.5)


def test_per_commune_rates(seeded: Engine, schools: gpd.GeoDataFrame) -> None:
    com = communes(seeded)
    with seeded.connect() as conn:
        res = queries.per_commune(conn, "schools", "pupils", per=10_000)
        with pytest.raises(InvalidInputError, match="not numeric"):
            queries.per_commune(conn, "schools", "name")
    joined = gpd.sjoin(schools, com, predicate="within")
    counts = joined.groupby("code").size()
    sums = joined.groupby("code")["pupils"].sum()
    assert len(res.rows) == len(com)
    for row in res.rows:
        n = int(counts.get(row["code"], 0))
        assert row["count"] == n
        assert row["sum_pupils"] == pytest.approx(float(sums.get(row["code"], 0)))
        pop = row["population"]
        assert row["count_per_10000"] == pytest.approx(n / pop * 10_000)


def test_gaps(seeded: Engine, hospitals: gpd.GeoDataFrame) -> None:
    r = 5000.0
    with seeded.connect() as conn:
        res = queries.gaps(conn, "hospitals", r, {"type": "health_station"})
        pts = gpd.read_postgis(
            text(
                "SELECT code, ST_PointOnSurface(geom) AS geom FROM admin_unit"
                " WHERE level = 'commune' AND valid_to IS NULL"
            ),
            conn,
            geom_col="geom",
        ).to_crs(METRIC)
    st = hospitals[hospitals["type"] == "health_station"].to_crs(METRIC)
    tree = st.sindex
    _, dist = tree.nearest(pts.geometry, return_distance=True, return_all=False)
    nearest = pd.Series(dist, index=pts["code"].values)
    sure = set(nearest[nearest > r * 1.005].index)
    maybe = set(nearest[nearest > r * 0.995].index)
    got = {row["code"] for row in res.rows}
    assert sure <= got <= maybe
    for row in res.rows:
        assert row["nearest_m"] == pytest.approx(nearest[row["code"]], rel=5e-3)


def test_buffer_and_intersection(seeded: Engine, hospitals: gpd.GeoDataFrame) -> None:
    r = 300.0
    parcels = layer_gdf(seeded, "land_parcels")
    with seeded.connect() as conn:
        buf = queries.buffer_layer(conn, "hospitals", r, dissolve=False, limit=BIG)
        one = queries.buffer_layer(conn, "hospitals", r, dissolve=True, limit=BIG)
        inter = queries.intersection(conn, "land_parcels", "hospitals", BIG, buffer_m=r)
    assert len(buf.rows) == len(hospitals)
    circle = np.pi * r * r
    for row in buf.rows:
        assert row["area_m2"] == pytest.approx(circle, rel=0.02)
    assert len(one.rows) == 1 and one.rows[0]["area_m2"] <= sum(x["area_m2"] for x in buf.rows)
    hb = hospitals.to_crs(METRIC)
    hb["geometry"] = hb.buffer(r, 16)
    ov = gpd.overlay(
        parcels.to_crs(METRIC)[["id", "geometry"]],
        hb[["id", "geometry"]].rename(columns={"id": "hid"}),
        how="intersection",
        keep_geom_type=True,
    )
    ov["area"] = ov.area
    ov = ov[ov["area"] > 1.0]
    want = ov.groupby(["id", "hid"])["area"].sum()
    got = {(row["id"], row["other_id"]): row["area_m2"] for row in inter.rows}
    big_want = {k for k, v in want.items() if v > 50}
    assert big_want, "the demo has parcels near hospitals"
    assert big_want <= set(got)
    for key in big_want:
        assert got[key] == pytest.approx(want[key], rel=0.03, abs=5.0)


def test_exports(seeded: Engine, tmp_path: Any) -> None:
    with seeded.connect() as conn:
        res = queries.within_radius(conn, "hospitals", 105.68, 18.67, 10_000, BIG)
        rates = queries.per_commune(conn, "hospitals", "beds")
    gj = queries.export(res, "geojson")
    import json

    doc = json.loads(gj)
    assert doc["type"] == "FeatureCollection" and len(doc["features"]) == len(res.rows)
    assert "distance_m" in doc["features"][0]["properties"]
    csv = pd.read_csv(io.BytesIO(queries.export(rates, "csv")))
    assert list(csv["code"].astype(str)) == [r["code"] for r in rates.rows]
    assert "wkt" in csv.columns
    path = tmp_path / "r.gpkg"
    path.write_bytes(queries.export(res, "gpkg"))
    back = pyogrio.read_dataframe(path)
    assert len(back) == len(res.rows) and back.crs.to_epsg() == 4326
    with pytest.raises(InvalidInputError, match="format"):
        queries.export(res, "xlsx")
