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


def reset_all(conn: Connection) -> None:
    """Empty every token bucket (tests, and operators after an incident)."""
    conn.execute(text("DELETE FROM rate_bucket"))
