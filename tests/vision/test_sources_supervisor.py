"""Frame sources (reconnect with backoff, status events), snapshot polling, and the supervisor."""

from __future__ import annotations

import http.server
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest
from sqlalchemy import Engine, text

from layers.settings import Settings
from layers.vision import cameras
from vision.runner import RunOptions, Supervisor
from vision.sources import Backoff, OpenCVSource, SnapshotSource, open_source
from vision.synthetic import street_scene

START = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)


def write_clip(path: Path, n: int = 30, fps: float = 10.0) -> None:
    """A short MJPG AVI of the synthetic street."""
    scene = street_scene(fps)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (640, 352))
    for i, (frame, _) in enumerate(scene.frames()):
        if i >= n:
            break
        writer.write(frame)
    writer.release()


def test_file_source_reconnects_with_backoff_and_reports_status(tmp_path: Path) -> None:
    clip = tmp_path / "clip.avi"
    statuses: list[str] = []
    sleeps: list[float] = []

    def fake_sleep(s: float) -> None:
        sleeps.append(s)
        if len(sleeps) == 3:
            write_clip(clip)  # the camera comes back during the third wait

    src = OpenCVSource(
        str(clip),
        on_status=lambda st, _d: statuses.append(st),
        start_time=START,
        backoff=Backoff(0.5, 4.0),
        sleep=fake_sleep,
    )
    got = list(src.frames())
    assert statuses == ["offline", "online", "stopped"]
    assert sleeps == [0.5, 1.0, 2.0]
    assert len(got) == 30 and got[0][1] == START
    assert (got[-1][1] - START).total_seconds() == pytest.approx(2.9, abs=0.01)


def test_source_gives_up_after_max_attempts_and_loops_files(tmp_path: Path) -> None:
    src = OpenCVSource(str(tmp_path / "none.mp4"), max_attempts=2, sleep=lambda s: None)
    assert list(src.frames()) == []
    clip = tmp_path / "c.avi"
    write_clip(clip, n=5)
    looped = OpenCVSource(str(clip), loop=True, start_time=START)
    times = []
    for _, t in looped.frames():
        times.append(t)
        if len(times) == 12:
            looped.close()
    assert len(times) == 12 and all(b > a for a, b in zip(times, times[1:], strict=False))


def test_snapshot_url_is_polled_with_status(tmp_path: Path) -> None:
    ok, jpeg = cv2.imencode(".jpg", np.full((40, 60, 3), 128, np.uint8))
    assert ok
    hits = {"n": 0}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits["n"] += 1
            if hits["n"] == 1:
                self.send_response(503)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.end_headers()
            self.wfile.write(jpeg.tobytes())

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/snapshot.jpg"
        statuses: list[str] = []
        src = open_source(url, on_status=lambda st, _d: statuses.append(st), sleep=lambda s: None)
        assert isinstance(src, SnapshotSource)
        frames = []
        for frame, _ in src.frames():
            frames.append(frame)
            if len(frames) == 2:
                src.close()
        assert statuses == ["offline", "online"] and frames[0].shape == (40, 60, 3)
    finally:
        server.shutdown()


def test_supervisor_runs_each_enabled_camera_in_its_own_process(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    clip = tmp_path / "sup.avi"
    write_clip(clip, n=20)
    with engine.begin() as conn:
        for cam_id, enabled in (("sup_a", True), ("sup_b", False)):
            cameras.upsert_camera(
                conn,
                cameras.CameraSpec(
                    camera_id=cam_id,
                    name=cam_id,
                    lon=105.68,
                    lat=18.68,
                    stream_url=str(clip),
                    enabled=enabled,
                ),
            )
        # Other tests' cameras stay out of this supervisor's way.
        others = [c.camera_id for c in cameras.list_cameras(conn) if c.camera_id != "sup_a"]
    sup = Supervisor(settings, RunOptions(realtime=False, max_frames=15))
    sup._enabled = lambda _e: ["sup_a"]  # type: ignore[method-assign]
    sup.reconcile(engine)
    assert set(sup.procs) == {"sup_a"} and "sup_b" in others
    proc = sup.procs["sup_a"]
    proc.join(120)
    assert proc.exitcode == 0
    with engine.connect() as conn:
        state = conn.execute(
            text("SELECT status, worker_pid FROM camera_state WHERE camera_id = 'sup_a'")
        ).one()
        online = conn.execute(
            text(
                "SELECT count(*) FROM detection_event WHERE camera_id = 'sup_a' "
                "AND event_type = 'camera_online'"
            )
        ).scalar()
    assert state[0] == "stopped" and state[1] != os.getpid() and online == 1
    # A worker that exits is restarted only after its backoff.
    sup.reconcile(engine)
    assert "sup_a" not in sup.procs
    sup.stop.set()


def test_file_uri_is_read_as_a_file(tmp_path: Path) -> None:
    clip = tmp_path / "uri clip.avi"
    write_clip(clip, n=4)
    src = OpenCVSource(clip.as_uri(), start_time=START)
    got = [t for _, t in src.frames()]
    assert src.is_file and got[0] == START and len(got) == 4
