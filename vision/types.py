"""Value types passed between pipeline stages."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

VEHICLE_CLASSES = frozenset(
    {"vehicle", "car", "motorcycle", "motorbike", "truck", "bus", "bicycle"}
)
PERSON_CLASSES = frozenset({"person", "pedestrian", "people"})


@dataclass(frozen=True)
class Detections:
    """Boxes of one frame: x1,y1,x2,y2 pixels (N×4), confidences (N) and class names (N)."""

    boxes: NDArray[np.float64]
    scores: NDArray[np.float64]
    labels: tuple[str, ...]

    @staticmethod
    def empty() -> Detections:
        """No detections."""
        return Detections(np.zeros((0, 4)), np.zeros(0), ())

    @staticmethod
    def of(boxes: Any, scores: Any, labels: Any) -> Detections:
        """Build from array-likes, normalising dtypes and shapes."""
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        s = np.asarray(scores, dtype=np.float64).reshape(-1)
        lab = tuple(str(x) for x in labels)
        if not (len(b) == len(s) == len(lab)):
            raise ValueError("boxes, scores and labels must have the same length")
        return Detections(b, s, lab)

    def __len__(self) -> int:
        return len(self.labels)

    def select(self, keep: NDArray[np.bool_] | NDArray[np.intp]) -> Detections:
        """The subset picked by a boolean mask or index array."""
        idx = np.flatnonzero(keep) if keep.dtype == np.bool_ else np.asarray(keep)
        return Detections(self.boxes[idx], self.scores[idx], tuple(self.labels[i] for i in idx))

    def scaled(self, factor: float) -> Detections:
        """Boxes multiplied by `factor` (for detectors run on a resized frame)."""
        return Detections(self.boxes * factor, self.scores, self.labels)


@dataclass(frozen=True)
class Track:
    """A tracked object in one frame."""

    track_id: int
    box: tuple[float, float, float, float]
    score: float
    label: str


@dataclass(frozen=True)
class Observation:
    """A track placed on the ground: local metres and WGS84."""

    track_id: int
    label: str
    score: float
    box: tuple[float, float, float, float]
    x: float
    y: float
    lon: float
    lat: float
    width_m: float


@dataclass
class VisionEvent:
    """Something a camera saw: a detection or a rule that fired."""

    type: str
    t: datetime
    class_name: str | None = None
    confidence: float | None = None
    track_id: int | None = None
    lon: float | None = None
    lat: float | None = None
    zone_id: int | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    box: tuple[float, float, float, float] | None = None


@dataclass(frozen=True)
class LineCount:
    """Objects of one class that crossed one counting line during one minute."""

    zone_id: int
    minute: datetime
    class_name: str
    count: int
