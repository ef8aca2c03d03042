"""Map domain errors (layers.errors) to HTTP status codes and JSON bodies, at the edge."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from geo_api import i18n
from layers.errors import (
    AuthenticationError,
    ConflictError,
    DatabaseClusterError,
    InvalidInputError,
    IocError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitedError,
    UnavailableError,
)

log = logging.getLogger(__name__)

STATUS_BY_ERROR: dict[type[IocError], int] = {
    NotFoundError: 404,
    InvalidInputError: 400,
    ConflictError: 409,
    PermissionDeniedError: 403,
    AuthenticationError: 401,
    PayloadTooLargeError: 413,
    RateLimitedError: 429,
    UnavailableError: 503,
    DatabaseClusterError: 503,
}


def domain_detail(lang: str, exc: IocError) -> str:
    """A domain error's message in `lang`: its catalogue key's text, else its own detail."""
    key = exc.context.get("i18n")
    if not isinstance(key, str):
        return exc.detail
    values = {k: v for k, v in exc.context.items() if k != "i18n"}
    return i18n.t(lang, key, **values)


def status_for(exc: IocError) -> int:
    """HTTP status of a domain error (500 for an unmapped one)."""
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500


def error_body(
    status: int, code: str, detail: str, extra: Mapping[str, object] | None = None
) -> dict[str, object]:
    """The JSON error shape every endpoint returns (OGC-style `code` and `description` too)."""
    body: dict[str, object] = {k: v for k, v in (extra or {}).items() if k not in _RESERVED_KEYS}
    body.update(status=status, code=code, detail=detail, description=detail)
    return body


# Context keys that would overwrite the error's own fields are dropped, not allowed to crash.
_RESERVED_KEYS = frozenset({"status", "code", "detail", "description"})


def _retry_after(request: Request) -> int:
    settings = getattr(request.app.state, "settings", None)
    return int(getattr(settings, "retry_after_s", 5))


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that turn domain and validation errors into JSON 4xx."""

    async def on_domain_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, IocError)
        status = status_for(exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if status == 503:
            headers = {"Retry-After": str(_retry_after(request))}
        if status == 429 and isinstance(exc.context.get("retry_after_s"), int | float):
            headers = {"Retry-After": str(max(1, int(exc.context["retry_after_s"])))}
        # the message in the caller's language, from the one catalogue (web_map/i18n.json)
        detail = domain_detail(i18n.request_lang(request), exc)
        return JSONResponse(
            error_body(
                status,
                exc.code,
                detail,
                {k: v for k, v in exc.context.items() if isinstance(v, str | int | float)},
            ),
            status_code=status,
            headers=headers,
        )

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        # each problem names its field in words, in the caller's language; `fields` keeps
        # the raw locations for programs
        lang = i18n.request_lang(request)
        problems = [i18n.validation_problem(lang, err) for err in exc.errors()]
        fields = [".".join(str(p) for p in err.get("loc", ())) for err in exc.errors()]
        return JSONResponse(
            error_body(
                400,
                "invalid_input",
                "; ".join(problems),
                {"errors": problems, "fields": fields},
            ),
            status_code=400,
        )

    async def on_database_away(request: Request, exc: Exception) -> JSONResponse:
        # Restarting, down or saturated: a 503 the client may retry, never a 500.
        log.warning("database away: %s", type(exc).__name__)
        detail = i18n.t(i18n.request_lang(request), "err.edge.database_away")
        return JSONResponse(
            error_body(503, "unavailable", detail),
            status_code=503,
            headers={"Retry-After": str(_retry_after(request))},
        )

    async def on_data_error(request: Request, exc: Exception) -> JSONResponse:
        # SQLSTATE class 22 (a value out of range, a NUL byte, bad text): the request's data
        # is at fault. The handlers validate first; this is the backstop, logged to be fixed.
        log.warning("data error reached the edge: %s", str(exc).splitlines()[0][:300])
        orig = getattr(exc, "orig", None)
        first = str(orig or exc).strip().splitlines()[0][:200] if str(orig or exc) else ""
        detail = i18n.t(i18n.request_lang(request), "err.edge.data_error", error=first)
        return JSONResponse(error_body(400, "invalid_input", detail), status_code=400)

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        # Starlette's own answers (no such path, method not allowed) in the caller's language
        assert isinstance(exc, StarletteHTTPException)
        key = f"err.edge.http_{exc.status_code}"
        lang = i18n.request_lang(request)
        detail = i18n.t(lang, key) if i18n.has(key) else str(exc.detail)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
        return JSONResponse(
            error_body(exc.status_code, code, detail),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(IocError, on_domain_error)
    app.add_exception_handler(DataError, on_data_error)
    app.add_exception_handler(psycopg.DataError, on_data_error)
    for cls in (OperationalError, PoolTimeoutError, psycopg.OperationalError, PoolTimeout):
        app.add_exception_handler(cls, on_database_away)
    app.add_exception_handler(RequestValidationError, on_validation_error)
