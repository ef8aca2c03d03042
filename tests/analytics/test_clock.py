"""Days are Vietnam days whatever the machine's clock and zone say (run under faketime too)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from analytics.service import default_window
from layers.indicators.store import today_local

ICT = ZoneInfo("Asia/Ho_Chi_Minh")

pytestmark = pytest.mark.clock


def test_today_is_the_vietnam_date() -> None:
    before = datetime.now(UTC).astimezone(ICT).date()
    got = today_local()
    after = datetime.now(UTC).astimezone(ICT).date()
    assert got in (before, after)


def test_default_window_ends_at_the_next_midnight_in_vietnam() -> None:
    start, end = default_window(7)
    local_end = end.astimezone(ICT)
    assert (local_end.hour, local_end.minute, local_end.second) == (0, 0, 0)
    now = datetime.now(ICT)
    assert timedelta(0) < local_end - now <= timedelta(days=1)
    assert end - start == timedelta(days=7)
