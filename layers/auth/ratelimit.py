"""Token buckets in PostgreSQL: one atomic statement per hit, shared by every API process."""

from __future__ import annotations

import math
from datetime import datetime

from sqlalchemy import Connection, text

# One statement: refill by elapsed time (capped), then take a token only if one is left.
# The row lock of INSERT .. ON CONFLICT serialises concurrent hits on the same key, so the
# limit holds across processes and replicas sharing the database.
_TAKE = text(
    """
    INSERT INTO rate_bucket AS b (key, tokens, updated_at)
    VALUES (:key, :capacity - 1, :now)
    ON CONFLICT (key) DO UPDATE
       SET tokens = LEAST(:capacity, b.tokens
                    + GREATEST(0, EXTRACT(EPOCH FROM (:now - b.updated_at))) * :rate) - 1,
           updated_at = GREATEST(b.updated_at, :now)
     WHERE LEAST(:capacity, b.tokens
                 + GREATEST(0, EXTRACT(EPOCH FROM (:now - b.updated_at))) * :rate) >= 1
    RETURNING tokens
    """
)


def take(conn: Connection, key: str, capacity: int, rate_per_s: float, now: datetime) -> bool:
    """Take one token from the bucket `key`; False when it is empty (the caller must refuse)."""
    row = conn.execute(
        _TAKE, {"key": key, "capacity": float(capacity), "rate": rate_per_s, "now": now}
    ).first()
    return row is not None


def retry_after_s(
    conn: Connection, key: str, capacity: int, rate_per_s: float, now: datetime
) -> int:
    """Seconds until the bucket holds one token again."""
    tokens = conn.execute(
        text(
            "SELECT LEAST(:capacity, tokens + GREATEST(0, EXTRACT(EPOCH FROM (:now - updated_at)))"
            " * :rate) FROM rate_bucket WHERE key = :key"
        ),
        {"key": key, "capacity": float(capacity), "rate": rate_per_s, "now": now},
    ).scalar()
    if tokens is None or tokens >= 1 or rate_per_s <= 0:
        return 1
    return max(1, math.ceil(round((1 - float(tokens)) / rate_per_s, 6)))


# --- failure backoff (sign-in per account and address) --------------------------------------
# The same table, another meaning under its own keys: `tokens` counts failures in a row and
# `updated_at` is the last one. A run of failures older than FAILURE_MEMORY starts afresh.
FAILURE_MEMORY_S = 3600.0

_FAIL = text(
    """
    INSERT INTO rate_bucket AS b (key, tokens, updated_at) VALUES (:key, 1, :now)
    ON CONFLICT (key) DO UPDATE
       SET tokens = CASE WHEN b.updated_at < :now - make_interval(secs => :memory)
                         THEN 1 ELSE b.tokens + 1 END,
           updated_at = GREATEST(b.updated_at, :now)
    """
)


def backoff_s(failures: int, free: int, base_s: float, max_s: float) -> float:
    """The wait imposed after `failures` failures in a row: none for the first `free`, then
    doubling from `base_s` up to `max_s`."""
    if failures < free:
        return 0.0
    return float(min(base_s * 2 ** (failures - free), max_s))


def failure_wait_s(
    conn: Connection, key: str, now: datetime, free: int, base_s: float, max_s: float
) -> int:
    """Seconds before `key` may try again (0: now)."""
    row = conn.execute(
        text("SELECT tokens, updated_at FROM rate_bucket WHERE key = :key"), {"key": key}
    ).first()
    if row is None:
        return 0
    failures, last = int(row[0]), row[1]
    since = (now - last).total_seconds()
    if since > FAILURE_MEMORY_S:
        return 0
    wait = backoff_s(failures, free, base_s, max_s) - since
    return max(0, math.ceil(wait)) if wait > 0 else 0


def record_failure(conn: Connection, key: str, now: datetime) -> None:
    """Count one more failure of `key`."""
    conn.execute(_FAIL, {"key": key, "now": now, "memory": FAILURE_MEMORY_S})


def clear(conn: Connection, key: str) -> None:
    """Forget `key` (after a success)."""
    conn.execute(text("DELETE FROM rate_bucket WHERE key = :key"), {"key": key})


def reset_all(conn: Connection) -> None:
    """Empty every token bucket (tests, and operators after an incident)."""
    conn.execute(text("DELETE FROM rate_bucket"))
