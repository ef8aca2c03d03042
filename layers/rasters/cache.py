"""A byte-bounded LRU for raster query state: grids read from COGs and coverage indexes.

Keys name everything the value depends on (the COG's path changes with every import, the
polygons' WKB digest with every edit), so an entry can never be stale, only unused.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")


class RasterCache:
    """Thread-safe LRU bounded by the bytes its values report (`nbytes(value)`)."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        # One lock per key being made: two requests for the same cold entry build it once.
        self._making: dict[Hashable, threading.Lock] = {}
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> Any | None:
        """The cached value, or None."""
        with self._lock:
            got = self._items.get(key)
            if got is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return got[0]

    def put(self, key: Hashable, value: Any, nbytes: int) -> None:
        """Store a value, evicting the least recently used ones beyond the budget."""
        if nbytes > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._items[key] = (value, nbytes)
            self._bytes += nbytes
            while self._bytes > self.max_bytes and self._items:
                _, (_, n) = self._items.popitem(last=False)
                self._bytes -= n

    def get_or_make(self, key: Hashable, make: Callable[[], T], nbytes: Callable[[T], int]) -> T:
        """The cached value, or `make()` stored under `key` (made once however many ask)."""
        got = self.get(key)
        if got is not None:
            return got  # type: ignore[no-any-return]
        with self._lock:
            lock = self._making.setdefault(key, threading.Lock())
        with lock:
            got = self.get(key)
            if got is None:
                got = make()
                self.put(key, got, nbytes(got))
        with self._lock:
            self._making.pop(key, None)
        return got

    @property
    def size_bytes(self) -> int:
        """Bytes held."""
        return self._bytes

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
