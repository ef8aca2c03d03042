"""ByteTrack (Zhang et al., ECCV 2022): Kalman-predicted tracks matched by IoU in two passes.

supervision 0.26+ moved ByteTrack out into the `trackers` package, which requires the
non-headless opencv-python 5 and would clash with opencv-python-headless<5; this is the
reference algorithm (high-score pass, low-score pass, unconfirmed pass) in plain numpy/scipy.
It returns supervision-style results: each output track carries this frame's detection box.
"""

from __future__ import annotations

from collections import Counter
from enum import IntEnum
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field
from scipy.optimize import linear_sum_assignment

from vision.boxes import iou_matrix
from vision.plugins import TRACKERS
from vision.types import Detections, Track

F64 = NDArray[np.float64]


class KalmanXYAH:
    """Constant-velocity Kalman filter on (centre x, centre y, aspect ratio, height).

    Plain numpy on 8×8/4×4 matrices: at a handful of tracks per frame, library call
    overhead (scipy's checked wrappers) costs more than the arithmetic.
    """

    def __init__(self) -> None:
        self._motion = np.eye(8)
        for i in range(4):
            self._motion[i, 4 + i] = 1.0
        self._motion_t = self._motion.T.copy()
        self._std_pos = 1.0 / 20
        self._std_vel = 1.0 / 160

    def initiate(self, xyah: F64) -> tuple[F64, F64]:
        """Mean and covariance of a new track."""
        mean = np.r_[xyah, np.zeros(4)]
        h = xyah[3]
        p, v = 2 * self._std_pos * h, 10 * self._std_vel * h
        std = np.array([p, p, 1e-2, p, v, v, 1e-5, v])
        return mean, np.diag(std * std)

    def predict(self, mean: F64, cov: F64) -> tuple[F64, F64]:
        """One step ahead."""
        h = mean[3]
        p, v = self._std_pos * h, self._std_vel * h
        q = np.array([p, p, 1e-2, p, v, v, 1e-5, v])
        new_cov = self._motion @ cov @ self._motion_t
        new_cov[np.diag_indices(8)] += q * q
        return self._motion @ mean, new_cov

    def update(self, mean: F64, cov: F64, xyah: F64) -> tuple[F64, F64]:
        """Correct with a measurement (the observation matrix picks the first 4 states)."""
        h = mean[3]
        p = self._std_pos * h
        proj_cov = cov[:4, :4].copy()
        proj_cov[np.diag_indices(4)] += np.array([p, p, 1e-1, p]) ** 2
        # gain = cov Hᵀ S⁻¹, and S is symmetric: solve S gainᵀ = H cov.
        gain = np.linalg.solve(proj_cov, cov[:4, :]).T
        new_mean = mean + gain @ (xyah - mean[:4])
        new_cov = cov - gain @ proj_cov @ gain.T
        return new_mean, new_cov


def _xyxy_to_xyah(b: F64) -> F64:
    w, h = b[2] - b[0], b[3] - b[1]
    return np.array([b[0] + w / 2, b[1] + h / 2, w / max(h, 1e-6), h], dtype=np.float64)


def _xyah_to_xyxy(m: F64) -> F64:
    w, h = m[2] * m[3], m[3]
    return np.array([m[0] - w / 2, m[1] - h / 2, m[0] + w / 2, m[1] + h / 2], dtype=np.float64)


class _State(IntEnum):
    NEW = 0
    TRACKED = 1
    LOST = 2
    REMOVED = 3


class _STrack:
    def __init__(self, box: F64, score: float, label: str) -> None:
        self.box = box
        self.score = score
        self.labels: Counter[str] = Counter({label: 1})
        self.mean: F64 | None = None
        self.cov: F64 | None = None
        self.track_id = 0
        self.state = _State.NEW
        self.activated = False
        self.frame_id = 0
        self.start_frame = 0
        self.matched_now = False

    @property
    def predicted_box(self) -> F64:
        return self.box if self.mean is None else _xyah_to_xyxy(self.mean)

    @property
    def label(self) -> str:
        return self.labels.most_common(1)[0][0]

    def activate(self, kf: KalmanXYAH, track_id: int, frame_id: int) -> None:
        self.track_id = track_id
        self.mean, self.cov = kf.initiate(_xyxy_to_xyah(self.box))
        self.state = _State.TRACKED
        self.activated = frame_id == 1
        self.frame_id = self.start_frame = frame_id
        self.matched_now = True

    def update(self, kf: KalmanXYAH, det: _STrack, frame_id: int) -> None:
        assert self.mean is not None and self.cov is not None
        self.mean, self.cov = kf.update(self.mean, self.cov, _xyxy_to_xyah(det.box))
        self.box = det.box
        self.score = det.score
        self.labels.update(det.labels)
        self.state = _State.TRACKED
        self.activated = True
        self.frame_id = frame_id
        self.matched_now = True


def _assign(cost: F64, threshold: float) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Hungarian assignment, rejecting pairs whose cost exceeds `threshold`."""
    n, m = cost.shape
    if n == 0 or m == 0:
        return [], list(range(n)), list(range(m))
    if n == 1 or m == 1:
        # One track or one box: the best pair is the minimum; no solver call needed.
        r, c = np.unravel_index(int(np.argmin(cost)), cost.shape)
        rows, cols = np.array([r]), np.array([c])
    else:
        rows, cols = linear_sum_assignment(cost)
    matches = [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if cost[r, c] <= threshold]
    mr = {r for r, _ in matches}
    mc = {c for _, c in matches}
    return matches, [i for i in range(n) if i not in mr], [j for j in range(m) if j not in mc]


class ByteTrack:
    """Two-pass IoU tracker; low-confidence boxes only extend existing tracks."""

    name = "bytetrack"

    def __init__(
        self,
        track_thresh: float = 0.5,
        low_thresh: float = 0.1,
        match_thresh: float = 0.8,
        new_track_thresh: float | None = None,
        lost_buffer: int = 30,
        frame_rate: float = 30.0,
        fuse_score: bool = True,
    ) -> None:
        self.track_thresh = track_thresh
        self.low_thresh = low_thresh
        self.match_thresh = match_thresh
        self.new_track_thresh = track_thresh + 0.1 if new_track_thresh is None else new_track_thresh
        self.max_lost = max(1, int(round(frame_rate / 30.0 * lost_buffer)))
        self.fuse_score = fuse_score
        self.kf = KalmanXYAH()
        self.frame_id = 0
        self._next_id = 1
        self.tracked: list[_STrack] = []
        self.lost: list[_STrack] = []

    def _cost(self, tracks: list[_STrack], dets: list[_STrack], fuse: bool) -> F64:
        if not tracks or not dets:
            return np.zeros((len(tracks), len(dets)))
        iou = iou_matrix(
            np.array([t.predicted_box for t in tracks]), np.array([d.box for d in dets])
        )
        if fuse:
            iou = iou * np.array([d.score for d in dets])[None, :]
        return 1.0 - iou

    def _advance(self) -> list[_STrack]:
        """One frame of time: every confirmed or lost track moves by its Kalman prediction."""
        self.frame_id += 1
        for t in self.tracked + self.lost:
            t.matched_now = False
        pool = [t for t in self.tracked if t.activated] + self.lost
        for t in pool:
            assert t.mean is not None and t.cov is not None
            if t.state != _State.TRACKED:
                t.mean[7] = 0.0  # a lost track's height velocity is not trusted
            t.mean, t.cov = self.kf.predict(t.mean, t.cov)
        return pool

    def predict(self) -> list[Track]:
        """Advance one frame without detections: confirmed tracks at their predicted boxes.

        The detector runs on a schedule; between its runs this carries the boxes along, so
        rules see every track move smoothly and nothing is marked lost for want of a look.
        """
        self._advance()
        self.lost = [t for t in self.lost if self.frame_id - t.frame_id <= self.max_lost]
        out = []
        for t in self.tracked:
            if not t.activated or t.mean is None:
                continue
            b = _xyah_to_xyxy(t.mean)
            out.append(
                Track(
                    t.track_id,
                    (float(b[0]), float(b[1]), float(b[2]), float(b[3])),
                    t.score,
                    t.label,
                )
            )
        return out

    def update(self, detections: Detections) -> list[Track]:
        """Advance one frame with this frame's detections; return the confirmed tracks."""
        pool = self._advance()
        fid = self.frame_id
        boxes, scores, labels = detections.boxes, detections.scores, detections.labels
        high = [
            _STrack(boxes[i], float(scores[i]), labels[i])
            for i in range(len(scores))
            if scores[i] >= self.track_thresh
        ]
        low = [
            _STrack(boxes[i], float(scores[i]), labels[i])
            for i in range(len(scores))
            if self.low_thresh < scores[i] < self.track_thresh
        ]
        unconfirmed = [t for t in self.tracked if not t.activated]

        matches, u_pool, u_high = _assign(
            self._cost(pool, high, self.fuse_score), self.match_thresh
        )
        for ti, di in matches:
            pool[ti].update(self.kf, high[di], fid)

        remaining = [pool[i] for i in u_pool if pool[i].state == _State.TRACKED]
        matches, u_rem, _ = _assign(self._cost(remaining, low, False), 0.5)
        for ti, di in matches:
            remaining[ti].update(self.kf, low[di], fid)
        for i in u_rem:
            remaining[i].state = _State.LOST

        left = [high[i] for i in u_high]
        matches, u_unconf, u_left = _assign(self._cost(unconfirmed, left, self.fuse_score), 0.7)
        for ti, di in matches:
            unconfirmed[ti].update(self.kf, left[di], fid)
        for i in u_unconf:
            unconfirmed[i].state = _State.REMOVED

        for i in u_left:
            det = left[i]
            if det.score < self.new_track_thresh:
                continue
            det.activate(self.kf, self._next_id, fid)
            self._next_id += 1
            self.tracked.append(det)

        everyone = {id(t): t for t in self.tracked + self.lost + pool}.values()
        self.tracked = [t for t in everyone if t.state == _State.TRACKED]
        self.lost = [
            t for t in everyone if t.state == _State.LOST and fid - t.frame_id <= self.max_lost
        ]
        return [
            Track(
                t.track_id,
                (float(t.box[0]), float(t.box[1]), float(t.box[2]), float(t.box[3])),
                t.score,
                t.label,
            )
            for t in self.tracked
            if t.activated and t.matched_now
        ]


class ByteTrackConfig(BaseModel):
    """Parameters of the `bytetrack` tracker."""

    model_config = ConfigDict(extra="forbid")

    track_thresh: float = Field(0.5, gt=0.0, lt=1.0)
    low_thresh: float = Field(0.1, ge=0.0, lt=1.0)
    match_thresh: float = Field(0.8, gt=0.0, le=1.0)
    new_track_thresh: float | None = Field(None, gt=0.0, le=1.0)
    lost_buffer: int = Field(30, ge=1, description="Frames (at 30 fps) a lost track is kept")
    fuse_score: bool = True


@TRACKERS.register("bytetrack", ByteTrackConfig)
def _make_bytetrack(
    config: ByteTrackConfig, frame_rate: float = 30.0, **_runtime: Any
) -> ByteTrack:
    return ByteTrack(frame_rate=frame_rate, **config.model_dump())
