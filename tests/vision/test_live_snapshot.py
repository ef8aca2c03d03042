"""A camera with no running worker still shows its current picture."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
from fastapi.testclient import TestClient
from sqlalchemy import Engine

Headers = Callable[..., dict[str, str]]


def test_snapshot_without_a_worker_grabs_the_stream(
    client: TestClient, auth_headers: Headers
) -> None:
    res = client.get("/api/cameras/VMS-05/snapshot.jpg", headers=auth_headers("operator"))
    assert res.status_code == 200
    assert res.headers["content-type"] == "image/jpeg"
    img = cv2.imdecode(np.frombuffer(res.content, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None and img.shape[1] == 640
    # A real street picture, not a blank frame.
    assert float(img.std()) > 20


def test_snapshot_of_an_unreachable_stream_is_503(
    client: TestClient, seeded: Engine, auth_headers: Headers
) -> None:
    from sqlalchemy import text

    swap = text(
        "UPDATE feature SET properties = jsonb_set(properties, '{stream_url}', to_jsonb(CAST(:url AS text))) "
        "WHERE source_key = 'CA-19' RETURNING (SELECT properties->>'stream_url' FROM feature "
        "WHERE source_key = 'CA-19' LIMIT 1)"
    )
    with seeded.begin() as conn:
        original = conn.execute(swap, {"url": "file:///nonexistent/cam.mp4"}).scalar_one()
    try:
        res = client.get("/api/cameras/CA-19/snapshot.jpg", headers=auth_headers("operator"))
        assert res.status_code == 503
        assert "cannot be opened" in res.json()["detail"]
    finally:
        # The seeded database is shared by the session: put the demo back as it was.
        with seeded.begin() as conn:
            conn.execute(swap, {"url": original})
