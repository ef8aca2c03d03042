"""Honest camera status: a camera is online only while its last frame is fresh (pure)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

FRESH_WORKER_STATES = frozenset({"online"})


def effective_status(
    worker_status: str, last_frame_at: datetime | None, now: datetime, stale_after_s: float
) -> str:
    """What to tell an operator: `online` only while a frame younger than `stale_after_s`
    exists; `stale` when the worker says online but frames stopped coming; `offline` when
    the worker is gone or its stream is down; `unknown`/`starting` before any frame."""
    fresh = last_frame_at is not None and (now - last_frame_at).total_seconds() <= stale_after_s
    if worker_status in FRESH_WORKER_STATES:
        return "online" if fresh else "stale"
    if worker_status == "starting" and last_frame_at is None:
        return "starting"
    if last_frame_at is None and worker_status in ("unknown", "stopped"):
        return "unknown"
    return "offline"


def picture_doc(
    worker_status: str, last_frame_at: datetime | None, now: datetime, stale_after_s: float
) -> dict[str, Any]:
    """The time and freshness of the camera's latest picture, for the snapshot panel."""
    status = effective_status(worker_status, last_frame_at, now, stale_after_s)
    age = (now - last_frame_at).total_seconds() if last_frame_at is not None else None
    return {
        "at": last_frame_at.isoformat() if last_frame_at is not None else None,
        "age_s": round(age, 1) if age is not None else None,
        "live": status == "online",
        "stale_after_s": stale_after_s,
    }
