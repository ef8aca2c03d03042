"""Split vectorised shapely calls over threads: shapely releases the GIL inside GEOS."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Any

import numpy as np

MIN_PER_THREAD = 20_000


@lru_cache(maxsize=1)
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="iocmap-geos")


def pmap(fn: Callable[..., Any], values: np.ndarray, **kwargs: Any) -> np.ndarray:
    """`fn(values, **kwargs)` computed on halves in two threads, concatenated in order."""
    n = len(values)
    if n < 2 * MIN_PER_THREAD:
        return np.asarray(fn(values, **kwargs))
    mid = n // 2
    left = _pool().submit(fn, values[:mid], **kwargs)
    right = np.asarray(fn(values[mid:], **kwargs))
    return np.concatenate([np.asarray(left.result()), right])


def get_coordinates_split(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """All coordinates, the owning geometry of each, and (geometry, coordinate) split point."""
    import shapely

    n = len(geoms)
    if n < 2 * MIN_PER_THREAD:
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
