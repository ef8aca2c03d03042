"""The simulated sector APIs, served by one small Starlette app (never mounted in geo_api).

Each system answers GET on its path with JSON records, paged (page/page_size, trang/so_ban_ghi
or a `next` link), filtered by an incremental parameter (`cap_nhat_tu` / `updated_since`:
records updated strictly after it) and optionally by period (`tu_ngay`, `den_ngay`).
`iocmap simulators serve --port 8071` runs it; tests and the demo seed run it in a thread.
"""

from __future__ import annotations

import socket
import threading
import time as _time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ingest.simulators.systems import (
    SYSTEMS,
    Record,
    Units,
    demo_units,
    stamp_dt,
    today_ict,
)

DEFAULT_SEED = 40
MAX_PAGE_SIZE = 5000


@dataclass
class Simulator:
    """State shared by the simulated systems: the seed, the clock and any late corrections."""

    seed: int = DEFAULT_SEED
    fixed_today: date | None = None
    units: Units | None = None
    token: str | None = None
    corrections: dict[str, dict[tuple[Any, ...], Record]] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    _cache: dict[tuple[str, date], list[Record]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def today(self) -> date:
        """The simulated day (Vietnam's today unless fixed)."""
        return self.fixed_today or today_ict()

    def set_today(self, day: date | None) -> None:
        """Move the simulated clock (None: follow the real one)."""
        self.fixed_today = day

    def records(self, system: str) -> list[Record]:
        """Every record the system holds today, corrections applied, in update order."""
        sys_ = SYSTEMS[system]
        day = self.today
        with self._lock:
            base = self._cache.get((system, day))
            if base is None:
                base = sys_.generate(self.units or demo_units(), self.seed, day)
                self._cache = {k: v for k, v in self._cache.items() if k[1] == day}
                self._cache[(system, day)] = base
            fixes = dict(self.corrections.get(system, {}))
        rows = [fixes.get(tuple(r.get(k) for k in sys_.key), r) for r in base]
        return sorted(rows, key=lambda r: (str(r.get(sys_.cursor_field)), str(r.get(sys_.key[0]))))

    def correct(
        self, system: str, key: tuple[Any, ...], changes: dict[str, Any], at: datetime | None = None
    ) -> Record:
        """A late correction: the record takes new values and a new update time."""
        sys_ = SYSTEMS[system]
        current = next(
            (r for r in self.records(system) if tuple(r.get(k) for k in sys_.key) == key), None
        )
        if current is None:
            raise KeyError(f"{system}: no record {key}")
        fixed = {
            **current,
            **changes,
            sys_.cursor_field: stamp_dt(at or datetime.now().astimezone()),
        }
        with self._lock:
            self.corrections.setdefault(system, {})[key] = fixed
        return fixed


def _int(q: Any, name: str, default: int) -> int:
    try:
        return int(q.get(name, default))
    except (TypeError, ValueError):
        return default


def _endpoint(sim: Simulator, name: str) -> Any:
    sys_ = SYSTEMS[name]

    async def handler(request: Request) -> JSONResponse:
        if sim.token and request.headers.get("authorization") != f"Bearer {sim.token}":
            return JSONResponse({"ma_loi": 401, "thong_bao": "Chưa xác thực"}, status_code=401)
        q = request.query_params
        sim.requests.append((name, dict(q)))
        del sim.requests[:-1000]  # a log for tests and curious operators, bounded
        rows = sim.records(name)
        since = q.get(sys_.since_param)
        if since:
            rows = [r for r in rows if str(r.get(sys_.cursor_field)) > since]
        lo, hi = q.get("tu_ngay"), q.get("den_ngay")
        if lo or hi:
            rows = [r for r in rows if _in_period(r.get(sys_.period_field), lo, hi)]
        size = max(1, min(_int(q, sys_.size_param, 100), MAX_PAGE_SIZE))
        total = len(rows)
        if sys_.next_link:
            offset = max(0, _int(q, "offset", 0))
            chunk = rows[offset : offset + size]
            nxt = (
                str(request.url.include_query_params(offset=offset + size))
                if offset + size < total
                else None
            )
            return JSONResponse({"total": total, "data": chunk, "next": nxt})
        page = max(1, _int(q, sys_.page_param, 1))
        chunk = rows[(page - 1) * size : page * size]
        return JSONResponse(
            {
                "tong_so_ban_ghi": total,
                sys_.page_param: page,
                sys_.size_param: size,
                sys_.records_key: chunk,
            }
        )

    return handler


def _in_period(value: Any, lo: str | None, hi: str | None) -> bool:
    """Period filter on the period's own text (ISO-like periods compare as strings)."""
    text = str(value or "")
    if "/" in text:  # MM/YYYY
        mm, _, yyyy = text.partition("/")
        text = f"{yyyy}-{mm}"
    return (lo is None or text >= lo[: len(text)]) and (hi is None or text <= hi[: len(text)])


def create_simulator_app(
    seed: int = DEFAULT_SEED,
    today: date | None = None,
    units: Units | None = None,
    token: str | None = None,
) -> Starlette:
    """The simulators as one ASGI app; `app.state.sim` is the Simulator (clock, corrections)."""
    sim = Simulator(seed=seed, fixed_today=today, units=units, token=token)

    async def index(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "he_thong": [
                    {"ma": s.name, "ten": s.title, "duong_dan": s.path, "khoa": list(s.key)}
                    for s in SYSTEMS.values()
                ],
                "ngay": sim.today.isoformat(),
            }
        )

    routes = [Route("/", index)] + [
        Route(s.path, _endpoint(sim, s.name), methods=["GET"]) for s in SYSTEMS.values()
    ]
    app = Starlette(routes=routes)
    app.state.sim = sim
    return app


def free_port() -> int:
    """A free loopback TCP port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_in_thread(app: Starlette, port: int | None = None) -> Iterator[str]:
    """Serve the app with uvicorn in a daemon thread; yields its base URL."""
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, name="iocmap-simulators", daemon=True)
    thread.start()
    deadline = _time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or _time.monotonic() > deadline:
            raise RuntimeError(f"simulators did not start on port {port}")
        _time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
