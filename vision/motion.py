"""MOG2 background subtraction: the motion gate and the `motion` blob detector."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from vision.geo import Calibration, ground_widths
from vision.plugins import DETECTORS, Frame
from vision.types import Detections

# Ground-width classes of motion blobs: a blob narrower than the bound gets the label.
DEFAULT_SIZE_CLASSES: tuple[tuple[float, str], ...] = (
    (1.3, "motorcycle"),
    (2.6, "car"),
    (float("inf"), "truck"),
)


def _downscale(frame: Frame, width: int) -> tuple[Frame, float]:
    """Frame resized to `width` pixels wide (never up), and the factor back to full size."""
    h, w = frame.shape[:2]
    if w <= width:
        return frame, 1.0
    scale = width / w
    small = cv2.resize(frame, (width, round(h * scale)), interpolation=cv2.INTER_AREA)
    return np.asarray(small, dtype=np.uint8), 1.0 / scale


class MotionGate:
    """Says whether a frame has enough motion to be worth running an expensive detector.

    MOG2 on a small copy costs about a millisecond, so gating pays off as soon
    as the detector costs more than that.
    """

    def __init__(
        self,
        min_fraction: float = 0.0005,
        work_width: int = 320,
        history: int = 300,
        var_threshold: float = 25.0,
        warmup_frames: int = 5,
    ) -> None:
        self.min_fraction = min_fraction
        self.work_width = work_width
        self.warmup_frames = warmup_frames
        self._mog = cv2.createBackgroundSubtractorMOG2(
            history=history, varThreshold=var_threshold, detectShadows=False
        )
        self._kernel = np.ones((3, 3), np.uint8)
        self.frames_seen = 0
        self.last_fraction = 0.0

    def moving(self, frame: Frame) -> bool:
        """True when the foreground fraction of this frame reaches `min_fraction`."""
        small, _ = _downscale(frame, self.work_width)
        # Colour, not grey: a red car on grey asphalt can have the asphalt's luminance.
        mask = self._mog.apply(small)
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, self._kernel)
        self.frames_seen += 1
        self.last_fraction = float(np.count_nonzero(mask)) / float(mask.size)
        if self.frames_seen <= self.warmup_frames:
            return True
        return self.last_fraction >= self.min_fraction


class MotionDetector:
    """Moving blobs from MOG2, kept when their ground width is plausible for a road user."""

    name = "motion"
    gated = False  # it is its own gate, and its background model must see every frame

    def __init__(
        self,
        calibration: Calibration | None = None,
        min_width_m: float = 0.4,
        max_width_m: float | None = 4.0,
        min_area_px: int = 60,
        work_width: int = 640,
        history: int = 500,
        var_threshold: float = 32.0,
        close_px: int = 7,
        size_classes: Sequence[tuple[float, str]] = DEFAULT_SIZE_CLASSES,
        label: str | None = None,
    ) -> None:
        self.calibration = calibration
        self.min_width_m = min_width_m
        self.max_width_m = max_width_m
        self.min_area_px = min_area_px
        self.work_width = work_width
        self.size_classes = tuple(size_classes)
        self.label = label
        # Greyscale without shadow detection: 2-3× cheaper than colour with shadows, and the
        # ground-size filter already drops most shadow-only blobs.
        self._mog = cv2.createBackgroundSubtractorMOG2(
            history=history, varThreshold=var_threshold, detectShadows=False
        )
        self._open = np.ones((3, 3), np.uint8)
        self._close = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (close_px, close_px))

    def bind_calibration(self, calibration: Calibration | None) -> None:
        """Use this calibration for the ground-size filter."""
        self.calibration = calibration

    def foreground(self, frame: Frame) -> tuple[NDArray[np.uint8], float]:
        """Cleaned foreground mask of the (downscaled) frame and the factor back to full size."""
        small, back = _downscale(frame, self.work_width)
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small
        mask = self._mog.apply(grey)
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, self._open)
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, self._close)
        return np.asarray(mask, dtype=np.uint8), back

    def detect(self, frame: Frame) -> Detections:
        """Size-filtered motion blobs, labelled by their ground width."""
        mask, back = self.foreground(frame)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        boxes: list[list[float]] = []
        fills: list[float] = []
        for c in contours:
            area = cv2.contourArea(c)
            if area * back * back < self.min_area_px:
                continue
            x, y, w, h = cv2.boundingRect(c)
            boxes.append([x * back, y * back, (x + w) * back, (y + h) * back])
            fills.append(min(1.0, area / max(w * h, 1)))
        if not boxes:
            return Detections.empty()
        b = np.asarray(boxes, dtype=np.float64)
        scores = np.clip(0.5 + 0.5 * np.asarray(fills), 0.0, 1.0)
        if self.calibration is None:
            return Detections.of(b, scores, [self.label or "vehicle"] * len(b))
        widths = ground_widths(self.calibration, b)
        keep = widths >= self.min_width_m
        # A pose-only calibration guesses height and tilt: its widths of near vehicles run
        # 1.5-2x too wide, so an upper bound would drop exactly the vehicles nearest the
        # camera. The bound applies only to a calibration fitted from control points.
        if self.max_width_m is not None and not self.calibration.pose_only:
            keep &= widths <= self.max_width_m
        labels = [self._label_for(w) for w in widths]
        return Detections.of(
            b[keep], scores[keep], [lab for lab, k in zip(labels, keep, strict=True) if k]
        )

    def _label_for(self, width_m: float) -> str:
        if self.label:
            return self.label
        for bound, label in self.size_classes:
            if width_m < bound:
                return label
        return self.size_classes[-1][1]


class MotionConfig(BaseModel):
    """Parameters of the `motion` detector (an explicit fallback, never the default)."""

    model_config = ConfigDict(extra="forbid")

    min_width_m: float = Field(0.4, ge=0.0)
    max_width_m: float | None = Field(
        4.0, gt=0.0, description="Applied only with a calibration fitted from control points"
    )
    min_area_px: int = Field(60, ge=1)
    work_width: int = Field(640, ge=64, le=4096)
    history: int = Field(500, ge=10)
    var_threshold: float = Field(32.0, gt=0.0)
    close_px: int = Field(7, ge=1, le=51)
    label: str | None = None


@DETECTORS.register("motion", MotionConfig)
def _make_motion(
    config: MotionConfig, calibration: Calibration | None = None, **_runtime: Any
) -> MotionDetector:
    return MotionDetector(calibration=calibration, **config.model_dump())
