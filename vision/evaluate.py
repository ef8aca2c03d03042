"""Detector accuracy against Pascal VOC boxes: precision, recall and AP@0.5 (pure but for reading).

AP is the VOC all-point interpolated area under the precision/recall curve, with detections
matched greedily by score to unmatched true boxes of the same class at IoU ≥ 0.5. "vehicles"
pools every vehicle class, ignoring class names (does the detector find the vehicle?).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from vision.boxes import iou_matrix
from vision.types import Detections
from vision.voc import VOC_VEHICLE_CLASSES, read_voc

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass
class ClassScore:
    """Precision and recall at the detector's own threshold, and AP@0.5 over all scores."""

    truths: int
    detections: int
    true_positives: int
    ap50: float

    @property
    def precision(self) -> float:
        """Share of detections that match a true box."""
        return self.true_positives / self.detections if self.detections else 0.0

    @property
    def recall(self) -> float:
        """Share of true boxes found."""
        return self.true_positives / self.truths if self.truths else 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures."""
        return {
            "truths": self.truths,
            "detections": self.detections,
            "precision": round(self.precision, 3),
            "recall": round(self.recall, 3),
            "ap50": round(self.ap50, 3),
        }


def _matches(
    found: Detections, truth: Detections, iou_threshold: float
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Scores of the found boxes and whether each is a true positive (greedy by score)."""
    order = np.argsort(-found.scores, kind="stable")
    tp = np.zeros(len(found), dtype=bool)
    if len(truth) and len(found):
        iou = iou_matrix(found.boxes[order], truth.boxes)
        used = np.zeros(len(truth), dtype=bool)
        for k in range(len(order)):
            cand = np.where(used, -1.0, iou[k])
            j = int(np.argmax(cand))
            if cand[j] >= iou_threshold:
                used[j] = True
                tp[k] = True
    return found.scores[order], tp


def average_precision(scores: NDArray[np.float64], tp: NDArray[np.bool_], truths: int) -> float:
    """VOC all-point interpolated AP of scored detections (pooled over images)."""
    if truths == 0:
        return 0.0
    order = np.argsort(-scores, kind="stable")
    hits = tp[order].astype(np.float64)
    ctp = np.cumsum(hits)
    cfp = np.cumsum(1.0 - hits)
    recall = np.concatenate([[0.0], ctp / truths, [1.0]])
    precision = np.concatenate([[1.0], ctp / np.maximum(ctp + cfp, 1e-12), [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.flatnonzero(recall[1:] != recall[:-1])
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def _only(dets: Detections, names: set[str]) -> Detections:
    return dets.select(np.array([lab in names for lab in dets.labels], dtype=bool))


def score_images(
    pairs: Iterable[tuple[Detections, Detections]],
    min_score: float = 0.0,
    iou_threshold: float = 0.5,
) -> dict[str, ClassScore]:
    """Per class and pooled `vehicles` scores of (found, truth) pairs, one pair per image.

    AP uses every found box; precision and recall count only boxes scoring ≥ `min_score`.
    """
    pairs = list(pairs)
    classes = sorted({lab for _, t in pairs for lab in t.labels} & VOC_VEHICLE_CLASSES)
    groups: dict[str, set[str]] = {c: {c} for c in classes}
    groups["vehicles"] = set(VOC_VEHICLE_CLASSES)
    out: dict[str, ClassScore] = {}
    for name, members in groups.items():
        all_s: list[NDArray[np.float64]] = []
        all_tp: list[NDArray[np.bool_]] = []
        truths = 0
        for found, truth in pairs:
            f, t = _only(found, members), _only(truth, members)
            s, tp = _matches(f, t, iou_threshold)
            all_s.append(s)
            all_tp.append(tp)
            truths += len(t)
        scores = np.concatenate(all_s) if all_s else np.zeros(0)
        tps = np.concatenate(all_tp) if all_tp else np.zeros(0, dtype=bool)
        above = scores >= min_score
        out[name] = ClassScore(
            truths=truths,
            detections=int(above.sum()),
            true_positives=int(tps[above].sum()),
            ap50=average_precision(scores, tps, truths),
        )
    return out


def annotated_images(directory: Path, split: str | None = None) -> list[Path]:
    """Images that have a VOC file beside them, optionally only those of a named split.

    Splits are listed in `splits.json` in the directory: {"tune": [...], "report": [...]}.
    """
    images = sorted(
        p
        for p in directory.iterdir()
        if p.suffix.lower() in IMAGE_SUFFIXES and p.with_suffix(".xml").exists()
    )
    if split is None:
        return images
    spec = json.loads((directory / "splits.json").read_text())
    if split not in spec:
        raise ValueError(f"{directory / 'splits.json'}: no split '{split}'; has {sorted(spec)}")
    wanted = set(spec[split])
    return [p for p in images if p.stem in wanted]


def evaluate_dir(
    detect: Callable[[NDArray[np.uint8]], Detections],
    directory: Path,
    split: str | None = None,
    min_score: float = 0.0,
) -> tuple[dict[str, ClassScore], int]:
    """Run `detect` on every annotated image of a directory; scores and the image count."""
    pairs = []
    images = annotated_images(directory, split)
    for img_path in images:
        image = cv2.imread(str(img_path))
        if image is None:
            raise ValueError(f"{img_path}: not a readable image")
        truth, _ = read_voc(img_path.with_suffix(".xml"))
        pairs.append((detect(np.asarray(image, dtype=np.uint8)), truth))
    return score_images(pairs, min_score), len(images)
