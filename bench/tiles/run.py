"""Benchmark: IOC Map vector tiles and OGC items vs tipg, on the same PostGIS tables.

Seeds a throwaway database with the demo (N land parcels), starts our API and tipg each in
one uvicorn worker on loopback, and drives both with the same ~500 tiles (z10–z16 over Vinh)
at 4 concurrent keep-alive connections (a lean asyncio HTTP/1.1 client, below): tipg, our
cold cache, our warm cache. Then items?limit=100. tipg reads one view per layer
(tipg_<slug>) over the same partitioned `feature` table.

    .venv/bin/python bench/tiles/run.py --quick            # 50,000 parcels, fewer requests
    .venv/bin/python bench/tiles/run.py --parcels 1000000  # the full benchmark

The last line printed is one JSON object with every figure and the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
from psycopg import sql
from pydantic import SecretStr

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from layers import cluster, migrate  # noqa: E402
from layers.db import make_engine  # noqa: E402
from layers.settings import Settings  # noqa: E402
from layers.sql import quote_ident  # noqa: E402

VINH = (105.60, 18.62, 105.76, 18.78)  # lon/lat window over Vinh city
BANDS = {"z10-11": (10, 11), "z12-13": (12, 13), "z14": (14, 14), "z15-16": (15, 16)}
# Warm passes repeat a band's tiles until at least this many requests.
WARM_MIN_REQUESTS = 400
PER_ZOOM_CAP = {10: 4, 11: 8, 12: 16, 13: 40, 14: 80, 15: 150, 16: 202}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tile_range(z: int, bbox: tuple[float, float, float, float]) -> list[tuple[int, int, int]]:
    n = 1 << z

    def tx(lon: float) -> int:
        return int((lon + 180) / 360 * n)

    def ty(lat: float) -> int:
        return int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)

    x0, x1 = tx(bbox[0]), tx(bbox[2])
    y0, y1 = ty(bbox[3]), ty(bbox[1])
    return [(z, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]


def tile_list(bbox: tuple[float, float, float, float], total: int) -> list[tuple[int, int, int]]:
    """The same deterministic sample of tiles for both servers."""
    rng = random.Random(42)
    scale = total / sum(PER_ZOOM_CAP.values())
    out: list[tuple[int, int, int]] = []
    for z, cap in PER_ZOOM_CAP.items():
        tiles = tile_range(z, bbox)
        rng.shuffle(tiles)
        out += sorted(tiles[: max(1, round(cap * scale))])
    return out


def band_of(z: int) -> str:
    return next(b for b, (lo, hi) in BANDS.items() if lo <= z <= hi)


def create_database(base: Settings, name: str) -> None:
    admin = cluster.libpq_url(cluster.database_url(base, "postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(base: Settings, name: str) -> None:
    admin = cluster.libpq_url(cluster.database_url(base, "postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def seed(settings: Settings, parcels: int) -> dict[str, int]:
    """Migrate and seed (idempotent); returns layer ids by slug."""
    engine = make_engine(settings)
    try:
        migrate.upgrade(engine)
        with engine.begin() as conn:
            from sqlalchemy import text

            have = conn.execute(
                text(
                    "SELECT count(*) FROM feature f JOIN layer l ON l.id = f.layer_id "
                    "WHERE l.slug = 'land_parcels'"
                )
            ).scalar_one()
        if have != parcels:
            from layers.demo.seed import seed_demo

            t0 = time.perf_counter()
            seed_demo(engine, settings.model_copy(update={"demo_parcels": parcels}))
            log(f"seeded {parcels} parcels in {time.perf_counter() - t0:.0f}s")
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            from sqlalchemy import text

            conn.execute(text("VACUUM ANALYZE feature"))
            rows = conn.execute(text("SELECT slug, id FROM layer")).all()
            # tipg lists tables and views but not partitions: one view per layer over the
            # same partitioned table, filtered by layer_id as our queries are.
            for slug, layer_id in rows:
                conn.execute(
                    text(
                        f"CREATE OR REPLACE VIEW {quote_ident('tipg_' + slug)} AS "
                        f"SELECT id, geom, properties FROM feature WHERE layer_id = {int(layer_id)}"
                    )
                )
        return {str(s): int(i) for s, i in rows}
    finally:
        engine.dispose()


def bench_token(settings: Settings) -> str:
    """A planner's bearer token (land_parcels is a sensitive layer)."""
    from geo_api.security import issue_token
    from layers.errors import ConflictError
    from layers.users import create_user, get_user

    engine = make_engine(settings)
    try:
        with engine.begin() as conn:
            try:
                user = create_user(conn, "bench_planner", "bench-planner-password-1", "planner")
            except ConflictError:
                user = get_user(conn, "bench_planner")
        return str(issue_token(settings, user))
    finally:
        engine.dispose()


def start(cmd: list[str], env: dict[str, str], url: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        cmd, env=env, cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"server exited: {' '.join(cmd)}\n{err[-2000:]}")
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.terminate()
    raise RuntimeError(f"server did not come up: {url}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class _Conn:
    """One keep-alive HTTP/1.1 connection: a lean client, so the load generator (which shares
    the machine's two cores with both servers) costs far less per request than httpx."""

    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self.host, self.port = host, port
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.head = f"Host: {host}:{port}\r\nAccept-Encoding: gzip\r\n{extra}\r\n".encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, target: str) -> tuple[int, int]:
        """(status, decoded body length) of GET target."""
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.reader, self.writer
        writer.write(b"GET " + target.encode() + b" HTTP/1.1\r\n" + self.head)
        raw = await reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        hdrs: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                k, _, v = line.partition(":")
                hdrs[k.strip().lower()] = v.strip()
        body = b""
        if "content-length" in hdrs:
            body = await reader.readexactly(int(hdrs["content-length"]))
        elif hdrs.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await reader.readexactly(size + 2)
                if size == 0:
                    break
                parts.append(chunk[:-2])
            body = b"".join(parts)
        elif status not in (204, 304):
            body = await reader.read()
            self.close()
        if hdrs.get("connection", "").lower() == "close":
            self.close()
        if hdrs.get("content-encoding") == "gzip" and len(body) >= 4:
            # The gzip trailer holds the decoded length: no need to spend the shared cores
            # on decompressing.
            return status, int.from_bytes(body[-4:], "little")
        return status, len(body)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def load(
    urls: list[str], concurrency: int, time_budget_s: float, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """Fetch every URL once with `concurrency` connections; latency and decoded bytes each."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for u in urls:
        queue.put_nowait(u)
    lat: list[float] = []
    sizes: list[int] = []
    errors = 0
    first_error: list[str] = []
    deadline = time.monotonic() + time_budget_s
    parsed = urlsplit(urls[0]) if urls else None

    async def worker() -> None:
        nonlocal errors
        assert parsed is not None and parsed.hostname and parsed.port
        conn = _Conn(parsed.hostname, parsed.port, headers or {})
        try:
            while time.monotonic() < deadline:
                try:
                    url = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                parts = urlsplit(url)
                target = parts.path + (f"?{parts.query}" if parts.query else "")
                t0 = time.perf_counter()
                try:
                    status, nbytes = await asyncio.wait_for(conn.get(target), 120)
                    ok = status in (200, 204)
                    if not ok and not first_error:
                        first_error.append(f"{status} {url}")
                except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
                    conn.close()
                    ok, nbytes = False, 0
                    if not first_error:
                        first_error.append(f"{type(exc).__name__} {url}")
                lat.append(time.perf_counter() - t0)
                if ok:
                    sizes.append(nbytes)
                else:
                    errors += 1
        finally:
            conn.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - t0
    lat.sort()
    n = len(lat)
    return {
        "requests": n,
        "errors": errors,
        "complete": n == len(urls),
        "req_per_s": round(n / wall, 2) if wall > 0 else None,
        "p50_ms": round(1000 * lat[n // 2], 1) if n else None,
        "p95_ms": round(1000 * lat[min(n - 1, int(n * 0.95))], 1) if n else None,
        "mean_bytes": round(statistics.fmean(sizes)) if sizes else 0,
        "max_bytes": max(sizes) if sizes else 0,
        **({"first_error": first_error[0]} if first_error else {}),
    }


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def bands_only(results: dict[str, Any], bands: list[str]) -> None:
    """Add the per-band ratios and the largest tile to results."""
    ratios = results.setdefault("ratios", {})
    ratios["cold_vs_tipg"] = {
        b: ratio(results["ours_cold"][b]["req_per_s"], results["tipg_tiles"][b]["req_per_s"])
        for b in bands
    }
    ratios["warm_vs_cold"] = {
        b: ratio(results["ours_warm"][b]["req_per_s"], results["ours_cold"][b]["req_per_s"])
        for b in bands
    }
    results["max_tile_bytes_ours"] = max(results["ours_cold"][b]["max_bytes"] for b in bands)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--parcels", type=int, default=1_000_000)
    ap.add_argument("--quick", action="store_true", help="50,000 parcels, 200 tiles, 100 items")
    ap.add_argument("--tiles", type=int, default=500)
    ap.add_argument("--items", type=int, default=200, help="items?limit=100 requests per server")
    ap.add_argument("--bands", default=",".join(BANDS), help="comma-separated zoom bands to run")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--budget-s", type=float, default=300, help="time cap per band and server")
    ap.add_argument("--keep-db", action="store_true", help="keep (and reuse) the bench database")
    args = ap.parse_args()
    if args.quick:
        args.parcels, args.tiles, args.items = 50_000, 200, 100

    base_settings = Settings()
    cluster.ensure_running(base_settings)
    db_name = (
        f"iocmap_bench_{args.parcels}" if args.keep_db else f"iocmap_bench_{uuid.uuid4().hex[:8]}"
    )
    create_database(base_settings, db_name)
    url = cluster.database_url(base_settings, db_name)
    secret = uuid.uuid4().hex + uuid.uuid4().hex
    settings = base_settings.model_copy(
        update={"database_url": url, "demo_parcels": args.parcels, "secret_key": SecretStr(secret)}
    )
    procs: list[subprocess.Popen[bytes]] = []
    try:
        ids = seed(settings, args.parcels)
        auth = {"Authorization": "Bearer " + bench_token(settings)}
        parcels_table = "tipg_land_parcels"
        assert ids["land_parcels"]
        tiles = tile_list(VINH, args.tiles)
        log(
            f"{len(tiles)} tiles: "
            + ", ".join(f"{b}={sum(band_of(t[0]) == b for t in tiles)}" for b in BANDS)
        )

        env = {k: v for k, v in os.environ.items() if not k.startswith(("IOC_", "TIPG_"))}
        venv_bin = Path(sys.executable).parent
        ours_port, tipg_port = free_port(), free_port()
        ours_env = {
            **env,
            "IOC_DATABASE_URL": url,
            "IOC_SECRET_KEY": secret,
            # Background jobs (H3 refresh, SLA checks) would compete with the measured requests.
            "IOC_ANALYTICS_SCHEDULER": "false",
            "IOC_REPORT_OVERDUE_INTERVAL_S": "0",
            "IOC_INGEST_SCHEDULER": "false",
        }
        ours_cmd = [
            str(venv_bin / "uvicorn"),
            "geo_api.main:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(ours_port),
            "--workers",
            "1",
            "--log-level",
            "warning",
            "--no-access-log",
        ]
        libpq = cluster.libpq_url(url)
        tipg_env = {
            **env,
            "DATABASE_URL": libpq,
            "TIPG_DB_SCHEMAS": '["public"]',
            "TIPG_DB_TABLES": f'["public.{parcels_table}"]',
            "TIPG_DB_FUNCTIONS": "[]",
            "TIPG_DB_EXCLUDE_FUNCTION_SCHEMAS": '["public","pg_temp"]',
            "TIPG_DB_SPATIAL_EXTENT": "false",
            "TIPG_DB_DATETIME_EXTENT": "false",
        }
        tipg_cmd = [
            str(venv_bin / "uvicorn"),
            "tipg.main:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(tipg_port),
            "--workers",
            "1",
            "--log-level",
            "warning",
            "--no-access-log",
        ]
        ours = f"http://127.0.0.1:{ours_port}"
        tipg = f"http://127.0.0.1:{tipg_port}"

        def ours_tile(z: int, x: int, y: int) -> str:
            return f"/tiles/land_parcels/{z}/{x}/{y}.mvt"

        def tipg_tile(z: int, x: int, y: int) -> str:
            return f"/collections/public.{parcels_table}/tiles/WebMercatorQuad/{z}/{x}/{y}?properties=properties"

        results: dict[str, Any] = {
            "parcels": args.parcels,
            "tiles": len(tiles),
            "concurrency": args.concurrency,
        }

        # Both servers stay up; each band is run tipg, ours cold, ours warm back to back, so
        # the machine's background load is about the same for the three.
        procs.append(start(tipg_cmd, tipg_env, tipg + "/collections"))
        procs.append(start(ours_cmd, ours_env, ours + "/ogc"))
        # Send the token only if the server asks for it: resolving a user costs a round trip.
        probe = httpx.get(ours + ours_tile(16, 52000, 29300), timeout=60)
        if probe.status_code not in (401, 403):
            auth = {}
        results["authenticated"] = bool(auth)
        # Warm both: open every pooled connection (the first ST_Transform on a backend costs
        # ~100 ms of PROJ set-up) on tiles outside the measured list.
        warm = [(16, x, y) for x in range(51000, 51004) for y in range(30000, 30004)]
        asyncio.run(load([tipg + tipg_tile(*t) for t in warm], 8, 60))
        asyncio.run(load([ours + ours_tile(*t) for t in warm], 8, 60, auth))
        for key in ("tipg_tiles", "ours_cold", "ours_warm"):
            results[key] = {}
        bands = [b for b in BANDS if b in args.bands.split(",")]
        for band in bands:
            urls = [t for t in tiles if band_of(t[0]) == band]
            for key, base, path, hdrs in (
                ("tipg_tiles", tipg, tipg_tile, {}),
                ("ours_cold", ours, ours_tile, auth),
                ("ours_warm", ours, ours_tile, auth),
            ):
                band_urls = [base + path(*t) for t in urls]
                if key == "ours_warm":
                    # The same tiles again, several passes when the band has few, so the
                    # rate is not a handful of requests' ramp-up.
                    band_urls *= max(1, min(20, math.ceil(WARM_MIN_REQUESTS / len(band_urls))))
                res = asyncio.run(load(band_urls, args.concurrency, args.budget_s, hdrs))
                results[key][band] = res
                log(f"{band} {key}: {res}")
        if args.items:
            path = f"/collections/public.{parcels_table}/items?limit=100"
            items_tipg = [tipg + path] * args.items
            items_ours = [ours + "/ogc/collections/land_parcels/items?limit=100"] * args.items
            results["tipg_items"] = asyncio.run(load(items_tipg, args.concurrency, args.budget_s))
            log(f"items tipg: {results['tipg_items']}")
            results["ours_items"] = asyncio.run(
                load(items_ours, args.concurrency, args.budget_s, auth)
            )
            log(f"items ours: {results['ours_items']}")
            results["ratios"] = {
                "items_vs_tipg": ratio(
                    results["ours_items"]["req_per_s"], results["tipg_items"]["req_per_s"]
                )
            }
        bands_only(results, bands)
    finally:
        for proc in procs:
            stop(proc)
        if not args.keep_db:
            drop_database(base_settings, db_name)
    results["load_average"] = os.getloadavg()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
