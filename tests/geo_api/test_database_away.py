"""Items 10 and 5 of issue 14: with the database away the API answers 503 + Retry-After (never
500), still serves cached public tiles, recovers by itself, and sheds load instead of queueing.

The database is cut by a TCP relay in front of the shared cluster (which is never stopped).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import suppress

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from geo_api import security
from geo_api.main import create_app
from geo_api.security import issue_token
from layers.auth import users
from layers.settings import Settings

Headers = Callable[..., dict[str, str]]


class Relay:
    """A TCP relay to PostgreSQL that can be cut (listener and live connections) and restored."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._server: socket.socket | None = None

    def up(self) -> None:
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", self.port))
        srv.listen(64)
        self._server = srv
        threading.Thread(target=self._accept, args=(srv,), daemon=True).start()

    def _accept(self, srv: socket.socket) -> None:
        while True:
            try:
                client, _ = srv.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._socks += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        with suppress(OSError):
            while data := a.recv(65536):
                b.sendall(data)
        for s in (a, b):
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def down(self) -> None:
        if self._server is not None:
            with suppress(OSError):  # wakes the accepting thread (close alone does not)
                self._server.shutdown(socket.SHUT_RDWR)
            self._server.close()
            self._server = None
        with self._lock:
            socks, self._socks = self._socks, []
        for s in socks:
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


@pytest.fixture
def relay(settings: Settings) -> Iterator[Relay]:
    url = make_url(settings.database_url or "")
    r = Relay((url.host or "127.0.0.1", url.port or 5432))
    r.up()
    yield r
    r.down()


def _via(settings: Settings, relay: Relay, **update: object) -> Settings:
    url = make_url(settings.database_url or "").set(port=relay.port)
    return settings.model_copy(
        update={
            "database_url": url.render_as_string(hide_password=False),
            "db_pool_timeout_s": 1.0,
            "auth_cache_s": 0.0,
            **update,
        }
    )


def test_database_away_gives_503_and_cached_tiles_are_still_served(
    seeded: Engine, settings: Settings, relay: Relay
) -> None:
    with seeded.begin() as conn:
        user = users.create_user(conn, "away_planner", "a long password 1", "planner")
    s = _via(settings, relay)
    token = {"Authorization": "Bearer " + issue_token(s, user)}
    tile = "/tiles/hospitals/9/406/225.mvt"
    with TestClient(create_app(s)) as c:
        warm = c.get(tile)
        assert warm.status_code in (200, 204)
        assert c.get("/api/layers").status_code == 200
        assert c.get("/api/auth/me", headers=token).status_code == 200

        relay.down()
        for url, headers in [
            ("/api/layers", {}),
            ("/api/layers/hospitals/features?limit=1", {}),
            ("/ogc/collections/hospitals/items?limit=1", {}),
            ("/api/auth/me", token),
            ("/health", token),
            ("/tiles/hospitals/9/407/225.mvt", {}),  # never rendered: needs the database
        ]:
            res = c.get(url, headers=headers)
            assert res.status_code == 503, (url, res.status_code, res.text[:300])
            if url != "/health":
                assert int(res.headers["retry-after"]) > 0, url
        again = c.get(tile)
        assert again.status_code == warm.status_code and again.content == warm.content

        relay.up()  # back: the pools replace their dead connections by themselves
        assert c.get("/api/layers").status_code == 200
        assert c.get("/api/auth/me", headers=token).status_code == 200
        # the tile pool retries its connections with a backoff: it comes back within seconds
        deadline = time.monotonic() + 30
        status = 503
        while status == 503 and time.monotonic() < deadline:
            status = c.get("/tiles/hospitals/9/407/225.mvt").status_code
            time.sleep(0.2)
        assert status in (200, 204)


def test_requests_beyond_the_inflight_limit_are_shed_with_503(
    seeded: Engine, settings: Settings, relay: Relay, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    s = _via(settings, relay, max_inflight_requests=1, request_queue_timeout_s=0.2)
    app = create_app(s)
    monkeypatch.setitem(security.POLICY, ("GET", "/api/slow"), security.PUBLIC)

    @app.get("/api/slow")
    async def slow() -> dict[str, bool]:
        await asyncio.sleep(1.0)
        return {"ok": True}

    with TestClient(app) as c:
        out: list[int] = []
        first = threading.Thread(target=lambda: out.append(c.get("/api/slow").status_code))
        first.start()
        time.sleep(0.3)
        second = c.get("/api/layers")
        first.join()
    assert second.status_code == 503 and int(second.headers["retry-after"]) > 0
    assert out == [200]
