"""Domain errors shared by every package; geo_api maps them to HTTP status codes."""

from __future__ import annotations

from typing import Any


class IocError(Exception):
    """Base of all domain errors; `detail` is safe to show to the caller."""

    code = "error"

    def __init__(self, detail: str, **context: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.context = context

    def __reduce__(self) -> tuple[Any, ...]:
        # Keeps the context when the error crosses a process boundary (import workers).
        return (_rebuild, (type(self), self.detail, self.context))


def _rebuild(cls: type[IocError], detail: str, context: dict[str, Any]) -> IocError:
    return cls(detail, **context)


class NotFoundError(IocError):
    """The named resource (layer, feature, camera…) does not exist."""

    code = "not_found"


class InvalidInputError(IocError):
    """A parameter, file or body is malformed; the detail says which and why."""

    code = "invalid_input"


class ConflictError(IocError):
    """The request clashes with the current state (duplicate, illegal transition…)."""

    code = "conflict"


class PermissionDeniedError(IocError):
    """The caller is known but may not do this."""

    code = "forbidden"


class AuthenticationError(IocError):
    """The caller is not authenticated."""

    code = "unauthenticated"


class PayloadTooLargeError(IocError):
    """An upload or body exceeds the configured limit."""

    code = "payload_too_large"


class RateLimitedError(IocError):
    """The caller sent too many requests of this kind; retry later."""

    code = "rate_limited"


class UnavailableError(IocError):
    """A dependency (database, camera, sector system) cannot be reached."""

    code = "unavailable"


class DatabaseClusterError(IocError):
    """The managed PostgreSQL cluster cannot be started, stopped or reached."""

    code = "database_cluster"
