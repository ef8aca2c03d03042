"""Cost of the security layer: per-request middleware overhead against a bare ASGI anchor,
argon2 password checks, and JWT round trips. Prints one JSON object as the last line.

Usage: .venv/bin/python bench/security/run.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import orjson

from geo_api import security
from geo_api.main import create_app
from layers import cluster, migrate, testing
from layers.auth import users
from layers.db import make_engine
from layers.settings import Settings


async def _noop(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def _drive(app: Any, fastapi_app: Any, path: str, headers: list[Any], n: int) -> float:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        return None

    base = {
        "type": "http",
        "method": "GET",
        "path": path,
        "query_string": b"",
        "headers": headers,
        "client": ("10.0.0.1", 1234),
        "app": fastapi_app,
    }
    times = []
    for _ in range(n):
        scope = dict(base)
        t0 = time.perf_counter()
        await app(scope, receive, send)
        times.append(time.perf_counter() - t0)
    return statistics.median(times[n // 10 :]) * 1e6


def main() -> None:
    """Run the benchmark on a throwaway, migrated database."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    args = parser.parse_args()
    n = 500 if args.quick else 5000
    base = Settings()
    cluster.ensure_running(base)
    name = testing.create_database(base, "iocmap_bench_sec")
    settings = base.model_copy(update={"database_url": cluster.database_url(base, name)})
    engine = make_engine(settings)
    try:
        migrate.upgrade(engine)
        with engine.begin() as conn:
            user = users.create_user(conn, "bench_operator", "bench password 1", "operator")
        app = create_app(settings)
        app.state.engine = engine
        security.ENFORCE_ALL = True
        guarded = security.SecurityMiddleware(_noop, settings)
        token = security.issue_token(settings, user)
        bearer = [(b"authorization", b"Bearer " + token.encode())]
        tile = "/tiles/hospitals/10/815/460.mvt"
        out: dict[str, Any] = {"iterations": n}
        out["anchor_us"] = round(asyncio.run(_drive(_noop, app, tile, [], n)), 2)
        out["anon_public_route_us"] = round(asyncio.run(_drive(guarded, app, "/health", [], n)), 2)
        out["anon_layer_route_us"] = round(asyncio.run(_drive(guarded, app, tile, [], n)), 2)
        out["bearer_layer_route_us"] = round(
            asyncio.run(_drive(guarded, app, tile, bearer, max(50, n // 10))), 2
        )
        uncached = security.SecurityMiddleware(
            _noop, settings.model_copy(update={"auth_cache_s": 0.0})
        )
        out["bearer_uncached_layer_route_us"] = round(
            asyncio.run(_drive(uncached, app, tile, bearer, max(50, n // 10))), 2
        )
        for key in (
            "anon_public_route_us",
            "anon_layer_route_us",
            "bearer_layer_route_us",
            "bearer_uncached_layer_route_us",
        ):
            out[key.replace("_us", "_overhead_us")] = round(out[key] - out["anchor_us"], 2)
        t0 = time.perf_counter()
        rounds = 5 if args.quick else 20
        for _ in range(rounds):
            users.verify_password(users.hash_password("x" * 16), "x" * 16)
        out["argon2_hash_and_verify_ms"] = round((time.perf_counter() - t0) / rounds * 1000, 1)
        t0 = time.perf_counter()
        for _ in range(n):
            security.decode_token(settings, security.issue_token(settings, user))
        out["jwt_issue_and_decode_us"] = round((time.perf_counter() - t0) / n * 1e6, 1)
    finally:
        engine.dispose()
        testing.drop_database(base, name)
    print(orjson.dumps(out).decode())


if __name__ == "__main__":
    main()
