"""What the API asks of vision: snapshots read from the media directory, with overlays."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from sqlalchemy import Connection

from layers import cameras as cam_db
from layers import events as ev_db
from layers.errors import NotFoundError
from layers.settings import Settings
from vision.draw import draw_overlay, encode_jpeg
from vision.runner import calibration_for


def _media_file(settings: Settings, path: str | None, what: str) -> Path:
    """A stored media path, refused unless it is a file inside the media directory."""
    if not path:
        raise NotFoundError(f"{what} has no image yet")
    root = settings.media_root.resolve()
    p = Path(path).resolve()
    if root not in p.parents or not p.is_file():
        raise NotFoundError(f"{what} image is not available")
    return p


def camera_snapshot(
    conn: Connection, settings: Settings, camera_id: str, boxes: bool, zones: bool
) -> bytes:
    """The camera's latest frame as JPEG, with its tracked boxes and projected zones if asked."""
    camera = cam_db.get_camera(conn, camera_id)
    path = _media_file(settings, camera.frame_path, f"camera '{camera_id}'")
    if not boxes and not zones:
        return path.read_bytes()
    img = cv2.imdecode(np.frombuffer(path.read_bytes(), np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise NotFoundError(f"camera '{camera_id}' image is not readable")
    cal = calibration_for(
        camera, cam_db.get_calibration(conn, camera_id), img.shape[1], img.shape[0]
    )
    zone_docs = [z.model_dump() for z in cam_db.list_zones(conn, camera_id)] if zones else []
    box_docs = list(camera.overlay.get("boxes", [])) if boxes else []
    return encode_jpeg(draw_overlay(img, box_docs, zone_docs, cal))


def event_snapshot(conn: Connection, settings: Settings, event_id: int) -> bytes:
    """The JPEG stored with an event."""
    event = ev_db.get_event(conn, event_id)
    return _media_file(settings, event.snapshot_path, f"event {event_id}").read_bytes()
