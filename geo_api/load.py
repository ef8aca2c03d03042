"""Load shedding: at most N requests are handled at once; the rest wait briefly, then 503.

Without it, a burst of slow requests queues for connections inside SQLAlchemy's pool (and for
threads in front of it) until the pool timeout, then fails with 500s. Here a request waits
for a slot at most settings.request_queue_timeout_s and is then told to come back
(503 + Retry-After). Tiles (their own async pool, bounded the same way), long-lived streams
and /health are not counted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from starlette.requests import Request

from geo_api import i18n
from layers.settings import Settings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def inflight_limit(settings: Settings) -> int:
    """Requests handled at once: by default one per SQLAlchemy connection the pool can open."""
    return settings.max_inflight_requests or settings.db_pool_size + settings.db_max_overflow


def _exempt(scope: Scope) -> bool:
    path: str = scope["path"]
    return path == "/health" or path.startswith(("/tiles/", "/assets/")) or path.endswith("/stream")


class LoadShedMiddleware:
    """Pure ASGI middleware bounding the requests in flight (see the module docstring)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.limit = inflight_limit(settings)
        self._sem: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._sem is None or self._sem[0] is not loop:  # a test may run apps on new loops
            self._sem = (loop, asyncio.Semaphore(self.limit))
        return self._sem[1]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _exempt(scope):
            await self.app(scope, receive, send)
            return
        sem = self._semaphore()
        try:
            await asyncio.wait_for(sem.acquire(), self.settings.request_queue_timeout_s)
        except TimeoutError:
            await _busy(send, self.settings.retry_after_s, i18n.request_lang(Request(scope)))
            return
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                sem.release()

        async def send_then_release(message: Message) -> None:
            await send(message)
            # The slot is free once the answer is sent: background tasks (an import job)
            # run after it inside the same call and must not hold it.
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                release()

        try:
            await self.app(scope, receive, send_then_release)
        finally:
            release()


async def _busy(send: Send, retry_after: int, lang: str) -> None:
    detail = i18n.t(lang, "err.edge.busy")
    body = orjson.dumps(
        {"status": 503, "code": "unavailable", "detail": detail, "description": detail}
    )
    headers = [
        (b"content-type", b"application/json"),
        (b"retry-after", str(retry_after).encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})
