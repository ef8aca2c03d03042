"""Colormaps, rescaling and terrain-RGB encoding of raster values: pure array functions."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import numpy.typing as npt

# Control points (position 0..1, r, g, b) of the named ramps; 256-entry tables are built from
# them. Hand-picked to match the familiar matplotlib/GMT ramps without depending on either.
_RAMPS: dict[str, list[tuple[float, int, int, int]]] = {
    "viridis": [
        (0.0, 68, 1, 84),
        (0.25, 59, 82, 139),
        (0.5, 33, 145, 140),
        (0.75, 94, 201, 98),
        (1.0, 253, 231, 37),
    ],
    "magma": [
        (0.0, 0, 0, 4),
        (0.25, 81, 18, 124),
        (0.5, 183, 55, 121),
        (0.75, 252, 137, 97),
        (1.0, 252, 253, 191),
    ],
    "terrain": [
        (0.0, 51, 102, 153),
        (0.02, 0, 153, 102),
        (0.15, 102, 187, 102),
        (0.35, 220, 215, 130),
        (0.6, 170, 130, 80),
        (0.8, 140, 110, 100),
        (1.0, 250, 250, 250),
    ],
    "blues": [
        (0.0, 198, 219, 239),
        (0.3, 107, 174, 214),
        (0.6, 33, 113, 181),
        (1.0, 8, 48, 107),
    ],
    "reds": [(0.0, 254, 224, 210), (0.5, 251, 106, 74), (1.0, 103, 0, 13)],
    "gray": [(0.0, 0, 0, 0), (1.0, 255, 255, 255)],
}
COLORMAPS = (*_RAMPS, "rgb")


@lru_cache(maxsize=32)
def lut(name: str) -> npt.NDArray[np.uint8]:
    """The 256x4 RGBA table of a named colormap (alpha 255)."""
    stops = _RAMPS[name]
    pos = np.array([s[0] for s in stops])
    x = np.linspace(0.0, 1.0, 256)
    out = np.empty((256, 4), np.uint8)
    for c in range(3):
        out[:, c] = np.round(np.interp(x, pos, [s[c + 1] for s in stops])).astype(np.uint8)
    out[:, 3] = 255
    return out


def to_rgba(
    values: npt.NDArray[np.floating] | npt.NDArray[np.integer],
    valid: npt.NDArray[np.bool_],
    lo: float,
    hi: float,
    name: str,
) -> npt.NDArray[np.uint8]:
    """Rescale one band to [lo, hi], colour it, and make invalid pixels fully transparent."""
    span = hi - lo if hi != lo else 1.0
    idx = np.clip((values.astype(np.float32) - lo) * (255.0 / span), 0, 255)
    rgba: npt.NDArray[np.uint8] = lut(name)[np.nan_to_num(idx, nan=0.0).astype(np.uint8)]
    rgba[~valid] = 0
    return rgba


def rgb_to_rgba(
    bands: npt.NDArray[np.generic], valid: npt.NDArray[np.bool_], lo: float, hi: float
) -> npt.NDArray[np.uint8]:
    """Three bands (r, g, b) rescaled to bytes; invalid pixels transparent."""
    span = hi - lo if hi != lo else 1.0
    h, w = bands.shape[1:]
    out = np.zeros((h, w, 4), np.uint8)
    for c in range(3):
        out[..., c] = np.clip((bands[c].astype(np.float32) - lo) * (255.0 / span), 0, 255)
    out[..., 3] = np.where(valid, 255, 0)
    return out


def terrain_rgb(
    values: npt.NDArray[np.floating], valid: npt.NDArray[np.bool_]
) -> npt.NDArray[np.uint8]:
    """Mapbox terrain-RGB: height = -10000 + (R*65536 + G*256 + B) * 0.1; invalid = sea level."""
    h = np.where(valid, values.astype(np.float64), 0.0)
    code = np.clip(np.round((h + 10000.0) * 10.0), 0, 256**3 - 1).astype(np.uint32)
    out = np.empty((*values.shape, 4), np.uint8)
    out[..., 0] = (code >> 16) & 255
    out[..., 1] = (code >> 8) & 255
    out[..., 2] = code & 255
    out[..., 3] = 255
    return out


def decode_terrain_rgb(rgba: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
    """Heights back from terrain-RGB pixels (the inverse of terrain_rgb)."""
    r, g, b = (rgba[..., i].astype(np.float64) for i in range(3))
    return -10000.0 + (r * 65536 + g * 256 + b) * 0.1


def legend(name: str, lo: float, hi: float, steps: int = 6) -> list[dict[str, object]]:
    """Colour stops for a map legend: value and [r, g, b]."""
    table = lut(name if name in _RAMPS else "gray")
    out: list[dict[str, object]] = []
    for i in range(steps):
        f = i / (steps - 1)
        out.append(
            {"value": lo + f * (hi - lo), "color": [int(v) for v in table[round(f * 255)][:3]]}
        )
    return out
