"""The audit trail and the shared token buckets (rate limits) in layers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from layers.auth import audit, ratelimit

T0 = datetime(2030, 6, 1, tzinfo=UTC)


def test_audit_entries_filter_and_page(engine: Engine) -> None:
    with engine.begin() as conn:
        ids = [
            audit.record(conn, "la_alice", "operator", "login", ip="10.0.0.1", at=T0),
            audit.record(
                conn,
                "la_alice",
                "operator",
                "camera_snapshot",
                method="GET",
                path="/api/cameras/c1/snapshot.jpg",
                status=200,
                details={"params": {"camera_id": "c1"}},
                at=T0 + timedelta(minutes=1),
            ),
            audit.record(conn, "la_bob", "gis_staff", "import", at=T0 + timedelta(minutes=2)),
        ]
    with engine.connect() as conn:
        alice = audit.list_entries(conn, actor="la_alice")
        assert [e["id"] for e in alice] == ids[1::-1]
        snap = audit.list_entries(conn, action="camera_snapshot", actor="la_alice")[0]
        assert snap["details"] == {"params": {"camera_id": "c1"}} and snap["status"] == 200
        window = audit.list_entries(conn, since=T0, until=T0 + timedelta(minutes=2))
        assert {e["id"] for e in window} >= set(ids[:2]) and ids[2] not in {e["id"] for e in window}
        older = audit.list_entries(conn, actor="la_alice", before_id=ids[1])
        assert [e["id"] for e in older] == [ids[0]]


def test_token_bucket_refills_and_caps(engine: Engine) -> None:
    key = "test:refill"
    rate = 1 / 60  # one token a minute
    with engine.begin() as conn:
        assert [ratelimit.take(conn, key, 3, rate, T0) for _ in range(4)] == [
            True,
            True,
            True,
            False,
        ]
        assert not ratelimit.take(conn, key, 3, rate, T0 + timedelta(seconds=59))
        assert ratelimit.take(conn, key, 3, rate, T0 + timedelta(seconds=61))
        # A long pause refills to the capacity, not beyond it.
        later = T0 + timedelta(days=1)
        assert [ratelimit.take(conn, key, 3, rate, later) for _ in range(4)] == [
            True,
            True,
            True,
            False,
        ]
        assert ratelimit.retry_after_s(conn, key, 3, rate, later) == 60


def test_token_bucket_is_exact_under_concurrency(engine: Engine) -> None:
    def hit(_: int) -> bool:
        with engine.begin() as conn:
            return ratelimit.take(conn, "test:concurrent", 5, 0.0, T0)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(hit, range(40)))
    assert sum(results) == 5
