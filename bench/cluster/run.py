"""Cluster bench (issue 23): tiles and OGC items through HAProxy with 1 and 2 API replicas;
detection events per second through NATS JetStream with 1 and 4 simulated workers; failover
time. Prints ONE JSON line of figures, ratios and the load average.

A local cluster of its own (`geo_api.cli.cluster.LocalCluster`, loopback, free ports): a
primary, a hot standby that serves the replicas' tile and items reads, two `iocmap serve`
replicas with the tile cache off (every tile is rendered), HAProxy. "1 replica" disables
api2 on HAProxy's admin socket; the two sides run interleaved, in rotating order.

On this 2-core machine shared with other agents, two replicas (plus PostgreSQL, HAProxy and
the load generator) compete for the same two cores: the 2-vs-1 ratio here says that a second
replica costs nothing and fails nothing, not how it scales on hosts with cores to spare.

Usage: .venv/bin/python bench/cluster/run.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import shapely

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.common import interleave, load1, paired_ratios, summary  # noqa: E402
from geo_api.cli.cluster import LocalCluster  # noqa: E402
from layers import replication  # noqa: E402
from layers.auth import users  # noqa: E402
from layers.db import make_engine  # noqa: E402
from layers.features import registry  # noqa: E402
from layers.features.bulk import FeatureRow, upsert_features  # noqa: E402
from layers.settings import Settings  # noqa: E402

LAYER = "bench_cluster_points"
VINH = (105.68, 18.67)
NATS = "/usr/sbin/nats-server"


def _free_base_port() -> int:
    for base in range(57000, 60000, 50):
        with socket.socket() as s1, socket.socket() as s2:
            if s1.connect_ex(("127.0.0.1", base)) and s2.connect_ex(("127.0.0.1", base + 20)):
                return base
    raise RuntimeError("no free ports")


def _seed(engine: Any, n: int) -> None:
    rng = random.Random(23)
    rows = [
        FeatureRow(
            f"p{i}",
            shapely.Point(VINH[0] + rng.uniform(-0.2, 0.2), VINH[1] + rng.uniform(-0.2, 0.2)),
            {"name": f"điểm {i}", "value": i},
        )
        for i in range(n)
    ]
    with engine.begin() as conn:
        layer_id = registry.create_or_update_layer(
            conn,
            registry.LayerSpec(
                slug=LAYER,
                title_vi="Điểm thử (tổng hợp)",
                title_en="Bench points (synthetic)",
                sector="admin",
                geometry_type="Point",
                synthetic=True,
                property_schema={
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "value": {"type": "integer"}},
                },
            ),
        )
        upsert_features(conn, layer_id, rows)


def _paths() -> list[str]:
    out = []
    for z in (13, 14):
        n = 1 << z
        cx = int((VINH[0] + 180) / 360 * n)
        cy = int((1 - math.asinh(math.tan(math.radians(VINH[1]))) / math.pi) / 2 * n)
        out += [
            f"/tiles/{LAYER}/{z}/{cx + dx}/{cy + dy}.mvt"
            for dx in (-2, -1, 0, 1)
            for dy in (-2, -1, 0, 1)
        ]
    bboxes = [
        f"{VINH[0] + d:.3f},{VINH[1] + d:.3f},{VINH[0] + d + 0.05:.3f},{VINH[1] + d + 0.05:.3f}"
        for d in (-0.15, -0.1, -0.05, 0.0, 0.05, 0.1)
    ]
    out += [f"/ogc/collections/{LAYER}/items?limit=100&bbox={b}" for b in bboxes]
    return out


async def _load(url: str, paths: list[str], conns: int, seconds: float) -> dict[str, Any]:
    done = errors = 0
    stop_at = time.monotonic() + seconds

    async def worker(i: int) -> None:
        nonlocal done, errors
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            n = i
            while time.monotonic() < stop_at:
                res = await client.get(paths[n % len(paths)])
                n += conns
                if res.status_code in (200, 204):
                    done += 1
                else:
                    errors += 1

    started = time.monotonic()
    await asyncio.gather(*(worker(i) for i in range(conns)))
    return {"rps": round(done / (time.monotonic() - started), 1), "errors": errors}


def _haproxy(lc: LocalCluster, command: str) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(str(lc.haproxy_socket))
        sock.sendall(command.encode() + b"\n")
        sock.recv(4096)


def _events_per_s(engine: Any, base: Settings, workers: int, per_worker: int, tmp: Path) -> float:
    from sqlalchemy import func, select

    from layers.models.vision import detection_event
    from layers.vision.events import EventIn
    from vision.broker import SpooledPublisher, run_writer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    store = tmp / f"nats-{workers}"
    proc = subprocess.Popen(
        [NATS, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(store)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"nats://127.0.0.1:{port}"
    time.sleep(1.0)
    s = base.model_copy(update={"broker_url": url, "broker_batch": 500})
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    writer = threading.Thread(target=lambda: loop.run_until_complete(run_writer(engine, s, stop)))
    writer.start()
    camera = f"bench-{uuid.uuid4().hex[:6]}"
    pubs = [
        SpooledPublisher(url, tmp / f"spool-{workers}-{w}", s.broker_stream) for w in range(workers)
    ]
    total = workers * per_worker
    started = time.monotonic()

    def publish(p: SpooledPublisher) -> None:
        for _ in range(per_worker // 10):
            now = datetime.now(UTC)
            p.publish(
                [
                    EventIn(camera_id=camera, event_type="line_crossing", observed_at=now)
                    for _ in range(10)
                ]
            )

    threads = [threading.Thread(target=publish, args=(p,)) for p in pubs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stored = 0
    deadline = time.monotonic() + 120
    while stored < total and time.monotonic() < deadline:
        with engine.connect() as conn:
            stored = int(
                conn.execute(
                    select(func.count()).where(detection_event.c.camera_id == camera)
                ).scalar_one()
            )
        time.sleep(0.05)
    elapsed = time.monotonic() - started
    for p in pubs:
        p.close(timeout_s=2)
    loop.call_soon_threadsafe(stop.set)
    writer.join(15)
    proc.terminate()
    proc.wait(10)
    return round(stored / elapsed, 1)


def _failover_s(lc: LocalCluster, base: Settings, engine: Any) -> dict[str, float]:
    with engine.begin() as conn:
        users.create_user(conn, "bench_admin", "a long bench password 1", "admin")
    token = httpx.post(
        lc.url + "/api/auth/token",
        data={"username": "bench_admin", "password": "a long bench password 1"},
    ).json()["access_token"]
    client = httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert client.post(lc.url + "/api/views", json={"name": "v0", "state": ""}).status_code == 201
    killed = time.monotonic()
    replication.kill(base, lc.primary)
    replication.promote(base, lc.standby)
    promoted = time.monotonic()
    i = 0
    while time.monotonic() - killed < 120:
        i += 1
        if (
            client.post(lc.url + "/api/views", json={"name": f"v{i}", "state": ""}).status_code
            == 201
        ):
            break
        time.sleep(0.05)
    back = time.monotonic()
    return {
        "promote_s": round(promoted - killed, 2),
        "writes_back_after_promote_s": round(back - promoted, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    seconds, repeats, points = (4.0, 2, 5000) if args.quick else (10.0, 3, 20000)
    base = Settings(environment="test")
    root = Path("/var/tmp/iocmap-bench-cluster")
    shutil.rmtree(root, ignore_errors=True)
    lc = LocalCluster(
        root=root,
        base_port=_free_base_port(),
        extra_env={"IOC_TILE_CACHE_MAX_BYTES": "0", "IOC_ANALYTICS_SCHEDULER": "false"},
    )
    out: dict[str, Any] = {"bench": "cluster", "load_start": load1()}
    try:
        lc.up(base)
        engine = make_engine(base.model_copy(update={"database_url": lc.database_url(base)}))
        _seed(engine, points)
        time.sleep(1.0)  # the standby replays the seed
        paths = _paths()

        def run(side: str, r: int) -> dict[str, Any]:
            _haproxy(lc, f"{'enable' if side == '2_replicas' else 'disable'} server apis/api2")
            time.sleep(1.5)
            return asyncio.run(_load(lc.url, paths, 16, seconds))

        for side in ("2_replicas", "1_replica"):  # warm both replicas' pools and plans
            _haproxy(lc, f"{'enable' if side == '2_replicas' else 'disable'} server apis/api2")
            asyncio.run(_load(lc.url, paths, 16, 2.0))
        res = interleave(["1_replica", "2_replicas"], repeats, run)
        _haproxy(lc, "enable server apis/api2")
        out["tiles_items"] = {
            k: {"rps": summary([x["rps"] for x in v]), "errors": sum(x["errors"] for x in v)}
            for k, v in res.items()
        }
        out["two_vs_one"] = paired_ratios(
            [x["rps"] for x in res["2_replicas"]], [x["rps"] for x in res["1_replica"]]
        )

        # Primary only vs primary + standby reads, 2 replicas (each switch restarts them).
        def reads(side: str, r: int) -> dict[str, Any]:
            want = side == "standby_reads"
            if lc.standby_reads != want:
                lc.standby_reads = want
                lc.restart_apis(base)
                time.sleep(2.0)  # HAProxy sees them UP again
                asyncio.run(_load(lc.url, paths, 16, 2.0))  # warm
            res = asyncio.run(_load(lc.url, paths, 16, seconds))
            if want:
                res["standby_health"] = [
                    httpx.get(f"http://127.0.0.1:{lc.api_port(i)}/health").json()["standby_reads"]
                    for i in range(lc.replicas)
                ]
            return res

        rd = interleave(["primary_reads", "standby_reads"], repeats, reads)
        out["reads"] = {
            k: {"rps": summary([x["rps"] for x in v]), "errors": sum(x["errors"] for x in v)}
            for k, v in rd.items()
        }
        out["standby_vs_primary"] = paired_ratios(
            [x["rps"] for x in rd["standby_reads"]], [x["rps"] for x in rd["primary_reads"]]
        )
        out["standby_reads"] = rd["standby_reads"][-1]["standby_health"]
        if Path(NATS).exists():
            tmp = root / "broker"
            per = 500 if args.quick else 2000
            one = _events_per_s(engine, base, 1, per * 4, tmp)
            four = _events_per_s(engine, base, 4, per, tmp)
            out["broker_events_per_s"] = {
                "1_worker": one,
                "4_workers": four,
                "ratio": round(four / one, 2) if one else None,
            }
        out["failover"] = _failover_s(lc, base, engine)
        engine.dispose()
    finally:
        lc.down(base)
        shutil.rmtree(root, ignore_errors=True)
    out["load_end"] = load1()
    print(orjson.dumps(out).decode())


if __name__ == "__main__":
    main()
