"""Issue 23: detection events through NATS JetStream survive a broker outage, none twice.

A real nats-server (Debian's, loopback only, its own store directory) is stopped for
OUTAGE_S while a worker publishes; every event arrives once it is back, and none twice.
Bounded: the publisher sends a fixed number of events, every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from layers.models.vision import detection_event
from layers.settings import Settings
from layers.vision.events import EventIn
from vision.broker import SpooledPublisher, run_writer

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

NATS = "/usr/sbin/nats-server"
OUTAGE_S = 30.0
RATE_HZ = 20.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Nats:
    """nats-server with JetStream on a loopback port, stoppable and restartable."""

    def __init__(self, store: Path) -> None:
        self.port = _free_port()
        self.store = store
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [NATS, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.store)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("nats-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[Nats]:
    if not Path(NATS).exists():
        pytest.fail("nats-server is not installed: ./scripts/setup --test")
    server = Nats(tmp_path / "nats")
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(tmp_path / "nats", ignore_errors=True)


def _stored(engine: Engine, camera: str) -> tuple[int, int]:
    """(rows, distinct event ids) stored for the camera."""
    with engine.connect() as conn:
        row = conn.execute(
            select(func.count(), func.count(func.distinct(detection_event.c.event_uid))).where(
                detection_event.c.camera_id == camera
            )
        ).one()
    return int(row[0]), int(row[1])


def test_a_broker_outage_loses_no_event_and_stores_none_twice(
    engine: Engine, settings: Settings, nats_server: Nats, tmp_path: Path
) -> None:
    s = settings.model_copy(update={"broker_url": nats_server.url, "broker_batch": 50})
    camera = f"broker-{uuid.uuid4().hex[:8]}"

    # The API side: the writer, on a loop of its own.
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    writer = threading.Thread(
        target=lambda: loop.run_until_complete(run_writer(engine, s, stop)), daemon=True
    )
    writer.start()
    publisher = SpooledPublisher(nats_server.url, tmp_path / "spool", s.broker_stream)
    sent = 0

    def publish_for(seconds: float) -> None:
        nonlocal sent
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            publisher.publish(
                [
                    EventIn(
                        camera_id=camera,
                        event_type="line_crossing",
                        observed_at=datetime.now(UTC),
                        class_name="car",
                    )
                ]
            )
            sent += 1
            time.sleep(1 / RATE_HZ)

    try:
        publish_for(2.0)
        deadline = time.monotonic() + 30
        while _stored(engine, camera)[0] < sent and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _stored(engine, camera) == (sent, sent)  # flowing before the outage

        nats_server.stop()
        publish_for(OUTAGE_S)  # the worker goes on: its events wait on disk
        assert publisher.pending() > 0
        during = _stored(engine, camera)[0]
        assert during < sent
        nats_server.start()
        publish_for(1.0)

        deadline = time.monotonic() + 60
        while _stored(engine, camera)[0] < sent and time.monotonic() < deadline:
            time.sleep(0.2)
        rows, distinct = _stored(engine, camera)
        assert rows == sent and distinct == sent, (rows, distinct, sent)
        assert publisher.pending() == 0
        # Replaying an acknowledged segment again (a worker killed before deleting it)
        # stores nothing twice.
        again = [
            EventIn(
                camera_id=camera,
                event_type="line_crossing",
                observed_at=datetime(2026, 12, 8, tzinfo=UTC),
                event_uid=uuid.UUID(int=7),
            )
        ] * 3
        publisher.publish(again)
        deadline = time.monotonic() + 30
        while _stored(engine, camera)[0] < sent + 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)
        assert _stored(engine, camera) == (sent + 1, sent + 1)
    finally:
        publisher.close(timeout_s=5)
        loop.call_soon_threadsafe(stop.set)
        writer.join(15)
