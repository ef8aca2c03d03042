"""Stage interfaces (Protocols) and the registry that builds plugins by name."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from vision.types import Detections, Track

Frame = NDArray[np.uint8]


@runtime_checkable
class FrameSource(Protocol):
    """Yields (frame, timestamp) pairs; reports online/offline through its status callback."""

    def frames(self) -> Iterator[tuple[Frame, datetime]]:
        """Frames until the source ends or is closed."""
        ...

    def close(self) -> None:
        """Release the device or stream."""
        ...


@runtime_checkable
class Detector(Protocol):
    """Finds objects in one BGR frame."""

    name: str

    def detect(self, frame: Frame) -> Detections:
        """Boxes in the frame's pixel coordinates."""
        ...


@runtime_checkable
class Tracker(Protocol):
    """Associates detections over frames into tracks with stable ids."""

    def update(self, detections: Detections) -> list[Track]:
        """Advance one frame and return the tracks seen in it."""
        ...


T = TypeVar("T")


class Registry(Generic[T]):
    """Plugins of one kind, looked up by name."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator registering a factory under `name`."""

        def deco(factory: Callable[..., T]) -> Callable[..., T]:
            self._factories[name] = factory
            return factory

        return deco

    def create(self, name: str, **params: Any) -> T:
        """Build the plugin `name` with its parameters."""
        try:
            factory = self._factories[name]
        except KeyError:
            raise KeyError(
                f"unknown {self.kind} '{name}'; known: {', '.join(sorted(self._factories))}"
            ) from None
        return factory(**params)

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._factories)


DETECTORS: Registry[Detector] = Registry("detector")
TRACKERS: Registry[Tracker] = Registry("tracker")
SOURCES: Registry[FrameSource] = Registry("frame source")
