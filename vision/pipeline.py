"""One camera's per-frame pipeline: gate → detect → track → geolocate → rules (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from vision.geo import Calibration, foot_points
from vision.motion import MotionGate
from vision.plugins import Detector, Frame, Tracker
from vision.rules import RuleEngine
from vision.types import Detections, Observation, Track, VisionEvent


@dataclass
class FrameResult:
    """What the pipeline made of one frame."""

    t: datetime
    detector_ran: bool
    detections: Detections
    tracks: list[Track]
    observations: list[Observation]
    events: list[VisionEvent]


@dataclass
class PipelineStats:
    """Counters for monitoring and the benchmark."""

    frames: int = 0
    detector_calls: int = 0
    events: int = 0
    by_type: dict[str, int] = field(default_factory=dict)


class Pipeline:
    """Runs the stages for each frame; the caller owns the source and the outputs."""

    def __init__(
        self,
        detector: Detector,
        tracker: Tracker,
        calibration: Calibration | None,
        rules: RuleEngine | None,
        gate: MotionGate | None = None,
        keepalive_s: float = 0.5,
        max_ground_range_m: float = 500.0,
        detect_interval_s: float = 0.0,
    ) -> None:
        self.detector = detector
        self.tracker = tracker
        self.calibration = calibration
        self.rules = rules
        self.gate = gate
        self.keepalive_s = keepalive_s
        self.max_ground_range_m = max_ground_range_m
        self.detect_interval_s = detect_interval_s
        self.stats = PipelineStats()
        self._last_detect: float | None = None
        self._origin = np.zeros(2)
        if calibration is not None:
            fr = calibration.frame
            self._origin = fr.to_ground([[fr.origin_lon, fr.origin_lat]])[0]
        bind = getattr(detector, "bind_calibration", None)
        if callable(bind):
            bind(calibration)

    def _should_detect(self, frame: Frame, now: float) -> bool:
        """Run the detector on its schedule while there is motion, and at least every
        `keepalive_s` while tracks live; the gate sees every frame (its background model
        must)."""
        if self.gate is None or not getattr(self.detector, "gated", True):
            return self._due(now, self.detect_interval_s)
        moving = self.gate.moving(frame)
        if moving:
            return self._due(now, self.detect_interval_s)
        has_tracks = self.rules is not None and bool(self.rules.present())
        return has_tracks and self._due(now, max(self.keepalive_s, self.detect_interval_s))

    def _due(self, now: float, interval: float) -> bool:
        # A small slack so a 0.2 s schedule at 25 fps runs every 5th frame, not every 6th.
        return self._last_detect is None or now - self._last_detect >= interval - 1e-3

    def process(self, frame: Frame, t: datetime) -> FrameResult:
        """Process one frame taken at time `t`."""
        now = t.timestamp()
        self.stats.frames += 1
        ran = self._should_detect(frame, now)
        dets = Detections.empty()
        tracks: list[Track] = []
        if ran:
            self.stats.detector_calls += 1
            self._last_detect = now
            dets = self.detector.detect(frame)
            tracks = self.tracker.update(dets)
        else:
            # Time passes for the tracker too: boxes move on their predicted paths and lost
            # tracks expire on schedule.
            tracks = self.tracker.predict()
        observations = self.geolocate(tracks)
        events = self.rules.step(t, observations) if self.rules is not None else []
        self.stats.events += len(events)
        for e in events:
            self.stats.by_type[e.type] = self.stats.by_type.get(e.type, 0) + 1
        return FrameResult(t, ran, dets, tracks, observations, events)

    def geolocate(self, tracks: list[Track]) -> list[Observation]:
        """Each track's foot point on the ground, in metres and WGS84."""
        if not tracks or self.calibration is None:
            return []
        boxes = np.array([tr.box for tr in tracks], dtype=np.float64)
        feet = foot_points(boxes)
        valid = self.calibration.below_horizon(feet)
        n = len(tracks)
        # One homography call for the foot points and both bottom corners of every box.
        corners = np.vstack([feet, boxes[:, [0, 3]], boxes[:, [2, 3]]])
        mapped = self.calibration.image_to_ground(corners)
        ground = mapped[:n]
        widths = np.linalg.norm(mapped[2 * n :] - mapped[n : 2 * n], axis=1)
        lonlat = self.calibration.frame.to_wgs84(ground)
        out: list[Observation] = []
        for i, tr in enumerate(tracks):
            x, y = float(ground[i, 0]), float(ground[i, 1])
            if (
                not valid[i]
                or not np.isfinite([x, y]).all()
                or np.hypot(x - self._origin[0], y - self._origin[1]) > self.max_ground_range_m
            ):
                continue  # above the horizon or absurdly far: not a ground position
            out.append(
                Observation(
                    tr.track_id,
                    tr.label,
                    tr.score,
                    tr.box,
                    x,
                    y,
                    float(lonlat[i, 0]),
                    float(lonlat[i, 1]),
                    float(widths[i]),
                )
            )
        return out
