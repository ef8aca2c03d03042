"""Overlays for operators: boxes with track ids, and map zones projected into the image."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import numpy as np

from vision.geo import Calibration
from vision.plugins import Frame

ZONE_COLORS: dict[str, tuple[int, int, int]] = {
    "forbidden": (0, 0, 255),
    "no_parking": (0, 165, 255),
    "counting_line": (255, 255, 0),
    "lane": (0, 255, 0),
    "area": (255, 0, 255),
}


def project_geojson(cal: Calibration, geometry: Mapping[str, Any]) -> list[np.ndarray]:
    """Pixel polylines of a WGS84 GeoJSON LineString/Polygon, clipped to points in front."""
    gtype = geometry.get("type")
    coords = geometry.get("coordinates") or []
    rings: list[Sequence[Sequence[float]]]
    if gtype == "LineString":
        rings = [coords]
    elif gtype == "Polygon":
        rings = list(coords)
    elif gtype == "MultiPolygon":
        rings = [r for poly in coords for r in poly]
    else:
        return []
    out = []
    for ring in rings:
        ground = cal.frame.to_ground(np.asarray(ring, dtype=np.float64)[:, :2])
        ground = _densify(ground, 1.0)
        front = cal.in_front(ground)
        px = cal.ground_to_image(ground[front])
        if len(px) >= 2:
            out.append(np.round(px).astype(np.int32))
    return out


def _densify(pts: np.ndarray, step_m: float) -> np.ndarray:
    """Insert points every `step_m` so straight map edges bend correctly near the horizon."""
    if len(pts) < 2:
        return pts
    out = [pts[0]]
    for a, b in zip(pts[:-1], pts[1:], strict=True):
        n = max(1, int(np.linalg.norm(b - a) / step_m))
        for k in range(1, n + 1):
            out.append(a + (b - a) * k / n)
    return np.asarray(out)


def draw_overlay(
    frame: Frame,
    boxes: Sequence[Mapping[str, Any]] = (),
    zones: Sequence[Mapping[str, Any]] = (),
    calibration: Calibration | None = None,
) -> Frame:
    """A copy of the frame with zones (needs a calibration) and labelled boxes drawn."""
    out = frame.copy()
    if calibration is not None:
        for z in zones:
            color = ZONE_COLORS.get(str(z.get("kind")), (255, 255, 255))
            for line in project_geojson(calibration, z.get("geometry") or {}):
                closed = (z.get("geometry") or {}).get("type") != "LineString"
                cv2.polylines(out, [line.reshape(-1, 1, 2)], closed, color, 2, cv2.LINE_AA)
    for b in boxes:
        x1, y1, x2, y2 = (int(round(v)) for v in b["box"])
        cv2.rectangle(out, (x1, y1), (x2, y2), (0, 255, 255), 2)
        label = f"{b.get('label', '')} #{b.get('track_id', '')}".strip()
        cv2.putText(
            out, label, (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 255, 255), 1
        )
    return np.asarray(out, dtype=np.uint8)


def encode_jpeg(frame: Frame, quality: int = 80) -> bytes:
    """JPEG bytes of a frame."""
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return bytes(buf)
