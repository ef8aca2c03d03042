"""A byte-bounded LRU of rendered tiles, keyed so that a layer change can never hit a stale entry."""

from __future__ import annotations

import gzip
import threading
from collections import OrderedDict
from dataclasses import dataclass

GZIP_MIN_BYTES = 1024
# Level 1: a tile is compressed on the cold path, where level 6 cost ~13x the CPU (tens of ms
# on a dense 360 KB tile) for ~13% fewer bytes.
GZIP_LEVEL = 1
# Moves when what a tile holds changes for the same data (e.g. source_key added in format 2),
# so browsers revalidating an older tile get the new one, not a 304.
TILE_FORMAT = 2
# Time-filtered tiles a layer may hold at once: arbitrary intervals must not flush the rest.
MAX_FILTERED_PER_LAYER = 4096


@dataclass(frozen=True)
class TileKey:
    """Everything a tile's bytes depend on; data_version moves on every change of the layer."""

    layer_id: int
    data_version: int
    schema_stamp: str
    z: int
    x: int
    y: int
    props: str
    # The datetime filter's canonical text ("" for none): a filtered tile never answers for an
    # unfiltered one, nor for another interval.
    time: str = ""
    # What the bytes are: "" for a vector tile, "png" for a raster overview of the same z/x/y.
    fmt: str = ""

    def etag(self) -> str:
        """Strong ETag of the tile (quoted), derived from the key alone: no rendering needed."""
        return (
            f'"{TILE_FORMAT}.{self.layer_id}-{self.data_version}-{self.schema_stamp}-'
            f"{self.z}-{self.x}-{self.y}-{self.props}{self.time}"
            f'{"." + self.fmt if self.fmt else ""}"'
        )


@dataclass(frozen=True)
class CachedTile:
    """A rendered tile, with its gzip encoding when that is worth sending."""

    data: bytes
    gzipped: bytes | None

    @classmethod
    def of(cls, data: bytes) -> CachedTile:
        """Wrap fresh tile bytes, compressing them once if they are big enough."""
        if len(data) < GZIP_MIN_BYTES:
            return cls(data, None)
        return cls(data, gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0))

    @property
    def nbytes(self) -> int:
        """Memory the entry holds."""
        return len(self.data) + len(self.gzipped or b"")


class TileCache:
    """Thread-safe LRU bounded by total bytes. Entries of older data_versions age out.

    Time-filtered tiles are also bounded per layer (`max_filtered_per_layer`, least recently
    used first), so a client sweeping arbitrary intervals cannot push every other tile out.

    Correct with any number of processes: a key contains the layer's data_version, which the
    caller takes from `layers.features.layer_versions.LayerVersionCache` (memory, dropped by every
    layer-change NOTIFY and by this process's own commits) or else from the database.
    """

    def __init__(self, max_bytes: int, max_filtered_per_layer: int = MAX_FILTERED_PER_LAYER):
        self.max_bytes = max_bytes
        self.max_filtered_per_layer = max_filtered_per_layer
        self._items: OrderedDict[TileKey, CachedTile] = OrderedDict()
        # Per layer, its time-filtered keys in LRU order (a subset of _items).
        self._filtered: dict[int, OrderedDict[TileKey, None]] = {}
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: TileKey) -> CachedTile | None:
        """The cached tile, or None."""
        with self._lock:
            data = self._items.get(key)
            if data is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            if key.time:
                self._filtered[key.layer_id].move_to_end(key)
            self.hits += 1
            return data

    def put(self, key: TileKey, tile: CachedTile) -> None:
        """Store a tile, evicting the least recently used ones beyond the budget."""
        if tile.nbytes > self.max_bytes or (key.time and self.max_filtered_per_layer < 1):
            return
        with self._lock:
            self._remove(key)
            self._items[key] = tile
            self._bytes += tile.nbytes
            if key.time:
                filtered = self._filtered.setdefault(key.layer_id, OrderedDict())
                filtered[key] = None
                while len(filtered) > self.max_filtered_per_layer:
                    self._remove(next(iter(filtered)))
            while self._bytes > self.max_bytes and self._items:
                self._remove(next(iter(self._items)))

    def _remove(self, key: TileKey) -> None:
        """Drop one entry, if present (the lock is held)."""
        old = self._items.pop(key, None)
        if old is None:
            return
        self._bytes -= old.nbytes
        if key.time:
            filtered = self._filtered[key.layer_id]
            del filtered[key]
            if not filtered:
                del self._filtered[key.layer_id]

    def filtered_count(self, layer_id: int) -> int:
        """How many time-filtered tiles of the layer are held."""
        with self._lock:
            return len(self._filtered.get(layer_id, ()))

    def drop_layer(self, layer_id: int, keep_version: int | None = None) -> int:
        """Forget a layer's tiles (except those of keep_version); returns how many went."""
        with self._lock:
            stale = [
                k for k in self._items if k.layer_id == layer_id and k.data_version != keep_version
            ]
            for k in stale:
                self._remove(k)
            return len(stale)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    @property
    def size_bytes(self) -> int:
        """Bytes held."""
        return self._bytes
