"""Synthetic street scenes: objects moving along known ground paths, seen through a known camera.

Used by the tests (exact counts and positions are known) and by bench/vision (a
controllable amount of motion). Pure: returns frames as arrays.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import cv2
import numpy as np

from vision.geo import Calibration, GroundFrame, apply_homography, pose_homography
from vision.plugins import Frame
from vision.types import Detections

ORIGIN = (105.6813, 18.6796)  # a street corner in Vinh
T0 = datetime(2026, 11, 22, 3, 0, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Mover:
    """An object moving at constant velocity on the ground between t_start and t_end (s)."""

    name: str
    label: str
    width_m: float
    aspect: float  # image height / image width of its box
    start: tuple[float, float]
    velocity: tuple[float, float]
    t_start: float
    t_end: float
    color: tuple[int, int, int] = (40, 40, 40)

    def position(self, t: float) -> tuple[float, float] | None:
        """Ground position at time t, or None when not in the scene."""
        if not (self.t_start <= t <= self.t_end):
            return None
        dt = t - self.t_start
        return (self.start[0] + self.velocity[0] * dt, self.start[1] + self.velocity[1] * dt)


@dataclass(frozen=True)
class Scene:
    """A camera, its true calibration and the objects it sees."""

    width: int
    height: int
    fps: float
    duration_s: float
    calibration: Calibration
    movers: tuple[Mover, ...]
    seed: int = 7

    @property
    def n_frames(self) -> int:
        """Number of frames in the clip."""
        return int(round(self.duration_s * self.fps))

    def time(self, i: int) -> datetime:
        """Timestamp of frame i."""
        return T0 + timedelta(seconds=i / self.fps)

    def background(self) -> Frame:
        """A static textured road scene (MOG2 needs texture, not a flat colour)."""
        rng = np.random.default_rng(self.seed)
        noise = rng.integers(90, 140, size=(self.height, self.width, 3), dtype=np.uint8)
        bg = cv2.GaussianBlur(noise, (5, 5), 0)
        return np.asarray(bg, dtype=np.uint8)

    def boxes_at(self, t: float) -> list[tuple[Mover, tuple[float, float, float, float]]]:
        """Image box (x1, y1, x2, y2) of each object visible at time t."""
        out = []
        for m in self.movers:
            p = m.position(t)
            if p is None:
                continue
            left, right = self.calibration.ground_to_image(
                [[p[0] - m.width_m / 2, p[1]], [p[0] + m.width_m / 2, p[1]]]
            )
            foot = self.calibration.ground_to_image([p])[0]
            w = abs(right[0] - left[0])
            box = (foot[0] - w / 2, foot[1] - w * m.aspect, foot[0] + w / 2, foot[1])
            out.append((m, box))
        return out

    def truth(self, i: int) -> Detections:
        """The true boxes of frame i, as a perfect detector would report them."""
        found = self.boxes_at(i / self.fps)
        return Detections.of(
            [b for _, b in found] or np.zeros((0, 4)),
            [0.9] * len(found),
            [m.label for m, _ in found],
        )

    def frames(self) -> Iterator[tuple[Frame, datetime]]:
        """Render the clip."""
        bg = self.background()
        for i in range(self.n_frames):
            t = i / self.fps
            img = bg.copy()
            # Far objects first, so nearer ones are drawn on top.
            for m, (x1, y1, x2, y2) in sorted(self.boxes_at(t), key=lambda mb: mb[1][3]):
                # The foot point is the box's bottom edge: the last filled row is y2 - 1.
                cv2.rectangle(
                    img,
                    (int(round(x1)), int(round(y1))),
                    (int(round(x2)) - 1, int(round(y2)) - 1),
                    m.color,
                    thickness=-1,
                )
            yield img, self.time(i)


def street_calibration(width: int = 640, height: int = 352) -> Calibration:
    """The true calibration of the synthetic camera: 8 m up, looking north, 60° FOV."""
    frame = GroundFrame(*ORIGIN)
    h = pose_homography(width, height, 0.0, 60.0, 8.0, 25.0)
    return Calibration(h, frame, 0.0, 0.0)


def control_points(
    cal: Calibration, pixels: Sequence[tuple[float, float]]
) -> list[tuple[float, float, float, float]]:
    """(u, v, lon, lat) of pixels through a calibration: control points for fit tests."""
    lonlat = cal.frame.to_wgs84(apply_homography(cal.homography, pixels))
    return [(u, v, float(lo), float(la)) for (u, v), (lo, la) in zip(pixels, lonlat, strict=True)]


def street_scene(fps: float = 10.0) -> Scene:
    """A two-lane road running north: traffic both ways, one wrong-way car, one intruder.

    Ground truth: lane W (x -4..0) flows north, lane E (x 0..4) flows south; a counting line
    at y = 25 m; a forbidden zone x 5..9, y 14..20 on the east verge.
    """
    movers = (
        Mover("car_north", "car", 1.8, 0.7, (-2.0, 12.0), (0.0, 8.0), 2.0, 5.0, (30, 30, 200)),
        Mover("car_south", "car", 1.8, 0.7, (2.0, 38.0), (0.0, -8.0), 6.0, 9.0, (220, 60, 40)),
        Mover(
            "moto_north",
            "motorcycle",
            0.8,
            1.4,
            (-1.5, 12.0),
            (0.0, 6.0),
            10.0,
            14.0,
            (30, 200, 220),
        ),
        Mover("wrong_way", "car", 1.8, 0.7, (-2.0, 38.0), (0.0, -7.0), 15.0, 18.5, (250, 250, 250)),
        Mover(
            "intruder", "motorcycle", 0.7, 2.4, (9.8, 17.0), (-1.5, 0.0), 19.5, 24.0, (20, 230, 20)
        ),
    )
    return Scene(640, 352, fps, 26.0, street_calibration(), movers)


class ReplayDetector:
    """Replays prepared detections frame by frame: an oracle for testing later stages."""

    name = "replay"

    def __init__(self, per_frame: Sequence[Detections]) -> None:
        self.per_frame = list(per_frame)
        self.calls = 0
        self.index = 0

    def detect(self, frame: Frame) -> Detections:
        """The prepared detections of the current frame index."""
        self.calls += 1
        i = self.index
        return self.per_frame[i] if i < len(self.per_frame) else Detections.empty()
