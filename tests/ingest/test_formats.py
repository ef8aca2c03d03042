"""Every format: GeoPackage layers, Shapefile (loose, zipped, encodings), GeoJSON, KML/KMZ,
FlatGeobuf, DXF, CSV and XLSX with coordinate columns."""

from __future__ import annotations

import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import openpyxl
import pyogrio
import pytest
import shapely

from ingest.encoding import TCVN3_DECODE, guess_encoding
from ingest.tabular import find_coordinate_columns
from tests.ingest.conftest import NAMES, TRUTH_LONLAT, metres_apart, points, to_srid


def _gdf(srid: int = 4326) -> gpd.GeoDataFrame:
    xy = to_srid(TRUTH_LONLAT, srid)
    return gpd.GeoDataFrame(
        {"name": NAMES, "beds": [500, 120, 80, 60]}, geometry=points(xy), crs=srid
    )


def _check_points(layer_points, slug: str) -> None:  # type: ignore[no-untyped-def]
    got = layer_points(slug)
    arr = np.array([got[n] for n in NAMES])
    assert metres_apart(arr, TRUTH_LONLAT).max() < 0.05


def test_geopackage_with_source_layer(tmp_path: Path, do_import, layer_points) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "multi.gpkg"
    _gdf(4326).iloc[:1].to_file(path, layer="other")
    _gdf(9208).to_file(path, layer="benh_vien")
    report = do_import(path, "fmt_gpkg", source_layer="benh_vien")
    assert report.format == "GPKG"
    assert report.source_layers == ["other", "benh_vien"]
    assert report.rows_valid == 4
    assert report.property_schema["properties"]["beds"]["type"] == "integer"
    _check_points(layer_points, "fmt_gpkg")


def test_geopackage_unknown_layer_is_a_clear_error(tmp_path: Path, do_import) -> None:  # type: ignore[no-untyped-def]
    from layers.errors import InvalidInputError

    path = tmp_path / "a.gpkg"
    _gdf().to_file(path, layer="a")
    with pytest.raises(InvalidInputError, match="has no layer 'b'"):
        do_import(path, "fmt_gpkg_bad", source_layer="b", dry_run=True)


def test_zipped_shapefile_in_subfolder(tmp_path: Path, do_import, layer_points) -> None:  # type: ignore[no-untyped-def]
    _gdf(9208).to_file(tmp_path / "tram.shp", encoding="utf-8")
    zpath = tmp_path / "tram.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for ext in ("shp", "shx", "dbf", "prj", "cpg"):
            zf.write(tmp_path / f"tram.{ext}", f"export/tram.{ext}")
    report = do_import(zpath, "fmt_shpzip")
    assert report.format == "ESRI Shapefile (zipped)"
    _check_points(layer_points, "fmt_shpzip")
    names = set(layer_points("fmt_shpzip"))
    assert "Cửa Lò" in names and "Đô Lương" in names


def _tcvn3_bytes(text: str) -> bytes:
    inverse = {ch: b for b, ch in TCVN3_DECODE.items()}
    return b"".join(inverse[ch] if ch in inverse else ch.encode("ascii") for ch in text)


def test_shapefile_without_cpg_in_tcvn3_is_detected_and_converted(
    tmp_path: Path, do_import
) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "cu.shp"
    gdf = _gdf(4326)
    gdf["name"] = ["x" * 20] * 4  # placeholder; bytes patched below
    gdf.to_file(path)
    path.with_suffix(".cpg").unlink(missing_ok=True)
    dbf = bytearray(path.with_suffix(".dbf").read_bytes())
    words = ["Thành phố Vinh", "Cửa Lò", "Đô Lương", "Nghệ An"]
    for word in words:
        raw = _tcvn3_bytes(word).ljust(20)
        at = dbf.find(b"x" * 20)
        dbf[at : at + 20] = raw
    path.with_suffix(".dbf").write_bytes(bytes(dbf))
    report = do_import(path, "fmt_tcvn3", dry_run=True)
    assert any("TCVN3" in n for n in report.notes)
    got = [r["properties"]["name"] for r in report.preview]
    assert got == words


def test_guess_encoding() -> None:
    assert guess_encoding([b"Vinh"]).encoding == "ascii"
    assert guess_encoding(["Nghệ An".encode()]).encoding == "utf-8"
    assert guess_encoding([_tcvn3_bytes("Thành phố Vinh, Nghệ An, Đô Lương")]).encoding == "tcvn3"
    # VNI writes base letters followed by diacritic bytes.
    assert guess_encoding([b"Nghe\xe4 An", b"Vie\xe4t Nam", b"Tha\xf8nh pho\xe1 Vinh"]).is_legacy


@pytest.mark.parametrize(
    ("ext", "driver", "fmt"),
    [
        ("geojson", "GeoJSON", "GeoJSON"),
        ("fgb", "FlatGeobuf", "FlatGeobuf"),
        ("kml", "KML", "KML"),
    ],
)
def test_vector_formats(
    tmp_path: Path, do_import, layer_points, ext: str, driver: str, fmt: str
) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / f"a.{ext}"
    gdf = _gdf(4326)
    if driver == "KML":
        gdf = gdf.rename(columns={"name": "Name"})
    gdf.to_file(path, driver=driver)
    slug = f"fmt_{ext}"
    report = do_import(path, slug)
    assert report.format == fmt
    assert report.rows_valid == 4
    if driver != "KML":
        _check_points(layer_points, slug)


def test_kmz(tmp_path: Path, do_import) -> None:  # type: ignore[no-untyped-def]
    kml = tmp_path / "doc.kml"
    _gdf(4326).rename(columns={"name": "Name"}).to_file(kml, driver="KML")
    kmz = tmp_path / "a.kmz"
    with zipfile.ZipFile(kmz, "w") as zf:
        zf.write(kml, "doc.kml")
    report = do_import(kmz, "fmt_kmz")
    assert report.format == "KMZ"
    assert report.rows_valid == 4
    assert report.crs["srid"] == 4326


def test_dxf_parcels_in_vn2000(tmp_path: Path, do_import) -> None:  # type: ignore[no-untyped-def]
    xy = to_srid(TRUTH_LONLAT, 9208)
    polys = [shapely.box(x, y, x + 20, y + 30) for x, y in xy]
    path = tmp_path / "ban_do.dxf"
    pyogrio.write_dataframe(gpd.GeoDataFrame(geometry=polys), path, driver="DXF")
    report = do_import(path, "fmt_dxf")
    assert report.format == "DXF"
    assert report.crs["srid"] == 9208 and report.crs["source"] == "detected"
    assert report.rows_valid == 4
    assert report.geometry_type in ("Polygon", "MultiPolygon")


def test_csv_bom_semicolon_decimal_comma_vietnamese_headers(
    tmp_path: Path, do_import, layer_points
) -> None:  # type: ignore[no-untyped-def]
    lines = ["Tên;Vĩ độ;Kinh độ;Số giường"]
    for name, (lon, lat) in zip(NAMES, TRUTH_LONLAT, strict=True):
        lines.append(f"{name};{lat:.7f};{lon:.7f};1.200".replace(".", ",", 2))
    path = tmp_path / "benh_vien.csv"
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode("utf-8"))
    report = do_import(path, "fmt_csv")
    assert report.format == "CSV"
    assert report.rows_valid == 4, report.reject_examples
    assert report.crs["srid"] == 4326
    schema = report.property_schema["properties"]
    assert "Tên" in schema
    assert any("BOM" in n or "byte order" in n for n in report.notes)


def test_csv_comma_delimiter_lat_lon(tmp_path: Path, do_import) -> None:  # type: ignore[no-untyped-def]
    lines = ["name,lat,lon"] + [
        f'"{n}",{lat},{lon}' for n, (lon, lat) in zip(NAMES, TRUTH_LONLAT, strict=True)
    ]
    path = tmp_path / "a.csv"
    path.write_text("\n".join(lines), encoding="utf-8")
    report = do_import(path, "fmt_csv2", dry_run=True)
    assert report.rows_valid == 4
    assert report.preview[0]["properties"]["name"] == "Vinh"


def test_csv_vn2000_xy_detected(tmp_path: Path, do_import, layer_points) -> None:  # type: ignore[no-untyped-def]
    xy = to_srid(TRUTH_LONLAT, 9208)
    lines = ["name,x,y"] + [f"{n},{x:.4f},{y:.4f}" for n, (x, y) in zip(NAMES, xy, strict=True)]
    path = tmp_path / "xy.csv"
    path.write_text("\n".join(lines), encoding="utf-8")
    report = do_import(path, "fmt_csv_xy")
    assert report.crs["srid"] == 9208
    _check_points(layer_points, "fmt_csv_xy")


def test_xlsx_with_decimal_comma_text(tmp_path: Path, do_import, layer_points) -> None:  # type: ignore[no-untyped-def]
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Danh sách"
    ws.append(["name", "latitude", "longitude", "beds"])
    for i, (name, (lon, lat)) in enumerate(zip(NAMES, TRUTH_LONLAT, strict=True)):
        lat_cell: object = f"{lat:.7f}".replace(".", ",") if i % 2 else float(lat)
        ws.append([name, lat_cell, float(lon), 10 * (i + 1)])
    path = tmp_path / "a.xlsx"
    wb.save(path)
    report = do_import(path, "fmt_xlsx")
    assert report.format == "XLSX"
    assert report.source_layer == "Danh sách"
    assert report.rows_valid == 4
    assert report.property_schema["properties"]["beds"]["type"] == "integer"
    _check_points(layer_points, "fmt_xlsx")


def test_coordinate_header_detection() -> None:
    assert find_coordinate_columns(["Tên", "Vĩ độ", "Kinh độ"]) == ("Kinh độ", "Vĩ độ")
    assert find_coordinate_columns(["LAT", "LNG"]) == ("LNG", "LAT")
    assert find_coordinate_columns(["X", "Y", "ten"]) == ("X", "Y")
    assert find_coordinate_columns(["a", "b"]) is None
