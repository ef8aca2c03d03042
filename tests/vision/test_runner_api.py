"""End to end: the real street video through a camera worker into PostGIS, then the API."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from geo_api.main import create_app
from layers.settings import Settings
from layers.vision import cameras, events
from vision.geo import GroundFrame, pose_calibration
from vision.runner import CameraWorker, RunOptions, apply_retention

VIDEO = Path(__file__).resolve().parents[2] / "vision" / "data" / "video" / "street-640x352.mp4"
CAM = "demo_street_test"
START = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)


def geojson_from_pixels(
    spec: cameras.CameraSpec, pixels: list[tuple[float, float]], kind: str
) -> dict:
    """Map geometry of image pixels through the camera's pose calibration."""
    cal = pose_calibration(
        GroundFrame(spec.lon, spec.lat),
        640,
        352,
        spec.heading_deg,
        spec.fov_deg,
        spec.mount_height_m,
        spec.range_m,
    )
    lonlat = cal.image_to_wgs84(pixels).tolist()
    if kind == "LineString":
        return {"type": "LineString", "coordinates": lonlat}
    return {"type": "Polygon", "coordinates": [[*lonlat, lonlat[0]]]}


@pytest.fixture(scope="module")
def street_run(engine: Engine, settings: Settings) -> dict:
    """Register the demo street camera with zones and run 8 s of the real video once."""
    spec = cameras.CameraSpec(
        camera_id=CAM,
        name="Phố mẫu (video thật)",
        lon=105.6813,
        lat=18.6796,
        heading_deg=20,
        fov_deg=70,
        range_m=30,
        mount_height_m=6,
        stream_url="vision/data/video/street-640x352.mp4",
    )
    with engine.begin() as conn:
        cameras.upsert_camera(conn, spec)
        cameras.add_zone(
            conn,
            CAM,
            cameras.ZoneSpec(
                name="Vạch đếm",
                kind="counting_line",
                geometry=geojson_from_pixels(spec, [(200, 200), (630, 200)], "LineString"),
            ),
        )
        cameras.add_zone(
            conn,
            CAM,
            cameras.ZoneSpec(
                name="Lòng đường",
                kind="lane",
                params={"direction_deg": 20, "speed_limit_kmh": 40},
                geometry=geojson_from_pixels(
                    spec, [(150, 352), (640, 352), (640, 140), (150, 140)], "Polygon"
                ),
            ),
        )
    worker = CameraWorker(
        settings,
        CAM,
        RunOptions(
            realtime=False,
            max_frames=200,
            start_time=START,
            privacy_blur=True,
            frame_interval_s=1.0,
        ),
        engine=engine,
    )
    summary = worker.run()
    return {"summary": summary, "spec": spec}


def test_real_video_events_land_in_postgis(engine: Engine, street_run: dict) -> None:
    summary = street_run["summary"]
    assert summary.frames == 200 and summary.events.get("detection", 0) >= 2
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT event_type, ST_Distance(geom::geography, "
                "ST_SetSRID(ST_MakePoint(105.6813, 18.6796), 4326)::geography) AS d, "
                "snapshot_path, observed_at FROM detection_event WHERE camera_id = :c"
            ),
            {"c": CAM},
        ).all()
        kinds = [r[0] for r in rows]
        assert "camera_online" in kinds and kinds.count("detection") == summary.events["detection"]
        for kind, dist, snap, t in rows:
            if kind == "detection":
                assert dist < 45  # within 1.5 × the camera's range
                assert snap and Path(snap).is_file()
                assert START <= t <= START + timedelta(seconds=9)
        cam = cameras.get_camera(conn, CAM)
        assert cam.status == "stopped" and cam.last_frame_at is not None
        assert cam.frame_path and Path(cam.frame_path).is_file()
        crossings = summary.events.get("line_crossing", 0)
        counted = conn.execute(
            text(
                "SELECT coalesce(sum((properties->>'count')::int), 0) FROM feature f "
                "JOIN layer l ON l.id = f.layer_id WHERE l.slug = 'traffic_counts' "
                "AND properties->>'camera_id' = :c"
            ),
            {"c": CAM},
        ).scalar()
        assert counted == crossings


def test_api_lists_cameras_events_and_snapshots(
    settings: Settings, street_run: dict, auth_headers: Callable[..., dict[str, str]]
) -> None:
    with TestClient(create_app(settings), headers=auth_headers("operator")) as client:
        cams = client.get("/api/cameras").json()
        mine = next(c for c in cams if c["camera_id"] == CAM)
        # The worker has stopped: its last picture is not live, whatever its age.
        assert mine["worker_status"] == "stopped" and mine["status"] == "offline"
        assert mine["last_frame_at"] and mine["last_event"] and not mine["picture"]["live"]
        evs = client.get(f"/api/cameras/{CAM}/events", params={"type": "detection"}).json()
        assert evs and all(e["event_type"] == "detection" for e in evs)
        assert evs[0]["lon"] and evs[0]["class_name"]
        old = client.get(f"/api/cameras/{CAM}/events", params={"to": "2026-11-22T02:00:00Z"}).json()
        assert old == []
        plain = client.get(f"/api/cameras/{CAM}/snapshot.jpg")
        drawn = client.get(f"/api/cameras/{CAM}/snapshot.jpg", params={"boxes": 1, "zones": 1})
        assert plain.status_code == drawn.status_code == 200
        assert plain.headers["content-type"] == "image/jpeg"
        a = cv2.imdecode(np.frombuffer(plain.content, np.uint8), cv2.IMREAD_COLOR)
        b = cv2.imdecode(np.frombuffer(drawn.content, np.uint8), cv2.IMREAD_COLOR)
        assert a.shape == b.shape == (352, 640, 3)
        # The counting line (cyan) is drawn where zones project into the image.
        assert np.abs(a.astype(int) - b.astype(int)).sum() > 10_000
        snap = client.get(f"/api/events/{evs[0]['id']}/snapshot.jpg")
        assert snap.status_code == 200 and snap.content[:2] == b"\xff\xd8"
        zones = client.get(f"/api/cameras/{CAM}/zones").json()
        assert [f["properties"]["kind"] for f in zones["features"]] == ["counting_line", "lane"]
        assert client.get("/api/cameras/nope/events").status_code == 404
        assert client.get("/api/cameras/nope/snapshot.jpg").status_code == 404


def test_sse_stream_delivers_events_from_another_process_connection(
    engine: Engine, settings: Settings, auth_headers: Callable[..., dict[str, str]]
) -> None:
    def insert_later(ready: threading.Event) -> None:
        ready.wait(10)
        with engine.begin() as conn:
            events.insert_events(
                conn,
                [
                    events.EventIn(
                        camera_id="other_cam", event_type="detection", observed_at=START
                    ),
                    events.EventIn(
                        camera_id=CAM,
                        event_type="intrusion",
                        observed_at=START,
                        lon=105.68,
                        lat=18.68,
                        class_name="person",
                    ),
                ],
            )

    ready = threading.Event()
    t = threading.Thread(target=insert_later, args=(ready,))
    t.start()
    got: list[dict] = []
    with (
        TestClient(create_app(settings), headers=auth_headers("operator")) as client,
        client.stream(
            "GET", "/api/events/stream", params={"camera_id": CAM, "max_events": 1}
        ) as resp,
    ):
        current = ""
        for line in resp.iter_lines():
            if line.startswith("event:"):
                current = line.split(":", 1)[1].strip()
                if current == "ready":
                    ready.set()
            elif line.startswith("data:") and current not in ("ready", ""):
                got.append({"event": current, **json.loads(line.split(":", 1)[1])})
    t.join()
    assert len(got) == 1 and got[0]["event"] == "intrusion" and got[0]["camera_id"] == CAM
    assert got[0]["lon"] == pytest.approx(105.68)


def test_retention_deletes_old_snapshots(
    engine: Engine, settings: Settings, street_run: dict
) -> None:
    with engine.connect() as conn:
        snaps = (
            conn.execute(
                text(
                    "SELECT snapshot_path FROM detection_event WHERE camera_id = :c AND snapshot_path IS NOT NULL"
                ),
                {"c": CAM},
            )
            .scalars()
            .all()
        )
    assert snaps and all(Path(p).is_file() for p in snaps)
    # The clip is dated 2026-11-22; a "now" 30 days later puts every snapshot out of retention.
    removed = apply_retention(settings, engine, now=datetime(2026, 12, 22, tzinfo=UTC))
    assert removed >= len(set(snaps))
    assert not any(Path(p).exists() for p in snaps)
    latest = Path(settings.media_root) / "cameras" / CAM / "latest.jpg"
    assert latest.is_file()  # the live frame is not a retained snapshot
