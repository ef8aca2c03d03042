"""Benchmark: IOC Map vector tiles and OGC items against tipg, and tiles against their SQL floor.

A skeptic's setup, all in one run on the same rows:

* tipg (bench-only dev dependency) serves a plain typed table `tipg_parcels` (the parcels' rows
  with typed property columns and a GiST index on a typed geometry column), the way a GIS team
  deploys it, with its default settings; our API serves the same rows from its partitioned
  `feature` table. One uvicorn worker each, no authentication on either side (the bench
  database marks the parcel layer as not sensitive), our server-side tile cache disabled so
  every request of ours is a cold render, and `Accept-Encoding: identity` for both so neither
  sends compressed bytes (ours still gzips each rendered tile once, at level 1, for its cache:
  that cost stays in our figures).
* The floor: bare `ST_AsMVT` SQL doing our tiles' work (same rows, same buffer, same
  low-zoom dropping) over psycopg with 4 connections and binary results, no HTTP. A fourth
  side, `ours_sql`, runs our own tile SQL bare: ours ÷ ours_sql is our server's overhead,
  ours_sql ÷ floor the cost of our SQL's shape.
* Tiles z12–z16 over Vinh, classified empty / non-empty beforehand (by a bbox test on the
  table); every band is measured separately for empty and non-empty tiles, with features and
  bytes per tile for each side (an untimed pass decodes the tiles).
* Every side is warmed up on non-empty tiles outside the measured list (opening every
  connection and paying PROJ set-up), then each measurement runs the sides in rotating order,
  `--repeats` times, at `--concurrency` keep-alive connections, with the 1-minute load average
  before and after each run. Figures are medians with [min, max] ranges over the repeats;
  ratios are paired per repeat.
* Items: `items?limit=100&bbox=…` over varied bboxes (sizes from a block to a district), where
  both sides count numberMatched exactly (ours with the estimate threshold raised).

    .venv/bin/python bench/tiles/run.py --parcels 200000 --keep-db
    .venv/bin/python bench/tiles/run.py --quick

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

from bench.common import interleave, load1, paired_ratios, summary  # noqa: E402
from layers import cluster, migrate  # noqa: E402
from layers.db import make_engine  # noqa: E402
from layers.features import tiles  # noqa: E402
from layers.features.partitions import partition_name  # noqa: E402
from layers.settings import Settings  # noqa: E402

# One event loop for the whole bench, so the SQL sides keep their connections between runs.
LOOP = asyncio.new_event_loop()
RUN = LOOP.run_until_complete
VINH = (105.60, 18.62, 105.76, 18.78)  # lon/lat window over Vinh city
BANDS = {"z12-13": (12, 13), "z14": (14, 14), "z15-16": (15, 16)}
TIPG_TABLE = "tipg_parcels"
# The parcels' properties as typed columns of the tipg table.
PROP_COLUMNS = (
    ("MaXa", "text"),
    ("SoHieuToBanDo", "integer"),
    ("SoThuTuThua", "integer"),
    ("DienTich", "double precision"),
    ("KyHieuMucDichSuDung", "text"),
    ("commune_code", "text"),
)
WORK = {
    "z12-13": "different work: ours drops parcels under one pixel and keeps the 8,000 largest"
    " a tile (the floor does the same); tipg keeps the first 10,000 by id",
    "z14": "different work: ours drops parcels under one pixel (the floor does the same);"
    " tipg keeps every parcel up to 10,000",
    "z15-16": "same features: those touching the tile (see features per tile)",
}


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
        self.head = f"Host: {host}:{port}\r\nAccept-Encoding: identity\r\n{extra}\r\n".encode()
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


def bench_db(base: Settings, parcels: int, keep: bool) -> str:
    """Name of the bench database (created if missing)."""
    name = f"iocmap_bench_tiles_{parcels}" if keep else f"iocmap_bench_{uuid.uuid4().hex[:8]}"
    admin = cluster.libpq_url(cluster.database_url(base, "postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name


def drop_db(base: Settings, name: str) -> None:
    admin = cluster.libpq_url(cluster.database_url(base, "postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def seed(settings: Settings, parcels: int) -> int:
    """Migrate, seed the demo with N parcels, build tipg's table; returns the parcel layer id."""
    from sqlalchemy import text

    engine = make_engine(settings)
    try:
        migrate.upgrade(engine)
        with engine.begin() as conn:
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
            layer_id = int(
                conn.execute(text("SELECT id FROM layer WHERE slug = 'land_parcels'")).scalar_one()
            )
            # No authentication for either side: the bench's parcels are public here.
            conn.execute(
                text(
                    "UPDATE layer SET sensitive = false,"
                    ' visibility = \'{"access": "public"}\'::jsonb WHERE id = :i'
                ),
                {"i": layer_id},
            )
            kinds = conn.execute(
                text("SELECT DISTINCT GeometryType(geom) FROM feature WHERE layer_id = :i"),
                {"i": layer_id},
            ).scalars()
            kinds = list(kinds)
            gtype = kinds[0] if len(kinds) == 1 else "Geometry"
            have_tipg = conn.execute(
                text("SELECT count(*) FROM pg_class WHERE relname = :t"), {"t": TIPG_TABLE}
            ).scalar_one()
            n_tipg = (
                conn.execute(text(f"SELECT count(*) FROM {TIPG_TABLE}")).scalar_one()
                if have_tipg
                else -1
            )
            if n_tipg != parcels:
                cols = ", ".join(f'"{c}" {t}' for c, t in PROP_COLUMNS)
                conv = ", ".join(f"(properties->>'{c}')::{t}" for c, t in PROP_COLUMNS)
                conn.execute(text(f"DROP TABLE IF EXISTS {TIPG_TABLE}"))
                conn.execute(
                    text(
                        f"CREATE TABLE {TIPG_TABLE} (id bigint PRIMARY KEY, source_key text,"
                        f" {cols}, geom geometry({gtype}, 4326) NOT NULL)"
                    )
                )
                conn.execute(
                    text(
                        f"INSERT INTO {TIPG_TABLE} SELECT id, source_key, {conv}, geom"
                        " FROM feature WHERE layer_id = :i ORDER BY id"
                    ),
                    {"i": layer_id},
                )
                conn.execute(text(f"CREATE INDEX ON {TIPG_TABLE} USING gist (geom)"))
            conn.execute(text("VACUUM ANALYZE feature"))
            conn.execute(text(f"VACUUM ANALYZE {TIPG_TABLE}"))
        return layer_id
    finally:
        engine.dispose()


def classify(libpq: str, zooms: list[int]) -> dict[tuple[int, int, int], bool]:
    """Whether each tile over Vinh holds a parcel (a bbox test on tipg's table)."""
    out: dict[tuple[int, int, int], bool] = {}
    q = (
        f"SELECT EXISTS (SELECT 1 FROM {TIPG_TABLE} WHERE geom && "
        "ST_MakeEnvelope(%s, %s, %s, %s, 4326))"
    )
    with psycopg.connect(libpq) as conn:
        for z in zooms:
            for t in tile_range(z, VINH):
                b = tiles.TileAddress(*t).lonlat_bounds()
                out[t] = bool(conn.execute(q, b).fetchone()[0])  # type: ignore[index]
    return out


def floor_query(part: str, tile: tuple[int, int, int]) -> tuple[str, dict[str, Any]]:
    """Bare ST_AsMVT SQL doing our tile's work: buffer, low-zoom dropping, source_key."""
    addr = tiles.TileAddress(*tile)
    z = tile[0]
    x0, y0, x1, y1 = addr.xy_bounds()
    lon0, lat0, lon1, lat1 = addr.lonlat_bounds()  # polygons touching the tile itself
    params: dict[str, Any] = dict(
        x0=x0, y0=y0, x1=x1, y1=y1, lon0=lon0, lat0=lat0, lon1=lon1, lat1=lat1
    )
    where = "geom && ST_MakeEnvelope(%(lon0)s, %(lat0)s, %(lon1)s, %(lat1)s, 4326)"
    if z < tiles.COMPLETE_ZOOM:
        where += " AND lod_size >= %(min_deg)s"
        params["min_deg"] = tiles.PIXEL * 360.0 / (1 << z) / tiles.EXTENT
    tail = ""
    if z < tiles.TOP_N_MAX_ZOOM:
        tail = f" ORDER BY lod_size DESC LIMIT {tiles.MAX_SHAPES_PER_TILE}"
    q = (
        "SELECT ST_AsMVT(t, 'land_parcels', 4096, 'geom', 'id') FROM ("
        " SELECT id, properties || jsonb_build_object('source_key', source_key) AS props,"
        " ST_AsMVTGeom(ST_Transform(geom, 3857),"
        " ST_MakeEnvelope(%(x0)s, %(y0)s, %(x1)s, %(y1)s, 3857), 4096, 64, true) AS geom"
        f" FROM (SELECT id, properties, source_key, geom FROM {part} WHERE {where}{tail}) AS f"
        ") AS t"
    )
    return q, params


class SqlSide:
    """`concurrency` autocommit connections kept open for the whole bench (like a server's pool),
    running tile SQL with binary results."""

    def __init__(self, libpq: str, concurrency: int) -> None:
        self.libpq, self.concurrency = libpq, concurrency
        self.conns: list[psycopg.AsyncConnection[Any]] = []

    async def load(self, queries: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
        """Run every query once; rate, p50 and mean bytes."""
        while len(self.conns) < self.concurrency:
            self.conns.append(await psycopg.AsyncConnection.connect(self.libpq, autocommit=True))
        queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        for q in queries:
            queue.put_nowait(q)
        lat: list[float] = []
        sizes: list[int] = []

        async def worker(conn: psycopg.AsyncConnection[Any]) -> None:
            while True:
                try:
                    q, p = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                t0 = time.perf_counter()
                cur = await conn.execute(q, p, binary=True)
                row = await cur.fetchone()
                lat.append(time.perf_counter() - t0)
                sizes.append(len(row[0] or b"") if row else 0)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(c) for c in self.conns))
        wall = time.perf_counter() - t0
        lat.sort()
        n = len(lat)
        return {
            "requests": n,
            "req_per_s": round(n / wall, 2) if wall > 0 else None,
            "p50_ms": round(1000 * lat[n // 2], 1) if n else None,
            "mean_bytes": round(statistics.fmean(sizes)) if sizes else 0,
        }

    async def close(self) -> None:
        for c in self.conns:
            await c.close()


def count_features(data: bytes) -> int:
    """Features in an MVT (a protobuf walk: Tile.layers = 3, Layer.features = 2)."""

    def varint(buf: bytes, i: int) -> tuple[int, int]:
        shift = result = 0
        while True:
            b = buf[i]
            i += 1
            result |= (b & 0x7F) << shift
            if b < 0x80:
                return result, i
            shift += 7

    def fields(buf: bytes) -> list[tuple[int, bytes | None]]:
        out: list[tuple[int, bytes | None]] = []
        i = 0
        while i < len(buf):
            key, i = varint(buf, i)
            num, wt = key >> 3, key & 7
            if wt == 0:
                _, i = varint(buf, i)
                out.append((num, None))
            elif wt == 2:
                ln, i = varint(buf, i)
                out.append((num, buf[i : i + ln]))
                i += ln
            elif wt == 1:
                i += 8
                out.append((num, None))
            elif wt == 5:
                i += 4
                out.append((num, None))
            else:
                raise ValueError("bad MVT")
        return out

    n = 0
    for num, layer in fields(data):
        if num == 3 and layer is not None:
            n += sum(1 for f, _ in fields(layer) if f == 2)
    return n


def characterise(urls: list[str]) -> dict[str, Any]:
    """Features and bytes per tile (uncompressed), untimed."""
    feats: list[int] = []
    sizes: list[int] = []
    statuses: dict[int, int] = {}
    with httpx.Client(timeout=120, headers={"Accept-Encoding": "identity"}) as client:
        for u in urls:
            r = client.get(u)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            body = r.content if r.status_code == 200 else b""
            sizes.append(len(body))
            feats.append(count_features(body) if body else 0)
    return {
        "features_per_tile": round(statistics.fmean(feats), 1) if feats else 0,
        "bytes_per_tile": round(statistics.fmean(sizes)) if sizes else 0,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


def random_bboxes(libpq: str, n: int, seed: int = 7) -> list[tuple[float, float, float, float]]:
    """Varied bboxes around random parcels: sides from ~100 m (a block) to ~5 km (a district)."""
    with psycopg.connect(libpq) as conn:
        pts = conn.execute(
            f"SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(geom) AS c FROM {TIPG_TABLE}"
            " ORDER BY id) AS s"
        ).fetchall()
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        cx, cy = pts[rng.randrange(len(pts))]
        side = 10 ** rng.uniform(-3, math.log10(0.05))
        w = side * rng.uniform(0.6, 1.6)
        out.append(
            (
                round(cx - w / 2, 6),
                round(cy - side / 2, 6),
                round(cx + w / 2, 6),
                round(cy + side / 2, 6),
            )
        )
    return out


def server_cmds(venv_bin: Path, ours_port: int, tipg_port: int) -> tuple[list[str], list[str]]:
    common = ["--host", "127.0.0.1", "--workers", "1", "--log-level", "warning", "--no-access-log"]
    ours = [
        str(venv_bin / "uvicorn"),
        "geo_api.main:create_app",
        "--factory",
        "--port",
        str(ours_port),
    ]
    tipg = [str(venv_bin / "uvicorn"), "tipg.main:app", "--port", str(tipg_port)]
    return ours + common, tipg + common


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--parcels", type=int, default=200_000)
    ap.add_argument("--quick", action="store_true", help="50,000 parcels, fewer tiles and items")
    ap.add_argument("--tiles", type=int, default=120, help="tiles per band and class (at most)")
    ap.add_argument("--items", type=int, default=60, help="bbox items requests per side and repeat")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--bands", default=",".join(BANDS), help="comma-separated zoom bands to run")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--budget-s", type=float, default=300, help="time cap per run")
    ap.add_argument("--keep-db", action="store_true", help="keep (and reuse) the bench database")
    args = ap.parse_args()
    if args.quick:
        args.parcels, args.tiles, args.items = 50_000, 40, 30

    load_start = load1()
    base = Settings()
    cluster.ensure_running(base)
    db_name = bench_db(base, args.parcels, args.keep_db)
    url = cluster.database_url(base, db_name)
    libpq = cluster.libpq_url(url)
    secret = uuid.uuid4().hex + uuid.uuid4().hex
    settings = base.model_copy(
        update={"database_url": url, "demo_parcels": args.parcels, "secret_key": SecretStr(secret)}
    )
    procs: list[subprocess.Popen[bytes]] = []
    sql_sides: list[SqlSide] = []
    results: dict[str, Any] = {
        "bench": "tiles",
        "parcels": args.parcels,
        "concurrency": args.concurrency,
        "repeats": args.repeats,
        "encoding": "identity (both)",
        "auth": "none (both)",
        "ours_tile_cache": "disabled (every tile rendered)",
    }
    try:
        layer_id = seed(settings, args.parcels)
        part = partition_name(layer_id)
        bands = [b for b in BANDS if b in args.bands.split(",")]
        zooms = sorted({z for b in bands for z in range(BANDS[b][0], BANDS[b][1] + 1)} | {15})
        holds = classify(libpq, zooms)
        rng = random.Random(42)
        full15 = sorted(t for t, v in holds.items() if v and t[0] == 15)
        rng.shuffle(full15)
        warm = full15[:16]  # warm-up tiles: hold parcels, never measured
        lists: dict[tuple[str, str], list[tuple[int, int, int]]] = {}
        for b in bands:
            lo, hi = BANDS[b]
            for cls, want in (("nonempty", True), ("empty", False)):
                cand = sorted(
                    t for t, v in holds.items() if v == want and lo <= t[0] <= hi and t not in warm
                )
                rng.shuffle(cand)
                if cand:
                    lists[(b, cls)] = sorted(cand[: args.tiles])
        log("tiles: " + ", ".join(f"{b}/{c}={len(v)}" for (b, c), v in lists.items()))

        env = {k: v for k, v in os.environ.items() if not k.startswith(("IOC_", "TIPG_"))}
        venv_bin = Path(sys.executable).parent
        ours_port, tipg_port = free_port(), free_port()
        ours_env = {
            **env,
            "IOC_DATABASE_URL": url,
            "IOC_SECRET_KEY": secret,
            "IOC_ANALYTICS_SCHEDULER": "false",
            "IOC_REPORT_OVERDUE_INTERVAL_S": "0",
            "IOC_INGEST_SCHEDULER": "false",
            "IOC_TILE_CACHE_MAX_BYTES": "0",
            "IOC_OGC_EXACT_COUNT_MAX_ROWS": str(10**12),
        }
        tipg_env = {
            **env,
            "DATABASE_URL": libpq,
            "TIPG_DB_SCHEMAS": '["public"]',
            "TIPG_DB_TABLES": f'["public.{TIPG_TABLE}"]',
            "TIPG_DB_FUNCTIONS": "[]",
            "TIPG_DB_EXCLUDE_FUNCTION_SCHEMAS": '["public","pg_temp"]',
        }
        ours_cmd, tipg_cmd = server_cmds(venv_bin, ours_port, tipg_port)
        ours = f"http://127.0.0.1:{ours_port}"
        tipg = f"http://127.0.0.1:{tipg_port}"
        procs.append(start(tipg_cmd, tipg_env, tipg + "/collections"))
        procs.append(start(ours_cmd, ours_env, ours + "/ogc"))

        from layers.features import registry

        engine = make_engine(settings)
        with engine.connect() as conn:
            info = registry.get_layer(conn, "land_parcels")
        engine.dispose()

        def url_of(side: str, t: tuple[int, int, int]) -> str:
            z, x, y = t
            if side == "ours":
                return f"{ours}/tiles/land_parcels/{z}/{x}/{y}.mvt"
            return f"{tipg}/collections/public.{TIPG_TABLE}/tiles/WebMercatorQuad/{z}/{x}/{y}"

        def ours_sql(t: tuple[int, int, int]) -> tuple[str, dict[str, Any]]:
            addr = tiles.TileAddress(*t)
            return tiles.tile_query(info, addr, None, tiles.initial_plan(info, t[0]))

        floor_side = SqlSide(libpq, args.concurrency)
        ours_sql_side = SqlSide(libpq, args.concurrency)
        sql_sides.extend([floor_side, ours_sql_side])

        def run_tiles(side: str, tl: list[tuple[int, int, int]]) -> dict[str, Any]:
            if side == "floor":
                return RUN(floor_side.load([floor_query(part, t) for t in tl]))
            if side == "ours_sql":
                return RUN(ours_sql_side.load([ours_sql(t) for t in tl]))
            return RUN(load([url_of(side, t) for t in tl], args.concurrency, args.budget_s))

        sides = ["tipg", "ours", "floor", "ours_sql"]
        # Warm-ups that touch real data: every side renders the same 16 parcel tiles at twice
        # the measured concurrency (so every pooled connection has paid PROJ set-up).
        for side in sides:
            for _ in range(2):
                if side in ("floor", "ours_sql"):
                    run_tiles(side, warm)
                else:
                    RUN(load([url_of(side, t) for t in warm], 2 * args.concurrency, 120))
        results["load_after_warmup"] = load1()

        out_bands: dict[str, Any] = {}
        for (band, cls), tl in lists.items():
            shape = {s: characterise([url_of(s, t) for t in tl]) for s in ("tipg", "ours")}
            runs = interleave(sides, args.repeats, lambda side, _r, tl=tl: run_tiles(side, tl))
            rate = {s: [r["req_per_s"] for r in runs[s]] for s in sides}
            entry = {
                "tiles": len(tl),
                "work": WORK[band],
                "req_per_s": {s: summary(rate[s]) for s in sides},
                "p50_ms": {s: summary([r["p50_ms"] for r in runs[s]], 1) for s in sides},
                "features_per_tile": {s: shape[s]["features_per_tile"] for s in shape},
                "bytes_per_tile": {
                    **{s: shape[s]["bytes_per_tile"] for s in shape},
                    "floor": runs["floor"][0]["mean_bytes"],
                },
                "statuses": {s: shape[s]["statuses"] for s in shape},
                "ratios": {
                    "ours_vs_tipg": paired_ratios(rate["ours"], rate["tipg"]),
                    "ours_vs_floor": paired_ratios(rate["ours"], rate["floor"]),
                    "tipg_vs_floor": paired_ratios(rate["tipg"], rate["floor"]),
                    "ours_vs_ours_sql": paired_ratios(rate["ours"], rate["ours_sql"]),
                    "ours_sql_vs_floor": paired_ratios(rate["ours_sql"], rate["floor"]),
                },
                "errors": {s: sum(r.get("errors", 0) for r in runs[s]) for s in sides},
                "load": {s: [r["load"] for r in runs[s]] for s in sides},
            }
            out_bands[f"{band}/{cls}"] = entry
            log(f"{band}/{cls}: {json.dumps(entry)}")
        results["tiles"] = out_bands

        if args.items:
            boxes = random_bboxes(libpq, args.items)

            def items_url(side: str, b: tuple[float, float, float, float]) -> str:
                bb = ",".join(map(str, b))
                if side == "ours":
                    return f"{ours}/ogc/collections/land_parcels/items?limit=100&bbox={bb}"
                return f"{tipg}/collections/public.{TIPG_TABLE}/items?limit=100&bbox={bb}"

            # Both sides count: check numberMatched agrees on a few bboxes (untimed).
            agree = []
            with httpx.Client(timeout=120) as client:
                for b in boxes[:5]:
                    a = client.get(items_url("ours", b)).json()
                    t = client.get(items_url("tipg", b)).json()
                    agree.append(
                        [
                            a.get("numberMatched"),
                            t.get("numberMatched"),
                            len(a.get("features", [])),
                            len(t.get("features", [])),
                        ]
                    )
            for side in ("tipg", "ours"):
                RUN(load([items_url(side, b) for b in boxes[:8]], 2 * args.concurrency, 120))
            runs = interleave(
                ["tipg", "ours"],
                args.repeats,
                lambda side, _r: RUN(
                    load([items_url(side, b) for b in boxes], args.concurrency, args.budget_s)
                ),
            )
            rate = {s: [r["req_per_s"] for r in runs[s]] for s in runs}
            results["items_bbox"] = {
                "requests": len(boxes),
                "number_matched_check": agree,
                "req_per_s": {s: summary(rate[s]) for s in rate},
                "p50_ms": {s: summary([r["p50_ms"] for r in runs[s]], 1) for s in runs},
                "mean_bytes": {s: runs[s][0]["mean_bytes"] for s in runs},
                "ours_vs_tipg": paired_ratios(rate["ours"], rate["tipg"]),
                "errors": {s: sum(r["errors"] for r in runs[s]) for s in runs},
                "load": {s: [r["load"] for r in runs[s]] for s in runs},
            }
            log(f"items: {json.dumps(results['items_bbox'])}")
    finally:
        for side in sql_sides:
            RUN(side.close())
        for proc in procs:
            stop(proc)
        if not args.keep_db:
            drop_db(base, db_name)
    results["load"] = {"start": load_start, "end": load1()}
    # A side that answered errors (e.g. 401 after an access change) measured nothing: say so
    # and fail rather than print ratios of error pages.
    failed = {
        name: part["errors"]
        for name, part in [
            *results.get("tiles", {}).items(),
            ("items_bbox", results.get("items_bbox", {})),
        ]
        if isinstance(part, dict) and any(part.get("errors", {}).values())
    }
    results["valid"] = not failed
    print(json.dumps(results))
    if failed:
        sys.exit(f"errors during measurement, figures invalid: {failed}")


if __name__ == "__main__":
    main()
