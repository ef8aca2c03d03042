"""Calibration and geolocation: image pixels ↔ ground metres ↔ WGS84 (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import cv2
import numpy as np
from numpy.typing import NDArray
from pyproj import CRS, Transformer

FloatArray = NDArray[np.float64]


class CalibrationError(ValueError):
    """The control points do not give a usable homography."""


@dataclass(frozen=True)
class GroundFrame:
    """A metric ground plane: east/north metres around an origin, or any projected CRS.

    `crs="local"` is a transverse Mercator tangent at the origin (scale error < 1e-6 within
    1 km of the camera); `crs="EPSG:9208"` uses the province's official VN-2000 TM-3 zone.
    """

    origin_lon: float
    origin_lat: float
    crs: str = "local"

    @cached_property
    def _crs(self) -> CRS:
        if self.crs == "local":
            return CRS.from_proj4(
                f"+proj=tmerc +lat_0={self.origin_lat!r} +lon_0={self.origin_lon!r} "
                "+k=1 +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs"
            )
        return CRS.from_user_input(self.crs)

    @cached_property
    def _fwd(self) -> Transformer:
        return Transformer.from_crs("EPSG:4326", self._crs, always_xy=True)

    @cached_property
    def _inv(self) -> Transformer:
        return Transformer.from_crs(self._crs, "EPSG:4326", always_xy=True)

    def to_ground(self, lonlat: FloatArray | Sequence[Sequence[float]]) -> FloatArray:
        """WGS84 lon/lat (N×2) to ground metres (N×2)."""
        a = np.asarray(lonlat, dtype=np.float64).reshape(-1, 2)
        x, y = self._fwd.transform(a[:, 0], a[:, 1])
        return np.column_stack([x, y]).astype(np.float64)

    def to_wgs84(self, xy: FloatArray | Sequence[Sequence[float]]) -> FloatArray:
        """Ground metres (N×2) to WGS84 lon/lat (N×2)."""
        a = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        lon, lat = self._inv.transform(a[:, 0], a[:, 1])
        return np.column_stack([lon, lat]).astype(np.float64)


@dataclass(frozen=True)
class ControlPoint:
    """One image pixel (u, v) matched to one ground position (lon, lat)."""

    u: float
    v: float
    lon: float
    lat: float


def apply_homography(h: FloatArray, pts: FloatArray | Sequence[Sequence[float]]) -> FloatArray:
    """Map N×2 points through a 3×3 homography."""
    a = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
    if len(a) == 0:
        return np.zeros((0, 2), dtype=np.float64)
    homog = np.column_stack([a, np.ones(len(a))]) @ h.T
    w = homog[:, 2:3]
    w = np.where(np.abs(w) < 1e-12, 1e-12, w)
    return (homog[:, :2] / w).astype(np.float64)


@dataclass(frozen=True)
class Calibration:
    """A fitted image→ground homography with its residuals, in the camera's ground frame."""

    homography: FloatArray
    frame: GroundFrame
    rms_error_m: float
    max_error_m: float
    residuals_m: tuple[float, ...] = field(default=())

    @property
    def pose_only(self) -> bool:
        """True for a calibration guessed from the camera's pose (no control points)."""
        return bool(np.isnan(self.rms_error_m))

    @cached_property
    def inverse(self) -> FloatArray:
        """The ground→image homography."""
        return np.linalg.inv(self.homography).astype(np.float64)

    def image_to_ground(self, uv: FloatArray | Sequence[Sequence[float]]) -> FloatArray:
        """Pixels (N×2) to ground metres (N×2)."""
        return apply_homography(self.homography, uv)

    def ground_to_image(self, xy: FloatArray | Sequence[Sequence[float]]) -> FloatArray:
        """Ground metres (N×2) to pixels (N×2)."""
        return apply_homography(self.inverse, xy)

    def image_to_wgs84(self, uv: FloatArray | Sequence[Sequence[float]]) -> FloatArray:
        """Pixels (N×2) to WGS84 lon/lat (N×2)."""
        return self.frame.to_wgs84(self.image_to_ground(uv))

    def wgs84_to_image(self, lonlat: FloatArray | Sequence[Sequence[float]]) -> FloatArray:
        """WGS84 lon/lat (N×2) to pixels (N×2)."""
        return self.ground_to_image(self.frame.to_ground(lonlat))

    def below_horizon(self, uv: FloatArray) -> NDArray[np.bool_]:
        """True for pixels whose ray meets the ground in front of the camera."""
        a = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
        w = np.column_stack([a, np.ones(len(a))]) @ self.homography[2]
        return np.asarray(w > 0)

    def in_front(self, xy: FloatArray) -> NDArray[np.bool_]:
        """True for ground points that project in front of the camera (positive w)."""
        a = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        w = np.column_stack([a, np.ones(len(a))]) @ self.inverse[2]
        return np.asarray(w > 0)


def fit_homography(
    points: Sequence[ControlPoint], frame: GroundFrame, max_error_m: float = 1.0
) -> Calibration:
    """Fit the image→ground homography by least squares; refuse a too large reprojection error.

    The error is measured on the ground, in metres, because that is what rules and positions
    depend on; the RMS must stay within `max_error_m`.
    """
    if len(points) < 4:
        raise CalibrationError(f"calibration needs at least 4 control points; got {len(points)}")
    uv = np.array([[p.u, p.v] for p in points], dtype=np.float64)
    xy = frame.to_ground([[p.lon, p.lat] for p in points])
    if _degenerate(uv) or _degenerate(xy):
        raise CalibrationError("control points are collinear or repeated; spread them out")
    h, _ = cv2.findHomography(uv, xy, 0)
    if h is None or not np.all(np.isfinite(h)) or abs(np.linalg.det(h)) < 1e-15:
        raise CalibrationError("control points do not determine a homography")
    h = h / np.abs(h).max()
    # Orient H so that w > 0 for real ground points (the control points): then the sign of
    # w tells points in front of the camera from their mirror images behind it.
    if (np.column_stack([uv, np.ones(len(uv))]) @ h[2]).mean() < 0:
        h = -h
    res = np.linalg.norm(apply_homography(h, uv) - xy, axis=1)
    rms = float(np.sqrt(np.mean(res**2)))
    if rms > max_error_m:
        raise CalibrationError(
            f"reprojection error {rms:.2f} m exceeds the allowed {max_error_m:.2f} m; "
            "check the control points"
        )
    return Calibration(h.astype(np.float64), frame, rms, float(res.max()), tuple(map(float, res)))


def _degenerate(pts: FloatArray) -> bool:
    """True when fewer than 4 points are distinct or when 3+ of any 4 span no area."""
    uniq = np.unique(np.round(pts, 6), axis=0)
    if len(uniq) < 4:
        return True
    centred = pts - pts.mean(axis=0)
    sv = np.linalg.svd(centred, compute_uv=False)
    return bool(sv[-1] < 1e-6 * max(sv[0], 1e-12))


def foot_points(boxes: FloatArray) -> FloatArray:
    """Bottom-centre pixel of each x1,y1,x2,y2 box: where the object touches the ground."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.column_stack([(b[:, 0] + b[:, 2]) / 2.0, b[:, 3]])


def ground_widths(cal: Calibration, boxes: FloatArray) -> FloatArray:
    """Width in metres of each box's bottom edge, projected onto the ground."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    left = cal.image_to_ground(np.column_stack([b[:, 0], b[:, 3]]))
    right = cal.image_to_ground(np.column_stack([b[:, 2], b[:, 3]]))
    return np.asarray(np.linalg.norm(right - left, axis=1), dtype=np.float64)


def bearing_deg(dx: float, dy: float) -> float:
    """Compass bearing (0 = north, clockwise) of an east/north displacement."""
    return float(np.degrees(np.arctan2(dx, dy)) % 360.0)


def angle_diff_deg(a: float, b: float) -> float:
    """Smallest absolute difference between two bearings, 0..180."""
    d = abs((a - b) % 360.0)
    return float(min(d, 360.0 - d))


def pose_homography(
    width: int,
    height: int,
    heading_deg: float,
    fov_deg: float,
    mount_height_m: float,
    aim_distance_m: float,
) -> FloatArray:
    """Approximate image→ground homography of a pinhole camera from its registered pose.

    The camera stands at the ground origin, `mount_height_m` up, looking along
    `heading_deg` (compass) and tilted down so that the image centre hits the ground
    `aim_distance_m` away. Used until an operator calibrates with control points.
    """
    hd = np.radians(heading_deg)
    tilt = np.arctan2(mount_height_m, max(aim_distance_m, 0.1))
    fwd = np.array([np.sin(hd) * np.cos(tilt), np.cos(hd) * np.cos(tilt), -np.sin(tilt)])
    right = np.array([np.cos(hd), -np.sin(hd), 0.0])
    down = np.cross(fwd, right)
    f = (width / 2.0) / np.tan(np.radians(fov_deg) / 2.0)
    cx, cy = width / 2.0, height / 2.0
    # Ray of pixel (u, v): m @ [u, v, 1]; its ground hit is h·(dx, dy) / (-dz).
    m = np.column_stack([right / f, down / f, fwd - cx / f * right - cy / f * down])
    h = np.vstack([mount_height_m * m[0], mount_height_m * m[1], -m[2]])
    return (h / mount_height_m).astype(np.float64)


def pose_calibration(
    frame: GroundFrame,
    width: int,
    height: int,
    heading_deg: float,
    fov_deg: float,
    mount_height_m: float,
    range_m: float,
) -> Calibration:
    """A Calibration from the camera's pose alone (error unknown, reported as NaN)."""
    h = pose_homography(width, height, heading_deg, fov_deg, mount_height_m, range_m / 2.0)
    return Calibration(h, frame, float("nan"), float("nan"))
