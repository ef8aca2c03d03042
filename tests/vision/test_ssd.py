"""The ssd_coco detector on real annotated frames: classes, rider merge, backends, evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from geo_api.cli import app
from vision.boxes import iou_matrix
from vision.evaluate import annotated_images, average_precision, score_images
from vision.ssd import (
    SsdCocoConfig,
    SsdCocoDetector,
    detections_match,
    merge_riders,
    same_detections,
)
from vision.types import Detections
from vision.voc import read_voc

FRAMES = Path(__file__).resolve().parents[2] / "vision" / "data" / "frames"
VOCAB = {"person", "bicycle", "car", "motorcycle", "bus", "truck"}


@pytest.fixture(scope="module")
def detector() -> SsdCocoDetector:
    return SsdCocoDetector()


def frame(name: str) -> np.ndarray:
    img = cv2.imread(str(FRAMES / f"{name}.jpg"))
    assert img is not None
    return np.asarray(img, dtype=np.uint8)


def test_openvino_gives_the_same_detections_as_opencv_dnn(detector: SsdCocoDetector) -> None:
    """On every shipped frame, at the camera default: OpenVINO (class heads cut to our
    classes, u8 input) gives OpenCV DNN's detections, before and after the rider merge."""
    reference = SsdCocoDetector(backend="opencv")
    images = annotated_images(FRAMES)
    assert len(images) == 60
    boxes = 0
    for img_path in images:
        img = frame(img_path.stem)
        # Every candidate the rider merge sees, down to the candidate floor...
        ours, ref = detector.detect_coco(img, 0.05), reference.detect_coco(img, 0.05)
        assert same_detections(ours, ref), img_path.name
        # ...and the detector's output.
        out = detector.detect(img)
        assert detections_match(out, reference.detect(img)), img_path.name
        boxes += len(out)
    assert boxes > 300


def test_classes_and_rider_merge_on_a_real_frame(detector: SsdCocoDetector) -> None:
    img = frame("frame1008")
    truth, _ = read_voc(FRAMES / "frame1008.xml")
    merged = detector.detect(img)
    plain = SsdCocoDetector(merge_riders=False, unridden_raise=0.0).detect(img)
    assert set(merged.labels) <= VOCAB and set(plain.labels) <= VOCAB
    assert merged.labels.count("motorcycle") >= 5
    # Riders are folded into their motorcycles: fewer "people" on a street of motorbikes.
    assert merged.labels.count("person") < plain.labels.count("person")
    # Each merged motorcycle box covers the bike the plain run found under it.
    bikes = merged.select(np.array([lab == "motorcycle" for lab in merged.labels]))
    plain_bikes = plain.select(np.array([lab == "motorcycle" for lab in plain.labels]))
    for b in plain_bikes.boxes:
        inside = (bikes.boxes[:, 0] <= b[0] + 1) & (bikes.boxes[:, 2] >= b[2] - 1)
        inside &= (bikes.boxes[:, 1] <= b[1] + 1) & (bikes.boxes[:, 3] >= b[3] - 1)
        assert inside.any()
    # ...and the merged boxes match the annotators' rider-and-bike boxes better.
    gt = truth.boxes[np.array([lab == "motorcycle" for lab in truth.labels])]
    assert iou_matrix(gt, bikes.boxes).max(axis=1).mean() > (
        iou_matrix(gt, plain_bikes.boxes).max(axis=1).mean() + 0.1
    )
    # One box per vehicle: no car/truck double for the same object.
    veh = merged.select(np.array([lab in ("car", "truck", "bus") for lab in merged.labels]))
    iou = iou_matrix(veh.boxes, veh.boxes)
    np.fill_diagonal(iou, 0.0)
    assert (iou <= 0.7).all()


def test_merge_riders_joins_a_rider_with_the_bike_under_them() -> None:
    dets = Detections.of(
        [[100, 150, 160, 220], [105, 90, 155, 200], [400, 100, 430, 200], [300, 150, 350, 200]],
        [0.4, 0.9, 0.8, 0.5],
        ["motorcycle", "person", "person", "motorcycle"],
    )
    out = merge_riders(dets, 0.5, 0.6)
    assert out.labels == ("motorcycle", "person", "motorcycle")
    assert out.boxes[0].tolist() == [100, 90, 160, 220] and out.scores[0] == 0.9
    assert out.boxes[1].tolist() == [400, 100, 430, 200]  # a pedestrian stays a pedestrian
    assert out.boxes[2].tolist() == [300, 120, 350, 200]  # a bike alone is raised for its rider


def test_merge_riders_pairs_each_rider_with_the_bike_under_them_only() -> None:
    dets = Detections.of(
        [
            [291, 120, 309, 152],  # a far bike seen from behind
            [291, 105, 309, 151],  # its rider
            [126, 50, 574, 140],  # a wide false "person" whose bottom edge is on that bike
            [500, 150, 560, 220],  # a near bike...
            [505, 90, 555, 200],  # ...with two riders
            [508, 80, 552, 190],
            [503, 85, 550, 195],  # and a third person box on it (a duplicate of a rider)
        ],
        [0.55, 0.34, 0.3, 0.4, 0.9, 0.8, 0.2],
        ["motorcycle", "person", "person", "motorcycle", "person", "person", "person"],
    )
    out = merge_riders(dets, 0.5, 0.6, max_riders=2)
    rows = zip(out.boxes.tolist(), out.scores, out.labels, strict=True)
    bikes = {tuple(b): s for b, s, lab in rows if lab == "motorcycle"}
    # The far bike takes its own rider, not the wide box (which is no rider of anything).
    assert bikes[(291, 105, 309, 152)] == pytest.approx(0.55)
    assert [126, 50, 574, 140] in out.boxes.tolist()
    # Two riders at most on one bike; the bike is as sure as its surest rider.
    assert bikes[(500, 80, 560, 220)] == pytest.approx(0.9)
    assert out.labels.count("person") == 2


def test_default_detector_reaches_the_goal_on_the_report_split(detector: SsdCocoDetector) -> None:
    """AP@0.5 for all vehicles ≥ 0.75 at the camera default (640 px, the frame's aspect),
    on frames that were not used to choose its thresholds."""
    pairs = []
    for img_path in annotated_images(FRAMES, "report"):
        truth, _ = read_voc(img_path.with_suffix(".xml"))
        pairs.append((detector.detect(frame(img_path.stem)), truth))
    default = SsdCocoConfig()
    assert (default.input_size, default.aspect) == (640, "keep")
    # AP over every box down to the candidate floor; the detector's own threshold only cuts it.
    low = SsdCocoDetector(min_score=default.candidate_min_score)
    pairs_low = [(low.detect(frame(p.stem)), read_voc(p.with_suffix(".xml"))[0])
                 for p in annotated_images(FRAMES, "report")]  # fmt: skip
    assert score_images(pairs_low)["vehicles"].ap50 >= 0.75
    # The camera's own boxes (≥ min_score) are exactly the low-floor boxes above min_score.
    for (ours, _), (all_, _) in zip(pairs, pairs_low, strict=True):
        assert len(ours) == int((all_.scores >= default.min_score).sum())


def test_evaluation_against_a_hand_checked_voc_file() -> None:
    truth, (w, h) = read_voc(FRAMES / "frame1008.xml")
    assert (w, h) == (768, 432)
    n = len(truth)
    assert n == 9 and truth.labels.count("motorcycle") == 7 and truth.labels.count("car") == 2
    # Found: a false box scoring highest, then every true box but the last.
    found = Detections.of(
        np.vstack([[[700, 10, 760, 40]], truth.boxes[:-1]]),
        np.linspace(1.0, 0.5, n),
        ("car", *truth.labels[:-1]),
    )
    scores = score_images([(found, truth)], min_score=0.0)
    v = scores["vehicles"]
    assert (v.truths, v.detections, v.true_positives) == (n, n, n - 1)
    # Precision after the k-th true hit is k/(k+1); its envelope is (n-1)/n everywhere, and
    # recall climbs to (n-1)/n: AP = ((n-1)/n)^2.
    assert v.ap50 == pytest.approx(((n - 1) / n) ** 2)
    assert scores["car"].truths == 2
    assert average_precision(np.array([0.9]), np.array([True]), 1) == pytest.approx(1.0)


def test_detect_and_evaluate_commands(tmp_path: Path) -> None:
    runner = CliRunner()
    img = FRAMES / "frame1008.jpg"
    res = runner.invoke(app, ["vision", "detect", str(img), "--format", "json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output.strip().splitlines()[-1])
    assert set(doc) == {"image", "width", "height", "detections"}
    assert (doc["image"], doc["width"], doc["height"]) == (str(img), 768, 432)
    assert doc["detections"] and set(doc["detections"][0]) == {"class", "score", "box"}
    for d in doc["detections"]:
        x1, y1, x2, y2 = d["box"]
        assert 0 <= x1 < x2 <= 768 and 0 <= y1 < y2 <= 432 and d["class"] in VOCAB
    res = runner.invoke(app, ["vision", "detect", str(img), "--detector-params", '{"tile": 2}'])
    assert res.exit_code == 1 and "tile: unknown parameter" in res.output
    for name in ("frame1008", "frame1710"):
        for ext in (".jpg", ".xml"):
            (tmp_path / f"{name}{ext}").write_bytes((FRAMES / f"{name}{ext}").read_bytes())
    res = runner.invoke(app, ["vision", "evaluate", str(tmp_path)])
    assert res.exit_code == 0, res.output
    ev = json.loads(res.output.strip().splitlines()[-1])
    assert ev["images"] == 2 and {"car", "motorcycle"} <= set(ev["classes"])
    assert set(ev["vehicles"]) == {"truths", "detections", "precision", "recall", "ap50"}
    assert 0.3 < ev["vehicles"]["ap50"] <= 1.0
