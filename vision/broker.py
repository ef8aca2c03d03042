"""Detection events through NATS JetStream (issue 23): workers publish, the API's writers store.

Worker side, `SpooledPublisher`: every event is first appended to a spool file on disk, then
a background thread publishes the spool to JetStream in order and deletes each segment once
every message of it is acknowledged by the stream. A broker outage (or a worker restart)
therefore loses nothing: the spool is replayed when the broker is back. Each event carries
an `event_uid`, sent as `Nats-Msg-Id` (JetStream drops duplicates within its window) and
stored under a unique index (the writer skips one already stored), so a replay after a
half-acknowledged segment stores nothing twice.

API side, `run_writer`: a durable pull consumer shared by every replica (each message goes
to one of them), storing batches in one transaction and acknowledging after the commit; a
failed commit is redelivered. SSE streams see the stored events as before (NOTIFY).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from layers.settings import Settings
from layers.vision.events import EventIn, insert_events

SUBJECT_PREFIX = "iocmap.events"
CONSUMER = "iocmap-writer"
# JetStream drops a re-published message id within this window; the database index past it.
DUPLICATE_WINDOW_S = 600.0
RETRY_S = 0.5
OPEN_SEGMENT = "open.jsonl"

log = logging.getLogger(__name__)


async def _connect(url: str) -> Any:
    """A NATS connection that keeps reconnecting on its own once made."""
    import nats

    return await nats.connect(
        url,
        connect_timeout=2,
        reconnect_time_wait=RETRY_S,
        max_reconnect_attempts=-1,
        allow_reconnect=True,
    )


async def ensure_stream(js: Any, stream: str) -> None:
    """Create the file-backed stream of detection events if it does not exist."""
    from nats.js.api import StorageType, StreamConfig
    from nats.js.errors import NotFoundError

    try:
        await js.stream_info(stream)
    except NotFoundError:
        await js.add_stream(
            StreamConfig(
                name=stream,
                subjects=[f"{SUBJECT_PREFIX}.>"],
                storage=StorageType.FILE,
                duplicate_window=DUPLICATE_WINDOW_S,
            )
        )


class SpooledPublisher:
    """Publishes events to JetStream through an on-disk spool (see the module docstring)."""

    def __init__(self, url: str, spool_dir: Path, stream: str) -> None:
        self.url = url
        self.spool = spool_dir
        self.stream = stream
        self.spool.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._seq = itertools.count(int(max((_seg_no(p) for p in self._segments()), default=0)) + 1)
        self._closed = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._wake: asyncio.Event | None = None
        self.published = 0
        self._thread = threading.Thread(target=self._run, name="iocmap-broker-pub", daemon=True)
        self._thread.start()

    def publish(self, events: Sequence[EventIn]) -> list[EventIn]:
        """Spool events (durably, before returning) for publication; returns them with ids."""
        stamped = [
            e if e.event_uid else e.model_copy(update={"event_uid": uuid.uuid4()}) for e in events
        ]
        data = b"".join(orjson.dumps(e.model_dump(mode="json")) + b"\n" for e in stamped)
        with self._lock, open(self.spool / OPEN_SEGMENT, "ab") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)
        return stamped

    def pending(self) -> int:
        """Events spooled and not yet acknowledged by the broker."""
        with self._lock:
            return sum(_count_lines(p) for p in [*self._segments(), self.spool / OPEN_SEGMENT])

    def close(self, timeout_s: float = 10.0) -> None:
        """Publish what is spooled (up to timeout_s), then stop; the rest stays on disk."""
        waited = 0.0
        while self.pending() and waited < timeout_s:
            threading.Event().wait(0.1)
            waited += 0.1
        self._closed.set()
        if self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)
        self._thread.join(timeout_s)

    # --- the publishing thread ------------------------------------------------------------

    def _segments(self) -> list[Path]:
        return sorted(self.spool.glob("seg-*.jsonl"), key=_seg_no)

    def _rotate(self) -> None:
        """Close the open segment, so the thread may publish it while new events go on."""
        with self._lock:
            open_seg = self.spool / OPEN_SEGMENT
            if open_seg.exists() and open_seg.stat().st_size > 0:
                open_seg.rename(self.spool / f"seg-{next(self._seq):012d}.jsonl")

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._wake = asyncio.Event()
        nc: Any = None
        try:
            while not self._closed.is_set():
                try:
                    if nc is None or nc.is_closed:
                        nc = await _connect(self.url)
                        await ensure_stream(nc.jetstream(), self.stream)
                    await self._drain(nc.jetstream())
                except Exception as exc:  # broker away: keep the spool, try again
                    log.warning("broker unavailable, events kept on disk: %s", exc)
                    await asyncio.sleep(RETRY_S)
                    continue
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=1.0)
        finally:
            if nc is not None and not nc.is_closed:
                with contextlib.suppress(Exception):
                    await nc.close()

    async def _drain(self, js: Any) -> None:
        self._rotate()
        for seg in self._segments():
            for line in seg.read_bytes().splitlines():
                if not line.strip():
                    continue
                doc = orjson.loads(line)
                await js.publish(
                    f"{SUBJECT_PREFIX}.{_subject_token(doc['camera_id'])}",
                    line,
                    timeout=2.0,
                    headers={"Nats-Msg-Id": str(doc["event_uid"])},
                )
                self.published += 1
            seg.unlink()  # every message of it is in the stream


def _seg_no(p: Path) -> int:
    try:
        return int(p.stem.split("-", 1)[1])
    except (IndexError, ValueError):
        return 0


def _count_lines(p: Path) -> int:
    try:
        return sum(1 for line in p.read_bytes().splitlines() if line.strip())
    except FileNotFoundError:
        return 0


def _subject_token(camera_id: str) -> str:
    """A camera id as one NATS subject token (no dots, spaces or wildcards)."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in camera_id) or "_"


def store_batch(engine: Engine, docs: Sequence[bytes]) -> int:
    """Store published events in one transaction (idempotent); returns how many were new."""
    events = [EventIn.model_validate_json(d) for d in docs]
    with engine.begin() as conn:
        return len(insert_events(conn, events))


async def run_writer(engine: Engine, settings: Settings, stop: asyncio.Event) -> None:
    """Store events from the broker until `stop` is set; reconnects by itself."""
    assert settings.broker_url is not None
    from nats.errors import TimeoutError as NatsTimeout
    from nats.js.api import AckPolicy, ConsumerConfig

    while not stop.is_set():
        nc: Any = None
        try:
            nc = await _connect(settings.broker_url)
            js = nc.jetstream()
            await ensure_stream(js, settings.broker_stream)
            sub = await js.pull_subscribe(
                f"{SUBJECT_PREFIX}.>",
                durable=CONSUMER,
                stream=settings.broker_stream,
                config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, ack_wait=30),
            )
            while not stop.is_set():
                try:
                    msgs = await sub.fetch(settings.broker_batch, timeout=1.0)
                except (NatsTimeout, TimeoutError):
                    continue
                try:
                    await run_in_threadpool(store_batch, engine, [m.data for m in msgs])
                except Exception:
                    log.exception("storing %d broker events failed; redelivered later", len(msgs))
                    for m in msgs:
                        await m.nak(delay=1.0)
                    continue
                for m in msgs:
                    await m.ack()
        except Exception as exc:
            log.warning("event writer: broker unavailable (%s); retrying", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=RETRY_S * 2)
        finally:
            if nc is not None and not nc.is_closed:
                with contextlib.suppress(Exception):
                    await nc.close()
