"""Stage interfaces (Protocols) and the registry that builds plugins by name."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ValidationError

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

    def predict(self) -> list[Track]:
        """Advance one frame without detections and return the tracks carried along."""
        ...


T = TypeVar("T")


class PluginConfigError(ValueError):
    """A plugin's parameters do not fit its config model; the message names the field."""


def describe_errors(exc: ValidationError) -> str:
    """`field: problem` for every error of a pydantic validation, joined by '; '."""
    parts = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "(parameters)"
        msg = "unknown parameter" if err["type"] == "extra_forbidden" else err["msg"]
        parts.append(f"{field}: {msg}")
    return "; ".join(parts)


class Registry(Generic[T]):
    """Plugins of one kind, looked up by name, each with a typed config model.

    A factory takes the validated config (a pydantic model with `extra="forbid"`) and the
    runtime objects that are not configuration (callbacks, a calibration, the frame rate).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}
        self._configs: dict[str, type[BaseModel]] = {}

    def register(
        self, name: str, config: type[BaseModel]
    ) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator registering a factory `(config, **runtime) -> plugin` under `name`."""

        def deco(factory: Callable[..., T]) -> Callable[..., T]:
            self._factories[name] = factory
            self._configs[name] = config
            return factory

        return deco

    def config_model(self, name: str) -> type[BaseModel]:
        """The config model of plugin `name`."""
        if name not in self._configs:
            raise PluginConfigError(
                f"unknown {self.kind} '{name}'; known: {', '.join(sorted(self._factories))}"
            )
        return self._configs[name]

    def validate(self, name: str, params: Mapping[str, Any] | None, where: str = "") -> BaseModel:
        """The typed config of plugin `name`, or a PluginConfigError naming `where` and the field."""
        model = self.config_model(name)
        try:
            return model.model_validate(dict(params or {}))
        except ValidationError as exc:
            prefix = f"{where}: " if where else ""
            raise PluginConfigError(
                f"{prefix}{self.kind} '{name}': {describe_errors(exc)}"
            ) from None

    def create(
        self, name: str, params: Mapping[str, Any] | None = None, where: str = "", **runtime: Any
    ) -> T:
        """Build the plugin `name` from its (validated) parameters and runtime objects."""
        cfg = self.validate(name, params, where)
        return self._factories[name](cfg, **runtime)

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._factories)


DETECTORS: Registry[Detector] = Registry("detector")
TRACKERS: Registry[Tracker] = Registry("tracker")
SOURCES: Registry[FrameSource] = Registry("frame source")
