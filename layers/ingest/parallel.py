"""Split vectorised shapely calls over threads: shapely releases the GIL inside GEOS."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import numpy as np

MIN_PER_THREAD = 20_000
SERIAL_CHUNK = 8_192


_local = threading.local()


@contextmanager
def serial() -> Iterator[None]:
    """Within this block (this thread), pmap and friends run in the calling thread only.

    Used while the database server works on the other core (an early COPY): a second
    GEOS thread would only take CPU from the server, which is then the slower side.
    """
    before = getattr(_local, "serial", False)
    _local.serial = True
    try:
        yield
    finally:
        _local.serial = before


def _serial() -> bool:
    return bool(getattr(_local, "serial", False))


@lru_cache(maxsize=1)
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="iocmap-geos")


def pmap(fn: Callable[..., Any], values: np.ndarray, **kwargs: Any) -> np.ndarray:
    """`fn(values, **kwargs)` computed on halves in two threads, concatenated in order."""
    n = len(values)
    if _serial() and n > SERIAL_CHUNK:
        # Short calls: some shapely functions (from_wkb) hold the GIL throughout, which
        # would starve the COPY thread feeding the server.
        return np.concatenate(
            [
                np.asarray(fn(values[a : a + SERIAL_CHUNK], **kwargs))
                for a in range(0, n, SERIAL_CHUNK)
            ]
        )
    if n < 2 * MIN_PER_THREAD or _serial():
        return np.asarray(fn(values, **kwargs))
    mid = n // 2
    left = _pool().submit(fn, values[:mid], **kwargs)
    right = np.asarray(fn(values[mid:], **kwargs))
    return np.concatenate([np.asarray(left.result()), right])


def get_coordinates_split(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """All coordinates, the owning geometry of each, and (geometry, coordinate) split point."""
    import shapely

    n = len(geoms)
    if n < 2 * MIN_PER_THREAD or _serial():
        coords, owner = shapely.get_coordinates(geoms, return_index=True)
        return coords, owner, (n, len(coords))
    mid = n // 2
    left = _pool().submit(shapely.get_coordinates, geoms[:mid], return_index=True)
    c2, o2 = shapely.get_coordinates(geoms[mid:], return_index=True)
    c1, o1 = left.result()
    return np.concatenate([c1, c2]), np.concatenate([o1, o2 + mid]), (mid, len(c1))


def set_coordinates_split(
    geoms: np.ndarray, coords: np.ndarray, split: tuple[int, int]
) -> np.ndarray:
    """shapely.set_coordinates in two threads, using the split from get_coordinates_split."""
    import shapely

    mid, cmid = split
    if mid >= len(geoms):
        return np.asarray(shapely.set_coordinates(geoms, coords))
    left = _pool().submit(shapely.set_coordinates, geoms[:mid], coords[:cmid])
    right = np.asarray(shapely.set_coordinates(geoms[mid:], coords[cmid:]))
    return np.concatenate([np.asarray(left.result()), right])


def run_pair(first: Callable[[], Any], second: Callable[[], Any]) -> tuple[Any, Any]:
    """Run two callables at once (the first on the pool); returns both results."""
    if _serial():
        return first(), second()
    left = _pool().submit(first)
    right = second()
    return left.result(), right
