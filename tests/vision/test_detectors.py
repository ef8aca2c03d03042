"""Detectors on real data: the YOLO adapter (when a YOLOv8 ONNX is at hand), Haar blur, VOC oracle."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
from shapely.geometry import box

from vision.boxes import iou_matrix, nms
from vision.detectors import OnnxYoloDetector, decode_yolo, letterbox
from vision.geo import GroundFrame, pose_calibration
from vision.pipeline import Pipeline
from vision.privacy import Blurrer
from vision.rules import RuleEngine, Zone
from vision.synthetic import T0, ReplayDetector
from vision.tracking import ByteTrack
from vision.types import VEHICLE_CLASSES
from vision.voc import read_voc, recall

FRAMES = Path(__file__).resolve().parents[2] / "vision" / "data" / "frames"


@pytest.fixture(scope="module")
def model_path() -> str:
    """A YOLOv8 ONNX to check the adapter with, when one is installed (nudenet's 320n.onnx,
    YOLOv8n architecture; no longer a dependency: deployments bring their own model)."""
    nudenet = pytest.importorskip("nudenet")
    return os.path.join(os.path.dirname(nudenet.__file__), "320n.onnx")


@pytest.fixture(scope="module")
def face_image() -> np.ndarray:
    """A real portrait (matplotlib's bundled sample photo of Grace Hopper)."""
    cbook = pytest.importorskip("matplotlib.cbook")
    img = cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    assert img is not None
    return img


def test_letterbox_keeps_aspect_and_centres() -> None:
    frame = np.full((352, 640, 3), 200, np.uint8)
    blob, lb = letterbox(frame, 320)
    assert blob.shape == (1, 3, 320, 320) and blob.dtype == np.float32
    assert lb.ratio == pytest.approx(0.5) and lb.pad_x == 0 and lb.pad_y == pytest.approx(72)
    assert blob[0, 0, 0, 0] == pytest.approx(114 / 255) and blob[0, 0, 160, 160] == pytest.approx(
        200 / 255
    )
    back = lb.to_frame(np.array([[0, 72, 320, 248]], float), 640, 352)
    assert np.allclose(back, [[0, 0, 640, 352]])


def test_yolo_decode_matches_a_row_by_row_reference(
    model_path: str, face_image: np.ndarray
) -> None:
    det = OnnxYoloDetector(model_path, imgsz=320)
    out, _ = det.raw(face_image)
    assert out.shape[1] == 4 + len(det.class_names) == 22
    boxes, scores, cids = decode_yolo(out, 0.2)
    # Reference: the head's rows are cx, cy, w, h, then one probability per class.
    rows = out[0].T
    ref = []
    for r in rows:
        c = int(np.argmax(r[4:]))
        if r[4 + c] >= 0.2:
            ref.append(
                (r[0] - r[2] / 2, r[1] - r[3] / 2, r[0] + r[2] / 2, r[1] + r[3] / 2, r[4 + c], c)
            )
    assert len(ref) == len(boxes) > 0
    ref_a = np.array(ref)
    assert np.allclose(boxes, ref_a[:, :4], atol=1e-4) and np.allclose(
        scores, ref_a[:, 4], atol=1e-6
    )
    assert list(cids) == [int(c) for c in ref_a[:, 5]]


def test_yolo_nms_keeps_one_box_per_object(model_path: str, face_image: np.ndarray) -> None:
    det = OnnxYoloDetector(model_path, imgsz=320, conf_threshold=0.25, iou_threshold=0.45)
    out, _ = det.raw(face_image)
    boxes, scores, cids = decode_yolo(out, 0.25)
    keep = nms(boxes, scores, cids, 0.45)
    assert len(boxes) > len(keep) >= 1  # the raw head has many overlapping candidates
    kept = set(keep.tolist())
    for i in range(len(boxes)):
        if i in kept:
            continue
        same = [k for k in keep if cids[k] == cids[i]]
        iou = iou_matrix(boxes[i : i + 1], boxes[same])[0]
        assert (iou > 0.45).any() and max(scores[k] for k in np.array(same)[iou > 0.45]) >= scores[
            i
        ]
    for a in keep:
        for b in keep:
            if a < b and cids[a] == cids[b]:
                assert iou_matrix(boxes[a : a + 1], boxes[b : b + 1])[0, 0] <= 0.45


def test_yolo_finds_the_face_where_the_reference_does(
    model_path: str, face_image: np.ndarray
) -> None:
    from nudenet import NudeDetector

    ref = [d for d in NudeDetector().detect(face_image) if d["class"].startswith("FACE")]
    assert ref
    x, y, w, h = ref[0]["box"]
    for size in (320, 640):
        dets = OnnxYoloDetector(model_path, imgsz=size).detect(face_image)
        faces = dets.select(np.array([lab.startswith("FACE") for lab in dets.labels]))
        assert len(faces) == 1
        assert iou_matrix(faces.boxes, np.array([[x, y, x + w, y + h]], float))[0, 0] > 0.8
    # Letterbox: the same face in a wider canvas, shifted and scaled, maps back to the same place.
    canvas = np.full((700, 1100, 3), 90, np.uint8)
    small = cv2.resize(face_image, None, fx=0.8, fy=0.8)
    canvas[50 : 50 + small.shape[0], 300 : 300 + small.shape[1]] = small
    moved = OnnxYoloDetector(model_path, imgsz=320, classes=["FACE_FEMALE"]).detect(canvas)
    expect = (faces.boxes * 0.8) + np.array([300, 50, 300, 50])
    assert len(moved) == 1 and iou_matrix(moved.boxes, expect)[0, 0] > 0.75


def test_privacy_blur_hides_the_face(face_image: np.ndarray) -> None:
    blurrer = Blurrer()
    regions = blurrer.regions(face_image)
    assert regions, "the Haar face cascade finds the portrait's face"
    x, y, w, h = regions[0]
    out = blurrer.blur(face_image)
    before = cv2.Laplacian(
        cv2.cvtColor(face_image[y : y + h, x : x + w], cv2.COLOR_BGR2GRAY), cv2.CV_64F
    ).var()
    after = cv2.Laplacian(
        cv2.cvtColor(out[y : y + h, x : x + w], cv2.COLOR_BGR2GRAY), cv2.CV_64F
    ).var()
    assert after < before * 0.2
    assert np.array_equal(out[:40, :40], face_image[:40, :40])  # the rest is untouched


def test_voc_oracle_through_tracking_geolocation_and_rules() -> None:
    pairs = [("frame1340", "frame1350"), ("frame1710", "frame1720")]
    truth = {n: read_voc(FRAMES / f"{n}.xml")[0] for p in pairs for n in p}
    w, h = read_voc(FRAMES / "frame1340.xml")[1]
    cal = pose_calibration(GroundFrame(105.6813, 18.6796), w, h, 0.0, 60.0, 8.0, 40.0)
    for first, second in pairs:
        road = cal.image_to_ground([[0, h], [w, h], [w, 0.2 * h], [0, 0.2 * h]])
        zones = [
            Zone(
                1,
                "road",
                "area",
                box(*road.min(axis=0), *road.max(axis=0)),
                {"congestion_count": 5, "congestion_for_s": 0.2},
            ),
        ]
        oracle = ReplayDetector([truth[first], truth[second]])
        pipe = Pipeline(
            oracle,
            ByteTrack(frame_rate=3, track_thresh=0.5, match_thresh=0.9),
            cal,
            RuleEngine(zones, cal.frame, emit_detections=True),
        )
        results = []
        for i in range(2):
            oracle.index = i
            results.append(
                pipe.process(np.zeros((h, w, 3), np.uint8), T0 + timedelta(seconds=i / 3))
            )
        ids0 = {t.track_id for t in results[0].tracks}
        ids1 = {t.track_id for t in results[1].tracks}
        # Ten frames apart, most objects are still matched to their track.
        assert len(ids0 & ids1) >= 0.6 * min(len(ids0), len(ids1))
        # Tracks confirmed on the second frame are geolocated on the ground, in front of the
        # camera and within range; objects first seen there wait for their confirmation.
        obs = results[1].observations
        assert len(obs) == len(results[1].tracks) >= 0.6 * len(truth[second])
        assert all(0 < o.y < 150 and abs(o.x) < 100 for o in obs)
        labels = {t.track_id: t.label for r in results for t in r.tracks}
        n_vehicles = sum(1 for lab in labels.values() if lab in VEHICLE_CLASSES)
        congestion = [e for r in results for e in r.events if e.type == "congestion"]
        assert len(congestion) == 1 and congestion[0].attributes["vehicle_count"] == n_vehicles
        detections = [e for r in results for e in r.events if e.type == "detection"]
        assert len(detections) == len(ids0 | ids1)


def test_recall_helper() -> None:
    truth = read_voc(FRAMES / "frame1340.xml")[0]
    assert recall(truth, truth) == 1.0
    shifted = truth.select(np.arange(len(truth)) % 2 == 0)
    assert recall(shifted, truth) == pytest.approx(len(shifted) / len(truth))
