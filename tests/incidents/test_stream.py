"""GET /api/incidents/stream against a live server: events arrive, each caller sees only theirs."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select

from layers.models.core import admin_unit
from layers.settings import Settings
from tests.conftest import live_server_for

Headers = Callable[..., dict[str, str]]
Event = tuple[str, str, dict[str, Any]]


@pytest.fixture(scope="module")
def server(seeded: Engine, settings: Settings) -> Iterator[str]:
    """A live uvicorn on the seeded test database (SSE needs a real server and LISTEN)."""
    with live_server_for(settings) as base:
        yield base


@pytest.fixture(scope="module")
def place(seeded: Engine) -> dict[str, Any]:
    """The most populous commune (the commune_staff default), a point in it, and a far one."""
    pt = func.ST_PointOnSurface(admin_unit.c.geom)
    with seeded.connect() as conn:
        rows = conn.execute(
            select(admin_unit.c.code, func.ST_X(pt), func.ST_Y(pt))
            .where(admin_unit.c.level == "commune", admin_unit.c.valid_to.is_(None))
            .order_by(admin_unit.c.population.desc(), admin_unit.c.code)
        ).all()
    code, x, y = rows[0]
    far = max(rows, key=lambda r: (r[1] - x) ** 2 + (r[2] - y) ** 2)
    return {"code": code, "here": [x, y], "far": [far[1], far[2]]}


class Listener:
    """Reads one SSE stream on a thread and queues (event, id, data) as they arrive."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.events: queue.Queue[Event] = queue.Queue()
        self.ready = threading.Event()
        self.stop = threading.Event()
        self.status = 0
        self._response: httpx.Response | None = None
        self._thread = threading.Thread(target=self._run, args=(url, headers), daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop reading and close the connection (so the server can shut down)."""
        self.stop.set()
        if self._response is not None:
            self._response.close()

    def _run(self, url: str, headers: dict[str, str]) -> None:
        try:
            self._read(url, headers)
        except (httpx.HTTPError, RuntimeError, ValueError):
            if not self.stop.is_set():
                raise

    def _read(self, url: str, headers: dict[str, str]) -> None:
        timeout = httpx.Timeout(5.0, read=None)
        with httpx.stream("GET", url, headers=headers, timeout=timeout) as r:
            self._response = r
            self.status = r.status_code
            if r.status_code != 200:
                self.ready.set()
                return
            kind, ident, data = "", "", ""
            for line in r.iter_lines():
                if self.stop.is_set():
                    return
                if line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("id:"):
                    ident = line[3:].strip()
                elif line.startswith("data:"):
                    data += line[5:].strip()
                elif line == "":
                    if kind == "ready":
                        self.ready.set()
                    elif kind:
                        self.events.put((kind, ident, json.loads(data or "{}")))
                    kind, ident, data = "", "", ""

    def until(self, pred: Callable[[Event], bool], wait: float = 20.0) -> list[Event]:
        """Events read until one matches pred (or the wait runs out); all of them, in order."""
        seen: list[Event] = []
        end = time.monotonic() + wait
        while time.monotonic() < end:
            try:
                ev = self.events.get(timeout=0.2)
            except queue.Empty:
                continue
            seen.append(ev)
            if pred(ev):
                return seen
        return seen


def test_stream_delivers_changes_within_each_callers_scope(
    server: str, auth_headers: Headers, place: dict[str, Any]
) -> None:
    op = auth_headers("operator")
    ubnd = f"000.{place['code']}.00.H40"
    url = f"{server}/api/incidents/stream"
    listeners = {
        "operator": Listener(url, op),
        "commune_staff": Listener(url, auth_headers("commune_staff")),
        "agency_staff": Listener(url, auth_headers("agency_staff", [ubnd])),
    }
    try:
        for name, lst in listeners.items():
            assert lst.ready.wait(20), f"{name}: no ready event"
            assert lst.status == 200, name
        citizen = httpx.get(url, headers=auth_headers("citizen"), timeout=5)
        assert citizen.status_code == 403

        def open_at(coords: list[float], title: str) -> dict[str, Any]:
            r = httpx.post(
                f"{server}/api/incidents",
                json={
                    "geometry": {"type": "Point", "coordinates": coords},
                    "type": "flood",
                    "severity": 3,
                    "title": title,
                },
                headers=op,
                timeout=30,
            )
            assert r.status_code == 200, r.text
            return dict(r.json())

        far = open_at(place["far"], "Ngập xa (stream)")
        here = open_at(place["here"], "Ngập gần (stream)")
        r = httpx.post(
            f"{server}/api/incidents/{here['id']}/transition",
            json={"to": "confirmed", "note": "đã xác minh"},
            headers=op,
            timeout=30,
        )
        assert r.status_code == 200, r.text

        def confirmed(ev: Event) -> bool:
            return ev[0] == "status" and ev[2].get("status") == "confirmed"

        # The operator sees everything: both openings and the confirmation, with the incident.
        got = listeners["operator"].until(confirmed)
        opened = {e[2]["id"]: e for e in got if e[0] == "opened"}
        assert set(opened) >= {far["id"], here["id"]}
        assert opened[here["id"]][1] == str(here["id"])
        doc = opened[here["id"]][2]
        assert doc["title"] == "Ngập gần (stream)" and doc["status"] == "new"
        assert doc["commune_code"] == place["code"] and doc["geometry"]["type"] == "Point"
        last = got[-1]
        assert last[1] == str(here["id"]) and last[2]["status"] == "confirmed"
        more = listeners["operator"].until(lambda e: e[0] == "tasks_created")
        assert more and more[-1][0] == "tasks_created" and more[-1][2]["id"] == here["id"]

        # Commune staff: their commune's incident only.
        got = listeners["commune_staff"].until(confirmed)
        assert got and confirmed(got[-1]) and got[-1][2]["id"] == here["id"]
        ids = {e[2]["id"] for e in got}
        assert here["id"] in ids and far["id"] not in ids
        assert {e[2]["commune_code"] for e in got} == {place["code"]}

        # Agency staff: only incidents with a task of theirs, i.e. from the SOP's tasks on.
        got = listeners["agency_staff"].until(confirmed)
        assert got and confirmed(got[-1])
        assert {e[2]["id"] for e in got} == {here["id"]}
    finally:
        for lst in listeners.values():
            lst.close()
