"""The demo camera CA-01 as it sees the bundled street video: calibration and zones (pure).

The video (vision/data/video/street-640x352.mp4) looks down a two-lane residential street
from a low mount on the left sidewalk; traffic in the near lane comes towards the camera.
CA-01's homography is fitted from control points read off the picture:

* the left kerb line and the double yellow centre line, each read at several rows;
* the near lane is taken as 3.5 m wide (kerb to centre line), a usual urban lane width;
* distances along the road follow from perspective: the two lines meet at the vanishing
  point (202, 131), so the lane's pixel width grows as (v − 131) and the distance is
  f·h / (v − 131), with f = 457 px (a 70° lens at 640 px) and h = 3.5 / 2.375 = 1.47 m the
  camera's height over the road that this lane width implies.

The points are placed on the ground in a road frame (metres across and along the road,
camera at the origin) and turned to the camera's heading, so the zones drawn on the map
lie along its view. `fit_homography` reports the RMS error of the fit (README).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely.geometry
from sqlalchemy import Connection

from vision.geo import Calibration, ControlPoint, GroundFrame, fit_homography

IMAGE_SIZE = (640, 352)
VANISHING_ROW = 131.0
FOCAL_PX = 457.0
LANE_WIDTH_M = 3.5
# Road axis relative to the optical axis: the vanishing point lies 118 px left of centre.
ROAD_OFFSET_DEG = -math.degrees(math.atan((320.0 - 202.0) / FOCAL_PX))
CAMERA_HEIGHT_M = LANE_WIDTH_M / 2.375
KERB_ACROSS_M = 0.375 * CAMERA_HEIGHT_M  # the kerb runs 0.55 m right of the camera

# (u, v) read on the picture: the kerb edge and the inner edge of the yellow centre line.
KERB_PIXELS = ((217.0, 170.0), (241.0, 230.0), (262.0, 290.0), (275.0, 320.0))
CENTRE_PIXELS = ((310.0, 170.0), (393.0, 200.0), (475.0, 230.0), (640.0, 290.0))


@dataclass(frozen=True)
class RoadPoint:
    """A control point: pixel (u, v) and road-frame metres (across to the right, along)."""

    u: float
    v: float
    across_m: float
    along_m: float


def road_points() -> list[RoadPoint]:
    """The control points in the road frame."""
    out = []
    for pixels, across in ((KERB_PIXELS, KERB_ACROSS_M), (CENTRE_PIXELS, KERB_ACROSS_M + 3.5)):
        for u, v in pixels:
            along = FOCAL_PX * CAMERA_HEIGHT_M / (v - VANISHING_ROW)
            out.append(RoadPoint(u, v, across, along))
    return out


def road_bearing_deg(camera_heading_deg: float) -> float:
    """Compass bearing of the road away from the camera."""
    return (camera_heading_deg + ROAD_OFFSET_DEG) % 360.0


def flow_direction_deg(camera_heading_deg: float) -> float:
    """Compass direction of the near lane's traffic: along the road, towards the camera."""
    return (road_bearing_deg(camera_heading_deg) + 180.0) % 360.0


def control_points(lon: float, lat: float, heading_deg: float) -> list[ControlPoint]:
    """The road-frame points placed on the map around a camera at (lon, lat)."""
    frame = GroundFrame(lon, lat)
    b = math.radians(road_bearing_deg(heading_deg))
    along_e, along_n = math.sin(b), math.cos(b)
    right_e, right_n = math.cos(b), -math.sin(b)
    pts = road_points()
    xy = [
        (p.along_m * along_e + p.across_m * right_e, p.along_m * along_n + p.across_m * right_n)
        for p in pts
    ]
    lonlat = frame.to_wgs84(xy)
    return [
        ControlPoint(p.u, p.v, float(ll[0]), float(ll[1]))
        for p, ll in zip(pts, lonlat, strict=True)
    ]


def calibration(
    lon: float, lat: float, heading_deg: float, max_error_m: float = 2.0
) -> Calibration:
    """CA-01's homography fitted from the control points."""
    return fit_homography(control_points(lon, lat, heading_deg), GroundFrame(lon, lat), max_error_m)


# Zones in picture pixels (640×352), turned into map geometries through the calibration.
COUNTING_LINE_PX = ((150.0, 0.65 * 352), (640.0, 0.65 * 352))
LANE_PX = ((207.0, 150.0), (290.0, 352.0), (640.0, 352.0), (640.0, 285.0), (262.0, 150.0))


def zones(cal: Calibration, heading_deg: float) -> list[dict[str, Any]]:
    """The demo counting line and near lane as ZoneSpec-shaped dicts (WGS84 GeoJSON)."""
    line = cal.image_to_wgs84(COUNTING_LINE_PX).tolist()
    lane = cal.image_to_wgs84(LANE_PX).tolist()
    return [
        {
            "name": "Vạch đếm xe",
            "kind": "counting_line",
            "geometry": {"type": "LineString", "coordinates": line},
            "params": {},
        },
        {
            "name": "Làn đường",
            "kind": "lane",
            "geometry": {"type": "Polygon", "coordinates": [[*lane, lane[0]]]},
            # No speed limit: the fit is good to centimetres near the line, but a far car's
            # box jitter of a pixel is metres, so far speeds are not trustworthy.
            "params": {"direction_deg": round(flow_direction_deg(heading_deg), 1)},
        },
    ]


DEMO_CAMERA = "CA-01"


def seed_demo_camera(conn: Connection, camera_id: str = DEMO_CAMERA) -> bool:
    """Give the demo camera its fitted calibration, counting line and lane; True if it wrote.

    A second run changes nothing. Zones an operator drew under other names are kept; the
    demo's own zones are replaced when they differ (e.g. a lane seeded against the flow).
    """
    from layers.vision import cameras as cam_db

    cam = cam_db.get_camera(conn, camera_id)
    cal = calibration(cam.lon, cam.lat, cam.heading_deg)
    changed = False
    stored = cam_db.get_calibration(conn, camera_id)
    h = cal.homography.tolist()
    if stored is None or not np.allclose(stored.homography, h, rtol=1e-6, atol=1e-9):
        cam_db.save_calibration(
            conn,
            cam_db.CalibrationRecord(
                camera_id=camera_id,
                origin_lon=cam.lon,
                origin_lat=cam.lat,
                image_width=IMAGE_SIZE[0],
                image_height=IMAGE_SIZE[1],
                control_points=[
                    p.__dict__ for p in control_points(cam.lon, cam.lat, cam.heading_deg)
                ],
                homography=h,
                reprojection_error_m=cal.rms_error_m,
                max_error_m=2.0,
            ),
        )
        changed = True
    wanted = zones(cal, cam.heading_deg)
    have = cam_db.list_zones(conn, camera_id)
    names = {str(z["name"]) for z in wanted}

    def same(z: Any, w: dict[str, Any]) -> bool:
        a = np.asarray(
            shapely.geometry.shape(z.geometry).exterior.coords
            if z.kind != "counting_line"
            else z.geometry["coordinates"]
        )
        b = np.asarray(
            shapely.geometry.shape(w["geometry"]).exterior.coords
            if w["kind"] != "counting_line"
            else w["geometry"]["coordinates"]
        )
        return bool(z.kind == w["kind"] and z.params == w["params"] and a.shape == b.shape
                    and np.allclose(a, b, atol=1e-7))  # fmt: skip

    demo_have = [z for z in have if z.name in names]
    if len(demo_have) == len(wanted) and all(any(same(z, w) for z in demo_have) for w in wanted):
        return changed
    others = [z for z in have if z.name not in names]
    cam_db.delete_zones(conn, camera_id)
    for z in others:
        cam_db.add_zone(
            conn,
            camera_id,
            cam_db.ZoneSpec(name=z.name, kind=z.kind, geometry=z.geometry, params=z.params),
        )
    for w in wanted:
        cam_db.add_zone(conn, camera_id, cam_db.ZoneSpec.model_validate(w))
    return True
