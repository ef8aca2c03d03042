"""Detector plugins: `onnx_yolo` (a deployment's own YOLO ONNX); importing this module
registers every detector (`ssd_coco`, `motion`, `onnx_yolo`)."""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

# Import for its registration side effect, so every detector is known once this module is.
from vision import motion as _motion  # noqa: F401
from vision import ssd as _ssd  # noqa: F401
from vision.boxes import nms
from vision.plugins import DETECTORS, Frame
from vision.types import Detections


@dataclass(frozen=True)
class Letterbox:
    """How a frame was fitted into the model input: scale, then padding left/top."""

    ratio: float
    pad_x: float
    pad_y: float

    def to_frame(self, boxes: NDArray[np.float64], width: int, height: int) -> NDArray[np.float64]:
        """Model-input boxes back to frame pixels, clipped to the frame."""
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4).copy()
        b[:, [0, 2]] = (b[:, [0, 2]] - self.pad_x) / self.ratio
        b[:, [1, 3]] = (b[:, [1, 3]] - self.pad_y) / self.ratio
        b[:, [0, 2]] = b[:, [0, 2]].clip(0, width)
        b[:, [1, 3]] = b[:, [1, 3]].clip(0, height)
        return b


def letterbox(frame: Frame, size: int, color: int = 114) -> tuple[NDArray[np.float32], Letterbox]:
    """Resize keeping the aspect ratio and pad to size×size, as Ultralytics trains.

    Returns the NCHW float32 RGB blob in 0..1 and the transform to map boxes back.
    """
    h, w = frame.shape[:2]
    r = min(size / h, size / w)
    nw, nh = round(w * r), round(h * r)
    resized = frame if (nw, nh) == (w, h) else cv2.resize(frame, (nw, nh), cv2.INTER_LINEAR)
    pad_x, pad_y = (size - nw) / 2.0, (size - nh) / 2.0
    top, left = round(pad_y - 0.1), round(pad_x - 0.1)
    bottom, right = size - nh - top, size - nw - left
    padded = cv2.copyMakeBorder(
        resized, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(color, color, color)
    )
    blob = cv2.dnn.blobFromImage(padded, 1.0 / 255.0, swapRB=True)
    return np.asarray(blob, dtype=np.float32), Letterbox(r, float(left), float(top))


def decode_yolo(
    output: NDArray[np.float32], conf_threshold: float = 0.25
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]:
    """Decode a YOLOv8/YOLO11 head (1, 4+nc, N): xyxy boxes in input pixels, scores, classes.

    The head has no objectness: a candidate's score is its best class probability.
    """
    out = np.asarray(output)
    if out.ndim == 3:
        out = out[0]
    if out.shape[0] > out.shape[1]:
        out = out.T  # some exports give (N, 4+nc)
    cls = out[4:]
    class_ids = np.argmax(cls, axis=0)
    scores = cls[class_ids, np.arange(cls.shape[1])]
    keep = scores >= conf_threshold
    cx, cy, w, h = out[0, keep], out[1, keep], out[2, keep], out[3, keep]
    boxes = np.column_stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]).astype(np.float64)
    return boxes, scores[keep].astype(np.float64), class_ids[keep].astype(np.int64)


def read_class_names(
    names: Sequence[str] | str | Path | None, metadata: dict[str, str]
) -> list[str]:
    """Class names from a list, a text file (one per line), or the model's own metadata."""
    if isinstance(names, str | Path):
        return [ln.strip() for ln in Path(names).read_text().splitlines() if ln.strip()]
    if names is not None:
        return [str(n) for n in names]
    raw = metadata.get("names")
    if raw:
        # Ultralytics stores a Python dict literal {0: 'person', ...}.
        parsed = ast.literal_eval(raw)
        if isinstance(parsed, dict):
            return [str(parsed[k]) for k in sorted(parsed)]
        return [str(n) for n in parsed]
    return []


class OnnxYoloDetector:
    """Any YOLOv8/YOLO11-format ONNX model on onnxruntime's CPU provider."""

    name = "onnx_yolo"

    def __init__(
        self,
        model_path: str | Path,
        class_names: Sequence[str] | str | Path | None = None,
        imgsz: int = 640,
        conf_threshold: float = 0.25,
        iou_threshold: float = 0.45,
        classes: Sequence[str] | None = None,
        threads: int = 1,
        max_det: int = 300,
    ) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(model_path), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name
        meta = self.session.get_modelmeta().custom_metadata_map
        self.class_names = read_class_names(class_names, meta)
        self.imgsz = imgsz
        self.conf_threshold = conf_threshold
        self.iou_threshold = iou_threshold
        self.max_det = max_det
        self.classes = set(classes) if classes else None

    def raw(self, frame: Frame) -> tuple[NDArray[np.float32], Letterbox]:
        """The model's raw output for a frame, and the letterbox used."""
        blob, lb = letterbox(frame, self.imgsz)
        out = self.session.run(None, {self.input_name: blob})[0]
        return np.asarray(out, dtype=np.float32), lb

    def detect(self, frame: Frame) -> Detections:
        """Letterbox, run, decode, class-aware NMS, and map boxes back to the frame."""
        out, lb = self.raw(frame)
        boxes, scores, cids = decode_yolo(out, self.conf_threshold)
        keep = nms(boxes, scores, cids, self.iou_threshold, self.max_det)
        boxes = lb.to_frame(boxes[keep], frame.shape[1], frame.shape[0])
        scores, cids = scores[keep], cids[keep]
        labels = [self.class_names[c] if c < len(self.class_names) else str(int(c)) for c in cids]
        dets = Detections.of(boxes, scores, labels)
        if self.classes is not None:
            dets = dets.select(np.array([lab in self.classes for lab in labels], dtype=bool))
        return dets


class OnnxYoloConfig(BaseModel):
    """Parameters of the `onnx_yolo` detector (a deployment's own YOLOv8/YOLO11 ONNX)."""

    model_config = ConfigDict(extra="forbid")

    model_path: Path
    class_names: list[str] | Path | None = None
    imgsz: int = Field(640, ge=32, le=2048)
    conf_threshold: float = Field(0.25, gt=0.0, lt=1.0)
    iou_threshold: float = Field(0.45, gt=0.0, le=1.0)
    classes: list[str] | None = None
    threads: int = Field(1, ge=1, le=64)
    max_det: int = Field(300, ge=1)


@DETECTORS.register("onnx_yolo", OnnxYoloConfig)
def _make_yolo(config: OnnxYoloConfig, **_runtime: Any) -> OnnxYoloDetector:
    return OnnxYoloDetector(**config.model_dump())
