"""Pascal VOC annotations: ground-truth boxes for oracle runs and recall measurements."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from vision.boxes import iou_matrix
from vision.types import Detections

VOC_VEHICLE_CLASSES = {"car", "motorcycle", "truck", "bus", "bicycle"}


def read_voc(path: str | Path) -> tuple[Detections, tuple[int, int]]:
    """Boxes (confidence 1) and (width, height) of one VOC xml file."""
    root = ET.parse(path).getroot()
    size = root.find("size")
    w = int(size.findtext("width", "0")) if size is not None else 0
    h = int(size.findtext("height", "0")) if size is not None else 0
    boxes, labels = [], []
    for obj in root.iter("object"):
        bb = obj.find("bndbox")
        if bb is None:
            continue
        boxes.append([float(bb.findtext(k, "0")) for k in ("xmin", "ymin", "xmax", "ymax")])
        labels.append(obj.findtext("name", "object"))
    return Detections.of(boxes or np.zeros((0, 4)), [1.0] * len(labels), labels), (w, h)


def recall(found: Detections, truth: Detections, iou_threshold: float = 0.3) -> float:
    """Share of true boxes matched (greedily, one to one) by a found box with IoU ≥ threshold."""
    if len(truth) == 0:
        return 1.0
    if len(found) == 0:
        return 0.0
    iou = iou_matrix(truth.boxes, found.boxes)
    used: set[int] = set()
    hit = 0
    for i in np.argsort(-iou.max(axis=1)):
        j = int(np.argmax(np.where([k in used for k in range(iou.shape[1])], -1, iou[i])))
        if iou[i, j] >= iou_threshold and j not in used:
            used.add(j)
            hit += 1
    return hit / len(truth)
