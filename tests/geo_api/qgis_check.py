"""Open an IOC Map QGIS project in headless QGIS and report what loaded (run by Debian's python3).

Usage: python3 qgis_check.py CONFIG.json  (QT_QPA_PLATFORM=offscreen). CONFIG holds the .qgz
path, the auth database directory, and optionally one authentication configuration to create
(id, method Basic or EsriToken, and its values). Prints one JSON object: per map layer its
provider, validity, feature count (OAPIF: every feature downloaded) and, for vector-tile layers,
how many pixels a render of the layer's extent drew.
"""

from __future__ import annotations

import json
import os
import sys


def main() -> None:
    """Load the project given in the config file and print the report as JSON."""
    with open(sys.argv[1], encoding="utf-8") as f:
        config = json.load(f)
    os.environ["QGIS_AUTH_DB_DIR_PATH"] = config["auth_dir"]
    from qgis.core import (
        QgsApplication,
        QgsAuthMethodConfig,
        QgsCoordinateReferenceSystem,
        QgsCoordinateTransform,
        QgsMapRendererSequentialJob,
        QgsMapSettings,
        QgsProject,
        QgsRectangle,
    )
    from qgis.PyQt.QtCore import QSize
    from qgis.PyQt.QtGui import QColor

    shots = config.get("screenshots_dir")
    app = QgsApplication([], bool(shots))
    app.initQgis()
    auth = QgsApplication.authManager()
    report: dict[str, object] = {"layers": {}}
    if config.get("auth"):
        # A fresh auth database with a master password, as a GIS user sets it up once.
        assert auth.setMasterPassword(config["master_password"], True), "master password"
        spec = config["auth"]
        cfg = QgsAuthMethodConfig(spec["method"])
        cfg.setId(spec["id"])
        cfg.setName("IOC Map")
        for key, value in spec["values"].items():
            cfg.setConfig(key, value)
        assert cfg.isValid(), "auth config invalid"
        assert auth.storeAuthenticationConfig(cfg), "auth config not stored"
        report["auth_ids"] = list(auth.configIds())

    project = QgsProject.instance()
    report["read"] = bool(project.read(config["project"]))
    report["crs"] = project.crs().authid()
    report["title"] = project.title()
    root = project.layerTreeRoot()
    report["groups"] = [g.name() for g in root.children() if g.nodeType() == 0]
    layers: dict[str, dict[str, object]] = {}
    for layer_id, layer in project.mapLayers().items():
        entry: dict[str, object] = {
            "provider": layer.providerType(),
            "valid": layer.isValid(),
            "name": layer.name(),
        }
        node = root.findLayer(layer_id)
        entry["group"] = node.parent().name() if node is not None and node.parent() else None
        entry["visible"] = bool(node.isVisible()) if node is not None else None
        if layer.providerType() == "OAPIF" and layer.isValid():
            entry["count"] = sum(1 for _ in layer.getFeatures())
            renderer = layer.renderer()
            entry["renderer"] = renderer.type() if renderer else None
            if renderer is not None and renderer.type() == "categorizedSymbol":
                entry["categories"] = [
                    (c.value(), c.label(), c.symbol().color().name()) for c in renderer.categories()
                ]
            entry["labels"] = bool(layer.labelsEnabled())
        elif layer.providerType() == "vectortile" and layer.isValid():
            settings = QgsMapSettings()
            settings.setLayers([layer])
            crs = QgsCoordinateReferenceSystem("EPSG:3857")
            settings.setDestinationCrs(crs)
            west, south, east, north = config["tile_extent"]
            to_merc = QgsCoordinateTransform(
                QgsCoordinateReferenceSystem("EPSG:4326"), crs, project
            )
            settings.setExtent(to_merc.transformBoundingBox(QgsRectangle(west, south, east, north)))
            settings.setOutputSize(QSize(512, 512))
            settings.setBackgroundColor(QColor(0, 0, 0, 0))
            job = QgsMapRendererSequentialJob(settings)
            job.start()
            job.waitForFinished()
            image = job.renderedImage()
            drawn = 0
            for y in range(0, image.height(), 2):
                for x in range(0, image.width(), 2):
                    if image.pixelColor(x, y).alpha() > 0:
                        drawn += 1
            entry["pixels_drawn"] = drawn
            entry["styles"] = [s.styleName() for s in layer.renderer().styles()]
        layers[layer_id] = entry
    report["layers"] = layers
    # The report first: the screenshots below show widgets on the offscreen platform, which
    # QGIS 3.22 now and then crashes on; what was loaded is known by then.
    print(json.dumps(report), flush=True)
    if shots:
        print(json.dumps({"screenshots": screenshots(shots, project, config)}), flush=True)
    # Skip Qt's teardown (its destructors crash now and then on the offscreen platform).
    os._exit(0)


def screenshots(folder: str, project: object, config: dict[str, object]) -> list[str]:
    """PNGs for the README: the auth configuration dialog, the layer tree and two map views."""
    from qgis.core import (
        QgsApplication,
        QgsCoordinateReferenceSystem,
        QgsCoordinateTransform,
        QgsLayerTreeModel,
        QgsMapRendererSequentialJob,
        QgsMapSettings,
        QgsRectangle,
    )
    from qgis.gui import QgsAuthConfigEditor, QgsLayerTreeView
    from qgis.PyQt.QtCore import QSize
    from qgis.PyQt.QtGui import QColor

    os.makedirs(folder, exist_ok=True)
    saved = []
    spec = config.get("auth") or {}
    if isinstance(spec, dict) and spec.get("id"):
        method = str(spec["method"]).lower()
        # Options > Authentication: the configurations, with their ids and methods
        editor = QgsAuthConfigEditor(None, False, False)
        editor.resize(640, 260)
        editor.show()
        path = os.path.join(folder, f"auth-list-{method}.png")
        editor.grab().save(path)
        saved.append(path)
        # the method's own fields, as the configuration dialog shows them
        auth = QgsApplication.authManager()
        widget = auth.authMethodEditWidget(str(spec["method"]), None)
        if widget is not None:
            widget.loadConfig({str(k): str(v) for k, v in dict(spec["values"]).items()})
            widget.resize(520, 180)
            widget.show()
            path = os.path.join(folder, f"auth-method-{method}.png")
            widget.grab().save(path)
            saved.append(path)
    root = project.layerTreeRoot()  # type: ignore[attr-defined]
    model = QgsLayerTreeModel(root)
    view = QgsLayerTreeView()
    view.setModel(model)
    view.expandAll()
    view.resize(380, 620)
    view.show()
    path = os.path.join(folder, "layers.png")
    view.grab().save(path)
    saved.append(path)
    crs = QgsCoordinateReferenceSystem("EPSG:3857")
    to_merc = QgsCoordinateTransform(QgsCoordinateReferenceSystem("EPSG:4326"), crs, project)
    visible = [
        node.layer() for node in root.findLayers() if node.isVisible() and node.layer() is not None
    ]
    west, south, east, north = config["tile_extent"]  # type: ignore[misc]
    for name, box, size in (
        ("map-province.png", project.viewSettings().defaultViewExtent(), QSize(1000, 800)),  # type: ignore[attr-defined]
        (
            "map-vinh.png",
            to_merc.transformBoundingBox(QgsRectangle(west, south, east, north)),
            QSize(1000, 800),
        ),
    ):
        settings = QgsMapSettings()
        settings.setLayers(visible)
        settings.setDestinationCrs(crs)
        settings.setExtent(box)
        settings.setOutputSize(size)
        settings.setBackgroundColor(QColor(245, 245, 240))
        job = QgsMapRendererSequentialJob(settings)
        job.start()
        job.waitForFinished()
        path = os.path.join(folder, name)
        job.renderedImage().save(path)
        saved.append(path)
    return saved


if __name__ == "__main__":
    main()
