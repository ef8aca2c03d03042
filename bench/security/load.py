"""Load and restart bench (issue 14): the /api/layers + land_parcels z15 tiles + hospitals
items mix at 4, 16 and 64 connections against a real uvicorn server, then a database restart
under load. Prints ONE JSON line: req/s and errors per level, the 64/16 throughput ratio (goal
>= 0.90, no errors), requests failed during the restart and seconds to recover, load average.

The server runs on a throwaway PostgreSQL cluster of its own (state dir in /tmp, free port), so
the restart is a real `pg_ctl stop -m fast` + start and the shared cluster is never touched.

Usage: .venv/bin/python bench/security/load.py [--quick] [--parcels N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import orjson
from pydantic import SecretStr

from geo_api.security import issue_token
from layers import cluster, migrate
from layers.auth import users
from layers.db import make_engine
from layers.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
# z15 tiles over central Vinh (x 26002..26009, y 14790..14797)
TILES = [
    f"/tiles/land_parcels/15/{x}/{y}.mvt" for x in range(26002, 26010) for y in range(14790, 14798)
]
MIX = ["/api/layers", "TILE", "/ogc/collections/hospitals/items?limit=100"]


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


async def _worker(
    client: httpx.AsyncClient, i: int, stop_at: float, out: Counter[str], log: list[Any]
) -> None:
    n = i
    while time.monotonic() < stop_at:
        kind = MIX[n % len(MIX)]
        url = TILES[(n // len(MIX)) % len(TILES)] if kind == "TILE" else kind
        n += 7
        t = time.monotonic()
        try:
            res = await client.get(url)
            code = str(res.status_code)
        except httpx.HTTPError as exc:
            code = type(exc).__name__
        out[code] += 1
        log.append((t, url, code))


async def _level(base: str, headers: dict[str, str], conns: int, seconds: float) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=conns, max_keepalive_connections=conns)
    async with httpx.AsyncClient(
        base_url=base, headers=headers, limits=limits, timeout=60.0
    ) as client:
        warm: Counter[str] = Counter()
        await asyncio.gather(
            *[_worker(client, i, time.monotonic() + 2.0, warm, []) for i in range(conns)]
        )
        out: Counter[str] = Counter()
        t0 = time.monotonic()
        await asyncio.gather(*[_worker(client, i, t0 + seconds, out, []) for i in range(conns)])
        elapsed = time.monotonic() - t0
    ok = sum(v for k, v in out.items() if k in ("200", "204", "304"))
    return {
        "conns": conns,
        "req_s": round(ok / elapsed, 1),
        "errors": sum(out.values()) - ok,
        "codes": dict(out),
    }


async def _restart(
    base: str, headers: dict[str, str], settings: Settings, conns: int, seconds: float
) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=conns, max_keepalive_connections=conns)
    log: list[Any] = []
    out: Counter[str] = Counter()
    async with httpx.AsyncClient(
        base_url=base, headers=headers, limits=limits, timeout=60.0
    ) as client:
        t0 = time.monotonic()
        load = asyncio.gather(*[_worker(client, i, t0 + seconds, out, log) for i in range(conns)])
        await asyncio.sleep(seconds / 4)
        t_stop = time.monotonic()
        await asyncio.to_thread(cluster.stop, settings)
        await asyncio.to_thread(cluster.start, settings)
        t_up = time.monotonic()
        await load
    failed = [e for e in log if e[2] not in ("200", "204", "304")]
    after = [e for e in log if e[0] >= t_up and e[1] == "/api/layers"]
    first_ok = next((e[0] for e in sorted(after) if e[2] == "200"), None)
    late_failures = [e for e in failed if first_ok is not None and e[0] > first_ok]
    return {
        "conns": conns,
        "requests": len(log),
        "failed": len(failed),
        "failed_codes": dict(Counter(e[2] for e in failed)),
        "db_down_s": round(t_up - t_stop, 2),
        "recover_s": round(first_ok - t_up, 2) if first_ok is not None else None,
        "failed_after_recovery": len(late_failures),
        "served_while_down": sum(
            1 for e in log if t_stop <= e[0] < t_up and e[2] in ("200", "204", "304")
        ),
    }


def main() -> None:
    """Run the bench on a throwaway cluster, print one JSON line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="5 s per level instead of 15")
    parser.add_argument("--parcels", type=int, default=20_000)
    args = parser.parse_args()
    seconds = 5.0 if args.quick else 15.0
    state = Path(tempfile.mkdtemp(prefix="iocmap-bench-load-"))
    settings = Settings(
        state_dir=state, db_port=_free_port(), demo_parcels=args.parcels, database_url=None
    )
    server: subprocess.Popen[bytes] | None = None
    try:
        cluster.start(settings)
        engine = make_engine(settings)
        migrate.upgrade(engine)
        from layers.demo.seed import seed_demo

        seed_demo(engine, settings)
        with engine.begin() as conn:
            user = users.create_user(conn, "bench_planner", "bench password 1", "planner")
        engine.dispose()
        port = _free_port()
        secret = os.urandom(32).hex()
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "IOC_STATE_DIR": str(state),
            "IOC_DB_PORT": str(settings.db_port),
            "IOC_SECRET_KEY": secret,
            "IOC_ANALYTICS_SCHEDULER": "false",
        }
        env.pop("IOC_DATABASE_URL", None)
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "geo_api.main:create_app",
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
             "--no-access-log"],
            env=env, cwd=ROOT,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.5)
        token = issue_token(settings.model_copy(update={"secret_key": SecretStr(secret)}), user)
        headers = {"Authorization": "Bearer " + token, "Accept-Encoding": "gzip"}
        out: dict[str, Any] = {"bench": "security_load", "parcels": args.parcels}
        out["load_before"] = os.getloadavg()[0]
        levels = [asyncio.run(_level(base, headers, c, seconds)) for c in (4, 16, 64)]
        out["levels"] = levels
        by = {lv["conns"]: lv for lv in levels}
        out["ratio_64_vs_16"] = round(by[64]["req_s"] / max(by[16]["req_s"], 1e-9), 3)
        out["goal_met"] = out["ratio_64_vs_16"] >= 0.9 and by[64]["errors"] == 0
        out["restart"] = asyncio.run(_restart(base, headers, settings, 16, 3 * seconds))
        out["load_after"] = os.getloadavg()[0]
    finally:
        if server is not None:
            server.terminate()
            server.wait(30)
        cluster.stop(settings)
        shutil.rmtree(state, ignore_errors=True)
    print(orjson.dumps(out).decode())


if __name__ == "__main__":
    main()
