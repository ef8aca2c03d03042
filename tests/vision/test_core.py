"""Pure vision core: calibration, NMS, tracking, rules and the pipeline on a synthetic street."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pytest
from shapely.geometry import LineString, box

from vision.boxes import iou_matrix, nms
from vision.geo import (
    CalibrationError,
    ControlPoint,
    GroundFrame,
    angle_diff_deg,
    bearing_deg,
    fit_homography,
)
from vision.motion import MotionDetector, MotionGate
from vision.pipeline import Pipeline
from vision.plugins import DETECTORS, SOURCES, TRACKERS, PluginConfigError
from vision.rules import RuleEngine, RuleSettings, Zone, zone_from_wgs84
from vision.sources import open_source
from vision.synthetic import T0, ReplayDetector, control_points, street_scene
from vision.tracking import ByteTrack
from vision.types import Detections, Observation


def street_zones() -> list[Zone]:
    """The synthetic street's zones, in its ground frame."""
    return [
        Zone(1, "lane W", "lane", box(-4, 10, 0, 45), {"direction_deg": 0}),
        Zone(2, "lane E", "lane", box(0, 10, 4, 45), {"direction_deg": 180}),
        Zone(3, "line", "counting_line", LineString([(-6, 25), (6, 25)]), {}),
        Zone(4, "verge", "forbidden", box(5, 14, 9, 20), {}),
    ]


def test_fit_recovers_the_true_homography_and_reports_error() -> None:
    scene = street_scene()
    pixels = [(50, 340), (600, 340), (320, 200), (100, 150), (560, 160), (320, 300)]
    pts = [ControlPoint(*p) for p in control_points(scene.calibration, pixels)]
    cal = fit_homography(pts, scene.calibration.frame, max_error_m=0.05)
    assert cal.rms_error_m < 0.01
    probe = [[320, 250], [10, 330], [630, 120]]
    assert np.allclose(
        cal.image_to_ground(probe), scene.calibration.image_to_ground(probe), atol=0.02
    )
    lonlat = cal.image_to_wgs84(probe)
    assert np.allclose(cal.wgs84_to_image(lonlat), probe, atol=1e-3)


def test_fit_refuses_too_few_collinear_or_inconsistent_points() -> None:
    scene = street_scene()
    frame = scene.calibration.frame
    good = [
        ControlPoint(*p)
        for p in control_points(
            scene.calibration, [(50, 340), (600, 340), (320, 200), (100, 150), (560, 160)]
        )
    ]
    with pytest.raises(CalibrationError, match="at least 4"):
        fit_homography(good[:3], frame)
    line = [ControlPoint(u, 300, 105.68 + u * 1e-6, 18.67) for u in (10, 20, 30, 40)]
    with pytest.raises(CalibrationError, match="collinear"):
        fit_homography(line, frame)
    moved = [*good[:4], ControlPoint(good[4].u, good[4].v, good[4].lon + 0.0003, good[4].lat)]
    with pytest.raises(CalibrationError, match="reprojection error"):
        fit_homography(moved, frame, max_error_m=1.0)


def test_ground_frame_round_trip_and_official_crs() -> None:
    local = GroundFrame(105.68, 18.68)
    assert np.allclose(local.to_ground([[105.68, 18.68]]), 0, atol=1e-6)
    east = local.to_ground([[105.681, 18.68]])[0]
    assert 105 < east[0] < 106 and abs(east[1]) < 0.1  # ~105.4 m per 0.001° at 18.7°N
    vn = GroundFrame(105.68, 18.68, "EPSG:9208")
    p = vn.to_ground([[105.68, 18.68], [105.681, 18.68]])
    assert abs(np.linalg.norm(p[1] - p[0]) - np.linalg.norm(east)) < 0.05
    assert np.allclose(vn.to_wgs84(p)[0], [105.68, 18.68], atol=1e-9)


def test_bearings() -> None:
    assert bearing_deg(0, 1) == 0 and bearing_deg(1, 0) == 90 and bearing_deg(0, -1) == 180
    assert angle_diff_deg(350, 10) == 20


def test_nms_is_class_aware_and_greedy() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10], [50, 50, 60, 60]], float)
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    assert list(nms(boxes, scores, iou_threshold=0.5)) == [0, 3]
    assert list(nms(boxes, scores, np.array([0, 0, 1, 0]), 0.5)) == [0, 2, 3]
    assert iou_matrix(boxes[:1], boxes[1:2])[0, 0] == pytest.approx(81 / 119)


def test_bytetrack_keeps_ids_through_a_short_gap() -> None:
    tracker = ByteTrack(frame_rate=10)
    ids = []
    for i in range(12):
        if i in (5, 6):
            out = tracker.update(Detections.empty())
            assert out == []
            continue
        dets = Detections.of(
            [[10 + 5 * i, 10, 40 + 5 * i, 40], [300 - 5 * i, 100, 330 - 5 * i, 150]],
            [0.9, 0.85],
            ["car", "person"],
        )
        out = tracker.update(dets)
        ids.append(sorted((t.label, t.track_id) for t in out))
    assert ids[0] == [("car", 1), ("person", 2)]
    assert all(x == ids[0] for x in ids)


def test_registries_build_typed_plugins_and_refuse_bad_keys() -> None:
    import vision.detectors  # noqa: F401  (registers every detector)

    assert {"ssd_coco", "motion", "onnx_yolo"} == set(DETECTORS.names())
    assert set(SOURCES.names()) == {"opencv", "snapshot"}
    assert isinstance(DETECTORS.create("motion", {"min_width_m": 0.5}), MotionDetector)
    tracker = TRACKERS.create("bytetrack", {"lost_buffer": 10}, frame_rate=15)
    assert isinstance(tracker, ByteTrack) and tracker.max_lost == 5
    with pytest.raises(PluginConfigError, match="known"):
        DETECTORS.create("nope")
    with pytest.raises(
        PluginConfigError, match=r"camera 'CA-01': detector 'ssd_coco': input_sise: unknown"
    ):
        DETECTORS.create("ssd_coco", {"input_sise": 640}, "camera 'CA-01'")
    with pytest.raises(PluginConfigError, match=r"tracker 'bytetrack': match_thresh: "):
        TRACKERS.create("bytetrack", {"match_thresh": 3})
    with pytest.raises(PluginConfigError, match=r"frame source 'opencv': loop: "):
        open_source("rtsp://cam/1", {"loop": "often"}, where="camera 'CA-02'")


def test_synthetic_street_counts_wrong_way_intrusion_and_positions() -> None:
    scene = street_scene()
    cal = scene.calibration
    pipe = Pipeline(
        MotionDetector(),
        ByteTrack(frame_rate=scene.fps),
        cal,
        RuleEngine(street_zones(), cal.frame),
    )
    events = []
    worst = 0.0
    for i, (frame, t) in enumerate(scene.frames()):
        result = pipe.process(frame, t)
        events.extend(result.events)
        truth = [p for m in scene.movers if (p := m.position(i / scene.fps)) is not None]
        for obs in result.observations:
            worst = max(worst, min(math.hypot(obs.x - x, obs.y - y) for x, y in truth))
    assert worst < 1.0
    by_type: dict[str, list] = {}
    for e in events:
        by_type.setdefault(e.type, []).append(e)
    assert len(by_type["detection"]) == 5
    assert len(by_type["line_crossing"]) == 4
    assert len(by_type["wrong_way"]) == 1 and by_type["wrong_way"][0].zone_id == 1
    assert by_type["wrong_way"][0].t >= T0 + timedelta(seconds=15)
    assert len(by_type["intrusion"]) == 1 and by_type["intrusion"][0].zone_id == 4
    assert set(by_type) == {"detection", "line_crossing", "wrong_way", "intrusion"}
    counts = {(c.class_name, c.count) for c in pipe.rules.flush_counts()}  # type: ignore[union-attr]
    assert counts == {("car", 3), ("motorcycle", 1)}
    for e in by_type["line_crossing"]:
        assert e.lon is not None and abs(e.attributes["y_m"] - 25) < 1.0
        assert 20 < e.attributes["speed_kmh"] < 32


def obs(tid: int, label: str, x: float, y: float) -> Observation:
    """A hand-placed observation."""
    return Observation(tid, label, 0.9, (0, 0, 1, 1), x, y, 105.0, 18.0, 1.0)


def run_rules(engine: RuleEngine, seconds: float, fps: float, make) -> list:
    """Step an engine at `fps` for `seconds`; make(t) gives that frame's observations."""
    out = []
    for i in range(int(seconds * fps)):
        t = i / fps
        out.extend(engine.step(T0 + timedelta(seconds=t), make(t)))
    return out


def test_stopped_vehicle_dwell_in_no_parking_zone() -> None:
    frame = GroundFrame(105.0, 18.0)
    zone = Zone(7, "np", "no_parking", box(0, 0, 10, 10), {"dwell_s": 5})
    engine = RuleEngine([zone], frame, emit_detections=False)
    # Drives in for 2 s, stops at (5, 5) for 8 s; a person stands there too (not a vehicle).
    events = run_rules(
        engine,
        10,
        10,
        lambda t: [obs(1, "car", min(5.0, -5 + 5 * t), 5.0), obs(2, "person", 6.0, 6.0)],
    )
    assert [(e.type, e.track_id) for e in events] == [("stopped_vehicle", 1)]
    # Stopped at 2 s; the 1 s speed window confirms the stop, then 5 s of dwell.
    assert 7.0 <= (events[0].t - T0).total_seconds() <= 8.0


def test_crowd_congestion_and_speeding() -> None:
    frame = GroundFrame(105.0, 18.0)
    zones = [
        Zone(1, "square", "area", box(0, 0, 20, 20), {"crowd_min": 5}),
        Zone(
            2,
            "road",
            "lane",
            box(0, 30, 20, 40),
            {"congestion_count": 3, "congestion_for_s": 4, "speed_limit_kmh": 50},
        ),
    ]
    engine = RuleEngine(zones, frame, RuleSettings(), emit_detections=False)

    def scene(t: float) -> list[Observation]:
        people = [obs(10 + k, "person", 2 + k, 5) for k in range(4 if t < 3 else 6)]
        cars = [obs(20 + k, "car", 2 + 5 * k, 35) for k in range(3)]
        fast = [obs(30, "car", -50 + 20 * t, 32)] if t < 3.4 else []  # 72 km/h
        return people + cars + fast

    events = run_rules(engine, 8, 10, scene)
    kinds = [(e.type, e.zone_id) for e in events]
    assert kinds.count(("crowd", 1)) == 1
    assert kinds.count(("congestion", 2)) == 1
    assert [e.track_id for e in events if e.type == "speeding"] == [30]
    speeding = next(e for e in events if e.type == "speeding")
    assert speeding.attributes["speed_kmh"] == pytest.approx(72, abs=1)
    congestion = next(e for e in events if e.type == "congestion")
    assert (congestion.t - T0).total_seconds() == pytest.approx(4, abs=0.15)
    crowd = next(e for e in events if e.type == "crowd")
    assert crowd.attributes["people"] == 6


def test_zone_from_wgs84_lands_in_the_ground_frame() -> None:
    frame = GroundFrame(105.0, 18.0)
    corner = frame.to_wgs84([[10, 10]])[0]
    from shapely.geometry import Polygon

    poly = Polygon([(105.0, 18.0), (corner[0], 18.0), tuple(corner), (105.0, corner[1])])
    z = zone_from_wgs84(1, "z", "forbidden", poly, {}, frame)
    assert z.geometry.area == pytest.approx(100, rel=1e-3)
    with pytest.raises(ValueError, match="unknown zone kind"):
        zone_from_wgs84(1, "z", "moat", poly, {}, frame)


def test_motion_gate_skips_static_frames_but_keeps_tracks_alive() -> None:
    scene = street_scene()
    cal = scene.calibration
    oracle = ReplayDetector([scene.truth(i) for i in range(scene.n_frames)])
    pipe = Pipeline(
        oracle,
        ByteTrack(frame_rate=scene.fps),
        cal,
        RuleEngine(street_zones(), cal.frame),
        gate=MotionGate(),
    )
    for i, (frame, t) in enumerate(scene.frames()):
        oracle.index = i
        pipe.process(frame, t)
    assert oracle.calls == pipe.stats.detector_calls
    # 77 of the 260 frames are empty: the gate skips them, keep-alives aside.
    assert pipe.stats.detector_calls < 0.80 * pipe.stats.frames
    assert pipe.stats.by_type == {
        "detection": 5,
        "line_crossing": 4,
        "wrong_way": 1,
        "intrusion": 1,
    }
