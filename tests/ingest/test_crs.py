"""Every CRS path: file CRS (EPSG and ESRI VN-2000 WKT), --crs, detection; 5 cm accuracy."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest

from ingest import crs as crsmod
from ingest.province import bundled_boundary
from tests.ingest.conftest import NAMES, TRUTH_LONLAT, metres_apart, points, to_srid

ESRI_TM3_10445 = (
    'PROJCS["VN_2000_TM3_104_45",GEOGCS["GCS_VN_2000",DATUM["D_Vietnam_2000",'
    'SPHEROID["WGS_1984",6378137.0,298.257223563]],PRIMEM["Greenwich",0.0],'
    'UNIT["Degree",0.0174532925199433]],PROJECTION["Transverse_Mercator"],'
    'PARAMETER["False_Easting",500000.0],PARAMETER["False_Northing",0.0],'
    'PARAMETER["Central_Meridian",104.75],PARAMETER["Scale_Factor",0.9999],'
    'PARAMETER["Latitude_Of_Origin",0.0],UNIT["Meter",1.0]]'
)


def test_official_shift_matches_epsg_6960_pipeline() -> None:
    for srid in (9208, 3405, 5897, 9210):
        xy = to_srid(TRUTH_LONLAT, srid)
        lon, lat = crsmod.transform_coords(crsmod.proj_for_srid(srid), xy[:, 0], xy[:, 1])
        assert metres_apart(np.column_stack([lon, lat]), TRUTH_LONLAT).max() < 0.05


def test_grid_transform_is_exact_to_a_millimetre() -> None:
    rng = np.random.default_rng(7)
    n = 300_000
    x = rng.uniform(560_000, 620_000, n)
    y = rng.uniform(2_040_000, 2_090_000, n)
    proj = crsmod.proj_for_srid(9208)
    lon, lat = crsmod.transform_coords(proj, x, y)
    ex_lon, ex_lat = crsmod.transformer_to_wgs84(proj).transform(x, y)
    err = metres_apart(np.column_stack([lon, lat]), np.column_stack([ex_lon, ex_lat]))
    assert err.max() < 0.002


def test_esri_vn2000_wkt_is_recognised_with_official_shift() -> None:
    choice = crsmod.recognise(ESRI_TM3_10445, "file")
    assert choice.srid == 9208
    assert "+towgs84=-191.90441429" in choice.proj


def test_wgs84_utm_is_not_mistaken_for_vn2000() -> None:
    assert crsmod.recognise("EPSG:32648", "option").srid == 32648


def test_detection_prefers_official_meridian_and_reports_alternatives() -> None:
    xy = to_srid(TRUTH_LONLAT, 9208)
    choice = crsmod.detect(xy[:, 0], xy[:, 1], bundled_boundary("40"), 9208)
    assert choice.srid == 9208
    assert choice.source == "detected"
    assert len(choice.alternatives) >= 1
    assert all(s != 9208 for s in choice.alternatives)


def test_detection_of_wgs84() -> None:
    choice = crsmod.detect(TRUTH_LONLAT[:, 0], TRUTH_LONLAT[:, 1], bundled_boundary("40"), 9208)
    assert choice.srid == 4326


def test_detection_fails_clearly_outside_province() -> None:
    from layers.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="--crs"):
        crsmod.detect(np.array([10.0, 11.0]), np.array([50.0, 51.0]), bundled_boundary("40"), 9208)


@pytest.mark.parametrize(
    ("how", "srid"),
    [("file", 9208), ("file", 3405), ("esri_prj", 9208), ("option", 9210), ("detect", 9208)],
)
def test_points_land_within_5cm(tmp_path, do_import, layer_points, how: str, srid: int) -> None:  # type: ignore[no-untyped-def]
    xy = to_srid(TRUTH_LONLAT, srid)
    gdf = gpd.GeoDataFrame({"name": NAMES}, geometry=points(xy), crs=None)
    path = tmp_path / "pts.shp"
    kw: dict[str, object] = {}
    if how == "file":
        gdf.set_crs(srid).to_file(path)
    elif how == "esri_prj":
        gdf.to_file(path)
        path.with_suffix(".prj").write_text(ESRI_TM3_10445)
    elif how == "option":
        gdf.to_file(path)
        kw["crs"] = f"EPSG:{srid}"
    else:
        gdf.to_file(path)
    slug = f"crs_{how}_{srid}"
    report = do_import(path, slug, **kw)
    assert report.crs["srid"] == srid
    assert report.crs["source"] == {"esri_prj": "file", "detect": "detected"}.get(how, how)
    got = layer_points(slug)
    got_arr = np.array([got[n] for n in NAMES])
    assert metres_apart(got_arr, TRUTH_LONLAT).max() < 0.05
    # Reading VN-2000 as if it were WGS84 would land ~220 m off: prove we are not doing that.
    assert report.rows_valid == 4


def test_geojson_claiming_wgs84_with_vn2000_metres_is_caught(
    tmp_path, do_import, layer_points
) -> None:  # type: ignore[no-untyped-def]
    import json

    xy = to_srid(TRUTH_LONLAT, 9208)
    doc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"name": n},
                "geometry": {"type": "Point", "coordinates": [x, y]},
            }
            for n, (x, y) in zip(NAMES, xy, strict=True)
        ],
    }
    path = tmp_path / "sai_crs.geojson"
    path.write_text(json.dumps(doc), encoding="utf-8")
    report = do_import(path, "crs_wrong_claim")
    assert report.crs["srid"] == 9208 and report.crs["source"] == "detected"
    assert any("stated CRS is wrong" in n for n in report.notes)
    got = layer_points("crs_wrong_claim")
    assert metres_apart(np.array([got[n] for n in NAMES]), TRUTH_LONLAT).max() < 0.05


def test_grid_fallback_when_the_polynomial_does_not_fit(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    real = crsmod._fit_poly

    def bad(*args, **kwargs):  # type: ignore[no-untyped-def]
        poly = real(*args, **kwargs)
        return crsmod._Poly(**{**poly.__dict__, "lon0": poly.lon0 + 1e-3})

    monkeypatch.setattr(crsmod, "_fit_poly", bad)
    rng = np.random.default_rng(11)
    n = 250_000
    x = rng.uniform(560_000, 620_000, n)
    y = rng.uniform(2_040_000, 2_090_000, n)
    proj = crsmod.proj_for_srid(9208)
    lon, lat = crsmod.transform_coords(proj, x, y)
    ex_lon, ex_lat = crsmod.transformer_to_wgs84(proj).transform(x, y)
    err = metres_apart(np.column_stack([lon, lat]), np.column_stack([ex_lon, ex_lat]))
    assert err.max() < 0.002
