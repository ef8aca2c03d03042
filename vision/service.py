"""What the API asks of vision: snapshots read from the media directory, with overlays."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from sqlalchemy import Connection

from layers.errors import NotFoundError, UnavailableError
from layers.settings import Settings
from layers.vision import cameras as cam_db
from layers.vision import events as ev_db
from vision.draw import draw_overlay, encode_jpeg
from vision.runner import calibration_for


def _media_file(settings: Settings, path: str | None, kind: str, ref: str) -> Path:
    """A stored media path, refused unless it is a file inside the media directory.

    `kind` is "camera" or "event" (it names the message), `ref` its id.
    """
    what = f"camera '{ref}'" if kind == "camera" else f"event {ref}"
    if not path:
        raise NotFoundError(
            f"{what} has no image yet", i18n=f"err.vision_service.{kind}_no_image", ref=ref
        )
    root = settings.media_root.resolve()
    p = Path(path).resolve()
    if root not in p.parents or not p.is_file():
        raise NotFoundError(
            f"{what} image is not available",
            i18n=f"err.vision_service.{kind}_image_missing",
            ref=ref,
        )
    return p


def camera_snapshot(
    conn: Connection, settings: Settings, camera_id: str, boxes: bool, zones: bool
) -> bytes:
    """The camera's latest frame as JPEG, with its tracked boxes and projected zones if asked."""
    camera = cam_db.get_camera(conn, camera_id)
    try:
        path = _media_file(settings, camera.frame_path, "camera", camera_id)
        stored = path.read_bytes()
    except NotFoundError:
        # No worker has written a frame for this camera. Its own stream may be grabbed now,
        # but a stream that another camera also uses (the demo's shared video) is not this
        # camera's picture: showing it as live would mislead the operator.
        shared = [
            c.camera_id
            for c in cam_db.list_cameras(conn)
            if c.camera_id != camera_id and c.stream_url == camera.stream_url
        ]
        if shared:
            raise NotFoundError(
                f"camera '{camera_id}' has no picture of its own yet "
                f"(its stream is also camera {shared[0]}'s)",
                i18n="err.vision_service.camera_has_no_picture_its",
                camera_id=camera_id,
                shared=shared[0],
            ) from None
        stored = encode_jpeg(grab_live_frame(camera.stream_url, settings))
    if not boxes and not zones:
        return stored
    img = cv2.imdecode(np.frombuffer(stored, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise NotFoundError(
            f"camera '{camera_id}' image is not readable",
            i18n="err.vision_service.camera_image_not_readable",
            camera_id=camera_id,
        )
    cal = calibration_for(
        camera, cam_db.get_calibration(conn, camera_id), img.shape[1], img.shape[0]
    )
    zone_docs = [z.model_dump() for z in cam_db.list_zones(conn, camera_id)] if zones else []
    box_docs = list(camera.overlay.get("boxes", [])) if boxes else []
    return encode_jpeg(draw_overlay(img, box_docs, zone_docs, cal))


def event_snapshot(conn: Connection, settings: Settings, event_id: int) -> bytes:
    """The JPEG stored with an event."""
    event = ev_db.get_event(conn, event_id)
    return _media_file(settings, event.snapshot_path, "event", str(event_id)).read_bytes()


def grab_live_frame(stream_url: str, settings: Settings, open_timeout_ms: int = 5000) -> np.ndarray:
    """One current frame of a stream, privacy-blurred, downscaled to the vision width.

    A file source plays as a loop on the wall clock, so repeated grabs move like a live feed.
    """
    import time

    from vision.sources import file_path

    target = file_path(stream_url)
    cap = cv2.VideoCapture(
        target, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, open_timeout_ms]
    )
    try:
        if not cap.isOpened():
            raise UnavailableError(
                f"camera stream {stream_url} cannot be opened",
                i18n="err.vision_service.camera_stream_cannot_be_opened",
                stream_url=stream_url,
            )
        frames = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        if frames and frames > 1 and Path(target).is_file():
            cap.set(cv2.CAP_PROP_POS_FRAMES, int(time.time() * fps) % int(frames))
        ok, frame = cap.read()
    finally:
        cap.release()
    if not ok or frame is None:
        raise UnavailableError(
            f"camera stream {stream_url} gave no frame",
            i18n="err.vision_service.camera_stream_gave_no_frame",
            stream_url=stream_url,
        )
    if frame.shape[1] > settings.vision_max_width:
        scale = settings.vision_max_width / frame.shape[1]
        frame = cv2.resize(frame, (settings.vision_max_width, round(frame.shape[0] * scale)))
    if settings.vision_privacy_blur:
        from vision.privacy import Blurrer

        frame = Blurrer().blur(frame)
    return np.asarray(frame, dtype=np.uint8)
