"""Box arithmetic: IoU and class-aware non-maximum suppression (pure numpy)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def iou_matrix(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """IoU of every box in `a` (N×4) against every box in `b` (M×4), x1,y1,x2,y2."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=np.float64)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.asarray(np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0))


def nms(
    boxes: NDArray[np.float64],
    scores: NDArray[np.float64],
    class_ids: NDArray[np.int64] | None = None,
    iou_threshold: float = 0.45,
    max_det: int = 300,
) -> NDArray[np.intp]:
    """Greedy NMS, per class when `class_ids` is given; indices kept, best score first."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.intp)
    work = boxes
    if class_ids is not None:
        # Shifting each class to its own region keeps classes from suppressing each other.
        offset = (np.max(boxes) + 1.0) * np.asarray(class_ids, dtype=np.float64)
        work = boxes + offset[:, None]
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while len(order) and len(keep) < max_det:
        i = int(order[0])
        keep.append(i)
        if len(order) == 1:
            break
        ious = iou_matrix(work[i : i + 1], work[order[1:]])[0]
        order = order[1:][ious <= iou_threshold]
    return np.asarray(keep, dtype=np.intp)
