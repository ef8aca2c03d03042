"""Privacy: blur faces and number plates in stored snapshots, and delete expired snapshots."""

from __future__ import annotations

import time
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np

from vision.plugins import Frame

FACE_CASCADES = ("haarcascade_frontalface_default.xml", "haarcascade_profileface.xml")
PLATE_CASCADES = (
    "haarcascade_russian_plate_number.xml",
    "haarcascade_license_plate_rus_16stages.xml",
)


class Blurrer:
    """Finds faces and plates with the Haar cascades bundled in opencv<5 and blurs them."""

    def __init__(
        self,
        faces: bool = True,
        plates: bool = True,
        min_size: int = 16,
        scale_factor: float = 1.2,
    ) -> None:
        self.faces = faces
        self.plates = plates
        self.min_size = min_size
        self.scale_factor = scale_factor

    @cached_property
    def _cascades(self) -> list[cv2.CascadeClassifier]:
        names = (FACE_CASCADES if self.faces else ()) + (PLATE_CASCADES if self.plates else ())
        out = []
        for name in names:
            c = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / name))  # type: ignore[attr-defined]
            if not c.empty():
                out.append(c)
        return out

    def regions(self, frame: Frame) -> list[tuple[int, int, int, int]]:
        """x, y, w, h of every face or plate found."""
        grey = cv2.equalizeHist(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
        found: list[tuple[int, int, int, int]] = []
        # Nothing to hide is larger than half the frame height; capping the size saves scales.
        biggest = max(self.min_size + 1, frame.shape[0] // 2)
        for cascade in self._cascades:
            rects = cascade.detectMultiScale(
                grey,
                scaleFactor=self.scale_factor,
                minNeighbors=4,
                minSize=(self.min_size, self.min_size),
                maxSize=(biggest, biggest),
            )
            found.extend((int(x), int(y), int(w), int(h)) for x, y, w, h in rects)
        return found

    def blur(self, frame: Frame, extra: list[tuple[int, int, int, int]] | None = None) -> Frame:
        """A copy of the frame with every found region (and `extra` ones) pixelated and blurred."""
        out = frame.copy()
        for x, y, w, h in self.regions(frame) + list(extra or []):
            x0, y0 = max(0, x), max(0, y)
            x1, y1 = min(out.shape[1], x + w), min(out.shape[0], y + h)
            if x1 - x0 < 2 or y1 - y0 < 2:
                continue
            roi = out[y0:y1, x0:x1]
            small = cv2.resize(roi, (max(1, (x1 - x0) // 8), max(1, (y1 - y0) // 8)))
            coarse = cv2.resize(small, (x1 - x0, y1 - y0), interpolation=cv2.INTER_NEAREST)
            out[y0:y1, x0:x1] = cv2.GaussianBlur(coarse, (0, 0), 3)
        return np.asarray(out, dtype=np.uint8)


def delete_files(paths: list[str], root: Path) -> int:
    """Delete snapshot files that live under `root`; returns how many were removed."""
    removed = 0
    root = root.resolve()
    for p in paths:
        path = Path(p).resolve()
        if root not in path.parents:
            continue  # never delete outside the media directory
        try:
            path.unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return removed


def sweep_old_files(root: Path, max_age_s: float, now: float | None = None) -> int:
    """Delete *.jpg under `root` older than `max_age_s` (orphans the database forgot)."""
    if not root.exists():
        return 0
    cutoff = (now if now is not None else time.time()) - max_age_s
    removed = 0
    for path in root.rglob("*.jpg"):
        if path.name == "latest.jpg":
            continue
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            pass
    return removed
