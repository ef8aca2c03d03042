"""Honest cameras: a picture is shown as live only when it is this camera's and fresh."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

Headers = Callable[..., dict[str, str]]
VIDEO = Path(__file__).resolve().parents[2] / "vision" / "data" / "video" / "street-640x352.mp4"
SWAP = text(
    "UPDATE feature SET properties = jsonb_set(properties, '{stream_url}', "
    "to_jsonb(CAST(:url AS text))) WHERE source_key = :cam RETURNING "
    "(SELECT properties->>'stream_url' FROM feature WHERE source_key = :cam LIMIT 1)"
)


def test_a_camera_without_a_worker_never_shows_another_cameras_picture(
    client: TestClient, auth_headers: Headers
) -> None:
    # Every demo camera streams the same sample video: without a worker of its own, that
    # picture is not VMS-05's, so it is not shown as if it were.
    res = client.get("/api/cameras/VMS-05/snapshot.jpg", headers=auth_headers("operator"))
    assert res.status_code == 404 and "no picture of its own" in res.json()["detail"]


def test_snapshot_without_a_worker_grabs_its_own_stream(
    client: TestClient, seeded: Engine, auth_headers: Headers, tmp_path: Path
) -> None:
    own = tmp_path / "ca18.mp4"
    own.symlink_to(VIDEO)
    with seeded.begin() as conn:
        original = conn.execute(SWAP, {"cam": "CA-18", "url": own.as_uri()}).scalar_one()
    try:
        res = client.get("/api/cameras/CA-18/snapshot.jpg", headers=auth_headers("operator"))
        assert res.status_code == 200
        assert res.headers["content-type"] == "image/jpeg"
        img = cv2.imdecode(np.frombuffer(res.content, np.uint8), cv2.IMREAD_COLOR)
        assert img is not None and img.shape[1] == 640
        assert float(img.std()) > 20  # a real street picture, not a blank frame
    finally:
        with seeded.begin() as conn:
            conn.execute(SWAP, {"cam": "CA-18", "url": original})


def test_a_camera_whose_frames_stopped_is_stale_with_the_time_of_its_last_frame(
    client: TestClient, seeded: Engine, auth_headers: Headers
) -> None:
    from layers.vision import cameras

    headers = auth_headers("operator")
    before = client.get("/api/cameras/CA-17", headers=headers).json()
    old = datetime.now(UTC) - timedelta(seconds=120)
    try:
        with seeded.begin() as conn:
            cameras.set_state(conn, "CA-17", status="online", last_frame_at=old)
        doc = client.get("/api/cameras/CA-17", headers=headers).json()
        assert doc["worker_status"] == "online" and doc["status"] == "stale"
        assert doc["picture"]["live"] is False and doc["picture"]["age_s"] >= 120
        assert datetime.fromisoformat(doc["picture"]["at"]) == old
        listed = {c["camera_id"]: c for c in client.get("/api/cameras", headers=headers).json()}
        assert listed["CA-17"]["status"] == "stale"
        with seeded.begin() as conn:
            cameras.set_state(conn, "CA-17", last_frame_at=datetime.now(UTC))
        doc = client.get("/api/cameras/CA-17", headers=headers).json()
        assert doc["status"] == "online" and doc["picture"]["live"] is True
        with seeded.begin() as conn:
            cameras.set_state(conn, "CA-17", status="offline")
        doc = client.get("/api/cameras/CA-17", headers=headers).json()
        assert doc["status"] == "offline" and doc["picture"]["at"] is not None
    finally:
        with seeded.begin() as conn:
            cameras.set_state(conn, "CA-17", status=before["worker_status"])
            conn.execute(text("DELETE FROM camera_state WHERE camera_id = 'CA-17'"))


def test_snapshot_of_an_unreachable_stream_is_503(
    client: TestClient, seeded: Engine, auth_headers: Headers
) -> None:
    swap = SWAP
    with seeded.begin() as conn:
        original = conn.execute(
            swap, {"cam": "CA-19", "url": "file:///nonexistent/cam.mp4"}
        ).scalar_one()
    try:
        res = client.get("/api/cameras/CA-19/snapshot.jpg", headers=auth_headers("operator"))
        assert res.status_code == 503
        assert "cannot be opened" in res.json()["detail"]
    finally:
        # The seeded database is shared by the session: put the demo back as it was.
        with seeded.begin() as conn:
            conn.execute(swap, {"cam": "CA-19", "url": original})
