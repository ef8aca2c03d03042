"""Frame sources: OpenCV VideoCapture (file, RTSP, HTTP MJPEG) and polled snapshot URLs.

Both reconnect with exponential backoff and report `online` / `offline` through a
callback, so the runner can record camera status and raise events.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from vision.plugins import SOURCES, Frame, FrameSource

StatusCallback = Callable[[str, str], None]
SNAPSHOT_SUFFIXES = (".jpg", ".jpeg", ".png")


def _now() -> datetime:
    return datetime.now(UTC)


def _shrink(frame: Frame, max_width: int | None) -> Frame:
    if max_width is None or frame.shape[1] <= max_width:
        return frame
    scale = max_width / frame.shape[1]
    out = cv2.resize(frame, (max_width, round(frame.shape[0] * scale)), cv2.INTER_AREA)
    return np.asarray(out, dtype=np.uint8)


class Backoff:
    """Exponential backoff delays: initial, ×factor each failure, capped; reset on success."""

    def __init__(self, initial_s: float = 0.5, max_s: float = 30.0, factor: float = 2.0) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        self.factor = factor
        self.next_s = initial_s

    def fail(self) -> float:
        """Delay before the next attempt."""
        delay = self.next_s
        self.next_s = min(self.max_s, self.next_s * self.factor)
        return delay

    def reset(self) -> None:
        """Back to the initial delay after a success."""
        self.next_s = self.initial_s


class OpenCVSource:
    """Frames from cv2.VideoCapture, reconnecting with backoff.

    Files get timestamps from the clip's own clock (start time + position), so results
    are reproducible; `realtime=True` paces a file at its frame rate, as a live camera.
    """

    def __init__(
        self,
        url: str,
        on_status: StatusCallback | None = None,
        loop: bool = False,
        realtime: bool = False,
        max_width: int | None = None,
        start_time: datetime | None = None,
        backoff: Backoff | None = None,
        max_attempts: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = file_path(url)
        self.on_status = on_status or (lambda status, detail: None)
        self.loop = loop
        self.realtime = realtime
        self.max_width = max_width
        self.start_time = start_time
        self.backoff = backoff or Backoff()
        self.max_attempts = max_attempts
        self.sleep = sleep
        self.is_file = "://" not in self.url
        self._closed = False
        self._status: str | None = None
        self.fps: float = 0.0

    def _set_status(self, status: str, detail: str) -> None:
        if status != self._status:
            self._status = status
            self.on_status(status, detail)

    def _open(self) -> cv2.VideoCapture | None:
        if self.is_file and not Path(self.url).exists():
            return None
        cap = cv2.VideoCapture(self.url)
        if not cap.isOpened():
            cap.release()
            return None
        return cap

    def frames(self) -> Iterator[tuple[Frame, datetime]]:
        """Frames with timestamps until closed, the file ends (without loop) or retries run out."""
        failures = 0
        clip_start = self.start_time or _now()
        while not self._closed:
            cap = self._open()
            if cap is None:
                failures += 1
                self._set_status("offline", f"cannot open {self.url}")
                if self.max_attempts is not None and failures >= self.max_attempts:
                    return
                self.sleep(self.backoff.fail())
                continue
            failures = 0
            self.backoff.reset()
            self._set_status("online", "")
            self.fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
            wall0 = time.monotonic()
            last_ms = 0.0
            try:
                while not self._closed:
                    ok, frame = cap.read()
                    if not ok or frame is None:
                        break
                    if self.is_file:
                        last_ms = float(cap.get(cv2.CAP_PROP_POS_MSEC))
                        t = clip_start + timedelta(milliseconds=last_ms)
                        if self.realtime:
                            ahead = last_ms / 1000.0 - (time.monotonic() - wall0)
                            if ahead > 0:
                                self.sleep(ahead)
                    else:
                        t = _now()
                    yield _shrink(np.asarray(frame, dtype=np.uint8), self.max_width), t
            finally:
                cap.release()
            if self._closed:
                return
            if self.is_file:
                if not self.loop:
                    self._set_status("stopped", "end of file")
                    return
                period = 1000.0 / self.fps if self.fps > 0 else 40.0
                clip_start += timedelta(milliseconds=last_ms + period)
                continue
            self._set_status("offline", "stream ended")
            self.sleep(self.backoff.fail())

    def close(self) -> None:
        """Stop after the current frame."""
        self._closed = True


class SnapshotSource:
    """Polls a still-image URL (many IP cameras' /snapshot.jpg) every `interval_s`."""

    def __init__(
        self,
        url: str,
        on_status: StatusCallback | None = None,
        interval_s: float = 1.0,
        max_width: int | None = None,
        backoff: Backoff | None = None,
        max_attempts: int | None = None,
        timeout_s: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url.removeprefix("snapshot+")
        self.on_status = on_status or (lambda status, detail: None)
        self.interval_s = interval_s
        self.max_width = max_width
        self.backoff = backoff or Backoff()
        self.max_attempts = max_attempts
        self.timeout_s = timeout_s
        self.sleep = sleep
        self._closed = False
        self._status: str | None = None

    def frames(self) -> Iterator[tuple[Frame, datetime]]:
        """One decoded image per poll."""
        import httpx

        failures = 0
        with httpx.Client(timeout=self.timeout_s, follow_redirects=True) as client:
            while not self._closed:
                frame = None
                detail = ""
                try:
                    resp = client.get(self.url)
                    resp.raise_for_status()
                    data = np.frombuffer(resp.content, dtype=np.uint8)
                    frame = cv2.imdecode(data, cv2.IMREAD_COLOR)
                    detail = "not an image" if frame is None else ""
                except httpx.HTTPError as exc:
                    detail = str(exc)
                if frame is None:
                    failures += 1
                    if self._status != "offline":
                        self._status = "offline"
                        self.on_status("offline", detail)
                    if self.max_attempts is not None and failures >= self.max_attempts:
                        return
                    self.sleep(self.backoff.fail())
                    continue
                failures = 0
                self.backoff.reset()
                if self._status != "online":
                    self._status = "online"
                    self.on_status("online", "")
                yield _shrink(np.asarray(frame, dtype=np.uint8), self.max_width), _now()
                self.sleep(self.interval_s)

    def close(self) -> None:
        """Stop polling."""
        self._closed = True


def file_path(url: str) -> str:
    """A local path for `file://` URIs (the demo registry uses them); other URLs unchanged."""
    if url.startswith("file://"):
        from urllib.parse import unquote, urlparse

        return unquote(urlparse(url).path)
    return url


class OpenCVSourceConfig(BaseModel):
    """Parameters of the `opencv` source (files, RTSP, HTTP MJPEG)."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1)
    loop: bool = False
    realtime: bool = False
    max_width: int | None = Field(None, ge=64)
    max_attempts: int | None = Field(None, ge=1)


class SnapshotSourceConfig(BaseModel):
    """Parameters of the `snapshot` source (a polled still-image URL)."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1)
    interval_s: float = Field(1.0, gt=0.0)
    max_width: int | None = Field(None, ge=64)
    max_attempts: int | None = Field(None, ge=1)
    timeout_s: float = Field(5.0, gt=0.0)


def source_kind(url: str) -> str:
    """`snapshot` for `snapshot+http…` or an http URL of an image; else `opencv`."""
    lower = url.lower().split("?")[0]
    if url.startswith("snapshot+") or (
        lower.startswith(("http://", "https://")) and lower.endswith(SNAPSHOT_SUFFIXES)
    ):
        return "snapshot"
    return "opencv"


def open_source(
    url: str, params: dict[str, Any] | None = None, where: str = "", **runtime: Any
) -> FrameSource:
    """The registered source for a URL, built from its typed config and runtime objects.

    `params` holds configuration (validated: an unknown key is refused); `runtime` the
    objects that are not (on_status, backoff, sleep, start_time).
    """
    kind = source_kind(url)
    # The runner sets the same options for every camera; each kind ignores the other's.
    other = {"interval_s", "timeout_s"} if kind == "opencv" else {"loop", "realtime"}
    cfg = {k: v for k, v in (params or {}).items() if k not in other}
    return SOURCES.create(kind, {"url": url, **cfg}, where=where, **runtime)


@SOURCES.register("opencv", OpenCVSourceConfig)
def _make_opencv(config: OpenCVSourceConfig, **runtime: Any) -> OpenCVSource:
    return OpenCVSource(**config.model_dump(), **runtime)


@SOURCES.register("snapshot", SnapshotSourceConfig)
def _make_snapshot(config: SnapshotSourceConfig, **runtime: Any) -> SnapshotSource:
    keep = {k: v for k, v in runtime.items() if k in ("on_status", "backoff", "sleep")}
    return SnapshotSource(**config.model_dump(), **keep)
