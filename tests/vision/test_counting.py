"""Counting on the real street video with CA-01's demo calibration and zones, and per-track
class votes (a pickup that flickers between car and truck is one vehicle)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
import shapely.geometry

from vision import demo
from vision.geo import Calibration
from vision.motion import MotionGate
from vision.pipeline import Pipeline
from vision.rules import RuleEngine, RuleSettings, Zone, zone_from_wgs84
from vision.ssd import SsdCocoDetector
from vision.synthetic import ReplayDetector
from vision.tracking import ByteTrack
from vision.types import Detections

VIDEO = Path(__file__).resolve().parents[2] / "vision" / "data" / "video" / "street-640x352.mp4"
T0 = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
LON, LAT, HEADING = 105.6813, 18.6796, 40.0


def demo_zones() -> tuple[Calibration, list[Zone]]:
    cal = demo.calibration(LON, LAT, HEADING)
    zones = [
        zone_from_wgs84(
            i + 1,
            z["name"],
            z["kind"],
            shapely.geometry.shape(z["geometry"]),
            z["params"],
            cal.frame,
        )
        for i, z in enumerate(demo.zones(cal, HEADING))
    ]
    return cal, zones


def test_ca01_homography_is_fitted_from_control_points() -> None:
    cal = demo.calibration(LON, LAT, HEADING)
    assert not cal.pose_only and len(cal.residuals_m) == 8
    assert cal.rms_error_m < 0.05
    # The near lane is 3.5 m wide where the counting line crosses it (row 229).
    kerb, centre = cal.image_to_ground([[240.0, 229.0], [472.0, 229.0]])
    assert abs(float(((kerb - centre) ** 2).sum() ** 0.5) - 3.5) < 0.3
    # The lane's direction is the flow: towards the camera, the reverse of the road bearing.
    lane = next(z for z in demo.zones(cal, HEADING) if z["kind"] == "lane")
    assert lane["params"]["direction_deg"] == pytest.approx(
        (demo.road_bearing_deg(HEADING) + 180) % 360, abs=0.1
    )


def test_a_track_that_changes_class_is_counted_once_by_its_vote() -> None:
    cal, zones = demo_zones()
    line = [z for z in zones if z.kind == "counting_line"]
    # A pickup driving down the picture across the counting line (row 229); the model calls
    # it car, truck, car, car, truck, car…: one track, one class, one crossing.
    labels = ["car", "truck", "car", "car", "truck", "car", "car", "truck", "car", "car"]
    frames = [
        Detections.of([[300 + 4 * i, 150 + 12 * i, 420 + 6 * i, 215 + 12 * i]], [0.9], [lab])
        for i, lab in enumerate(labels)
    ]
    replay = ReplayDetector(frames)
    pipe = Pipeline(replay, ByteTrack(frame_rate=5), cal, RuleEngine(line, cal.frame))
    events = []
    ids = set()
    for i in range(len(frames)):
        replay.index = i
        r = pipe.process(_blank(), T0 + timedelta(seconds=i / 5))
        events += r.events
        ids |= {t.track_id for t in r.tracks}
        assert all(t.label == "car" for t in r.tracks)
    crossings = [e for e in events if e.type == "line_crossing"]
    assert len(ids) == 1 and len(crossings) == 1 and crossings[0].class_name == "car"
    assert sum(pipe.rules.counts.values()) == 1  # type: ignore[union-attr]


def _blank() -> np.ndarray:
    return np.zeros((352, 640, 3), np.uint8)


@pytest.mark.slow
def test_the_demo_counts_the_eight_vehicles_of_the_video_and_no_wrong_way() -> None:
    cal, zones = demo_zones()
    pipe = Pipeline(
        SsdCocoDetector(),
        ByteTrack(frame_rate=24),
        cal,
        RuleEngine(zones, cal.frame, RuleSettings(detection_min_age_s=0.5)),
        gate=MotionGate(),
        detect_interval_s=0.2,  # 5 detections a second; the tracker carries boxes between
    )
    cap = cv2.VideoCapture(str(VIDEO))
    events = []
    i = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        events += pipe.process(frame, T0 + timedelta(seconds=i / 24)).events
        i += 1
    cap.release()
    assert i == 905
    assert pipe.stats.detector_calls < i / 4  # on a schedule, not every frame
    crossings = [e for e in events if e.type == "line_crossing"]
    frames_at = [round((e.t - T0).total_seconds() * 24) for e in crossings]
    assert len(crossings) == 8, frames_at
    assert len({e.track_id for e in crossings}) == 8
    assert Counter(e.class_name for e in crossings) <= Counter({"car": 8, "truck": 1})
    # Each crossing happens when one of the 8 real vehicles reaches the line.
    for lo, hi in [
        (0, 40),
        (48, 110),
        (115, 160),
        (160, 205),
        (205, 260),
        (400, 450),
        (450, 500),
        (690, 740),
    ]:
        assert sum(lo <= f < hi for f in frames_at) == 1, (lo, hi, frames_at)
    assert not [e for e in events if e.type == "wrong_way"]


def test_motion_keeps_near_cars_under_a_pose_only_calibration() -> None:
    """The old default dropped every near car: a pose-only calibration made them 5.7-8 m
    wide and the 4 m width bound threw them away. The bound now needs a fitted calibration."""
    from vision.geo import GroundFrame, pose_calibration
    from vision.motion import MotionDetector, ground_widths

    cal = pose_calibration(GroundFrame(LON, LAT), 640, 352, HEADING, 70.0, 6.0, 30.0)
    assert cal.pose_only
    det = MotionDetector(calibration=cal)
    cap = cv2.VideoCapture(str(VIDEO))
    near: list[list[float]] = []
    for i in range(110):
        ok, frame = cap.read()
        assert ok
        dets = det.detect(frame)
        # frames 48-100: a car crosses the near half of the picture
        if 60 <= i < 100:
            near += [b.tolist() for b in dets.boxes if b[3] > 300 and b[2] - b[0] > 120]
    cap.release()
    assert len(near) >= 10
    # ...most of which this calibration makes wider than the old 4 m bound.
    assert (ground_widths(cal, np.array(near)) > 4.0).sum() >= len(near) // 2
