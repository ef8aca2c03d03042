"""The raster query cache: bounded by bytes, least recently used out, made once per key."""

from __future__ import annotations

import threading
import time

from layers.rasters.cache import RasterCache


def test_evicts_least_recently_used_beyond_the_byte_budget() -> None:
    cache = RasterCache(100)
    cache.put("a", "A", 40)
    cache.put("b", "B", 40)
    assert cache.get("a") == "A"  # b is now the least recently used
    cache.put("c", "C", 40)
    assert cache.get("b") is None and cache.get("a") == "A" and cache.get("c") == "C"
    assert cache.size_bytes == 80 and len(cache) == 2
    cache.put("huge", "H", 101)  # never held: bigger than the whole budget
    assert cache.get("huge") is None and len(cache) == 2


def test_a_cold_entry_is_made_once_however_many_ask() -> None:
    cache = RasterCache(1000)
    made: list[int] = []

    def make() -> str:
        made.append(1)
        time.sleep(0.05)
        return "grid"

    got: list[str] = []
    threads = [
        threading.Thread(target=lambda: got.append(cache.get_or_make("k", make, lambda _v: 10)))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == ["grid"] * 8 and made == [1]
