"""The QGIS project builder on catalogue entries alone (no server, no QGIS)."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime
from xml.etree import ElementTree as ET

import pytest

from geo_api import qgis_project
from geo_api.i18n import t
from layers.demo import specs
from layers.features.registry import LayerInfo, LayerSpec


def _info(spec: LayerSpec, n: int, count: int) -> LayerInfo:
    now = datetime.now(UTC)
    return LayerInfo(
        **spec.model_dump(),
        id=n,
        data_version=1,
        created_at=now,
        updated_at=now,
        feature_count=count,
        bbox=(103.87, 18.55, 105.83, 19.95),
    )


@pytest.fixture
def infos() -> list[LayerInfo]:
    """Province, communes, hospitals, cameras and 50,000 parcels."""
    return [
        _info(specs.ADMIN_PROVINCE, 1, 1),
        _info(specs.ADMIN_COMMUNES, 2, 130),
        _info(specs.HOSPITALS, 3, 151),
        _info(specs.CAMERAS, 4, 51),
        _info(specs.LAND_PARCELS, 5, 50_000),
    ]


def _build(infos: list[LayerInfo], **kw: object) -> ET.Element:
    opts = qgis_project.ProjectOptions(base_url="http://ioc.example", **kw)  # type: ignore[arg-type]
    xml = qgis_project.project_xml(
        infos,
        lambda i: i.visibility.access != "public",
        opts,
        lambda key: t(opts.lang, key),
        infos[0].bbox,
    )
    data = qgis_project.qgz(xml)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return ET.fromstring(zf.read("iocmap.qgs"))


def test_layers_groups_and_sources(infos: list[LayerInfo]) -> None:
    root = _build(infos, lang="en")
    groups = root.find("layer-tree-group").findall("layer-tree-group")
    names = [g.get("name") for g in groups]
    assert names == ["Health", "Security", "Land", "Administration"]  # points above areas
    ids = [ml.findtext("id") for ml in root.iter("maplayer")]
    assert "land_parcels_vt" in ids and "hospitals_vt" not in ids
    cams = next(ml for ml in root.iter("maplayer") if ml.findtext("id") == "cameras_oapif")
    assert cams.findtext("datasource").startswith("authcfg=iocmap1 ")
    assert cams.find("labeling/settings/text-style").get("fieldName") == "name"
    vt = next(ml for ml in root.iter("maplayer") if ml.findtext("id") == "land_parcels_vt")
    assert "url=http://ioc.example/tiles/land_parcels/%7Bz%7D/%7Bx%7D/%7By%7D.mvt" in (
        vt.findtext("datasource")
    )
    # parcels appear from the web map's zoom 12
    assert vt.get("hasScaleBasedVisibilityFlag") == "1"
    assert float(vt.get("minScale")) == pytest.approx(qgis_project.scale_at_zoom(12))
    assert root.find("properties/SpatialRefSys/ProjectionsEnabled").text == "1"


def test_vietnamese_titles_and_wgs84(infos: list[LayerInfo]) -> None:
    root = _build(infos, lang="vi", crs=4326, authcfg="abc1234")
    assert root.findtext("title") == "IOC Map"
    assert "Hành chính" in [g.get("name") for g in root.iter("layer-tree-group")]
    assert root.find("projectCrs/spatialrefsys/authid").text == "EPSG:4326"
    assert float(root.findtext("mapcanvas/extent/xmin")) == pytest.approx(103.87)
    assert "abc1234" in root.findtext("projectMetadata/abstract")
    hospitals = next(ml for ml in root.iter("maplayer") if ml.findtext("id") == "hospitals_oapif")
    labels = {c.get("value"): c.get("label") for c in hospitals.iter("category")}
    assert labels["health_station"] == "Trạm y tế xã" and labels[""] == "Khác"


def test_authcfg_ids_and_scales() -> None:
    assert qgis_project.valid_authcfg("iocmap1")
    assert not qgis_project.valid_authcfg("IOCMAP1") and not qgis_project.valid_authcfg("x")
    assert qgis_project.scale_at_zoom(0) / qgis_project.scale_at_zoom(1) == 2
    x0, y0, x1, y1 = qgis_project.to_crs((103.87, 18.55, 105.83, 19.95), 3857)
    assert 11_562_000 < x0 < 11_563_000 and y1 > y0
