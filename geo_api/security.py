"""Authentication, the ONE authorisation policy table, audit, size limits and security headers.

`POLICY` maps (method, route path template) to who may call it. `SecurityMiddleware`,
installed by create_app, matches each request to its route template, resolves the caller
(bearer JWT, a personal API token in `X-API-Key` or `X-Esri-Authorization`, HTTP Basic with
a user's password, or the web map's session cookie), checks the policy (deny for routes missing from
the table), checks the layer named in the path of generic layer/tiles/OGC/H3 routes, limits the
body size, adds security headers and writes the audit trail.

Layers named in a request body are checked by the handler itself, on the body FastAPI parsed
and validated for it (`authorize_layers`), never by a second parser here; a route whose rule
says `layers_in_body` and whose handler did not call it answers 500 instead of data. Both
paths end in ONE decision, `layer_allowed`, and record the layers read in the audit entry.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import anyio.to_thread
import jwt
import orjson
import psycopg
from fastapi import Depends, FastAPI, Request
from fastapi.routing import iter_route_contexts
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.requests import Request as ScopeRequest

from geo_api import i18n
from geo_api.errors import domain_detail
from layers.auth import audit, ratelimit
from layers.auth import users as user_store
from layers.auth.users import ROLES, User, active_user
from layers.errors import (
    AuthenticationError,
    InvalidInputError,
    PermissionDeniedError,
    RateLimitedError,
    UnavailableError,
)
from layers.features.registry import layer_visibilities
from layers.settings import PUBLIC_SECRETS, Settings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Enforcement for every route (False limits it to OWN_PREFIXES; kept as a switch for
# bisecting a failing test, not for production).
ENFORCE_ALL = True
OWN_PREFIXES = ("/api/reports", "/api/auth", "/api/audit")

log = logging.getLogger(__name__)
SENSITIVITY_TTL_S = 5.0
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
JWT_ALGORITHM = "HS256"
JWT_ISSUER = "iocmap"
USER_STATE_KEY = "iocmap_user"
CALL_STATE_KEY = "iocmap_call"
# What a layer slug can look like (layers.features.registry.LayerDef.slug); anything else names no layer.
SLUG_RE = re.compile(r"^[a-z][a-z0-9_]{1,62}$")

# What a database that is restarting, down or saturated raises (answered 503 + Retry-After).
DATABASE_AWAY: tuple[type[BaseException], ...] = (
    OperationalError,
    PoolTimeoutError,
    psycopg.OperationalError,
    UnavailableError,
)

# --- the policy table ---------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """Who may call a route, and what the middleware must check or record for it."""

    roles: frozenset[str] | None = None
    authenticated: bool = False
    layer_param: str | None = None
    layers_in_body: bool = False
    audit: bool | None = None
    audit_action: str | None = None
    max_body: Literal["default", "reports", "photo", "imports"] = "default"

    @property
    def public(self) -> bool:
        """True when anonymous callers pass the role check."""
        return self.roles is None and not self.authenticated

    def allows(self, user: User | None) -> bool:
        """Role check (admin passes everything)."""
        if self.public:
            return True
        if user is None:
            return False
        if user.role == "admin" or self.roles is None:
            return True
        return user.role in self.roles


PUBLIC = Rule()
AUTHENTICATED = Rule(authenticated=True)


def roles(*names: str, **kw: Any) -> Rule:
    """A rule allowing these roles (and admin)."""
    unknown = set(names) - set(ROLES)
    assert not unknown, unknown
    return Rule(roles=frozenset(names), **kw)


def layer_read(param: str) -> Rule:
    """Readable as the layer's catalogue visibility says (public, signed-in or roles)."""
    return Rule(layer_param=param)


ADMIN = roles()
# Alert listings are not scoped by commune inside their queries, so commune_staff (who must
# only see their own communes) are left out until they are.
ALERT_READERS = ("leader", "planner", "operator", "gis_staff")
REPORT_READERS = ("leader", "operator", "planner", "commune_staff")
REPORT_WORKERS = ("commune_staff", "operator")
# The handlers check the layers of their validated body (authorize_layers).
QUERY = Rule(layers_in_body=True)
# issue 21: who reads incidents, and who works on incident tasks
INCIDENT_READERS = ("operator", "leader", "planner", "commune_staff")
TASK_WORKERS = ("operator", "agency_staff", "commune_staff")

POLICY: dict[tuple[str, str], Rule] = {
    # web map, docs, health
    ("GET", "/"): PUBLIC,
    ("GET", "/assets/{path}"): PUBLIC,
    ("GET", "/health"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    ("GET", "/docs-assets/swagger/{path}"): PUBLIC,
    ("GET", "/docs-assets/redoc/{path}"): PUBLIC,
    # catalog and generic layer reads
    ("GET", "/api/layers"): PUBLIC,
    # Restricted layers' metadata is hidden too (listed only to roles that may read them).
    ("GET", "/api/layers/{slug}"): layer_read("slug"),
    ("GET", "/api/layers/{slug}/features"): layer_read("slug"),
    ("GET", "/ogc"): PUBLIC,
    ("GET", "/ogc/"): PUBLIC,
    ("GET", "/ogc/api"): PUBLIC,
    ("GET", "/ogc/conformance"): PUBLIC,
    ("GET", "/ogc/collections"): PUBLIC,
    ("GET", "/ogc/collections/{collection_id}"): layer_read("collection_id"),
    ("GET", "/ogc/collections/{collection_id}/queryables"): layer_read("collection_id"),
    ("GET", "/ogc/collections/{collection_id}/items"): layer_read("collection_id"),
    ("GET", "/ogc/collections/{collection_id}/items/{feature_id}"): layer_read("collection_id"),
    ("GET", "/tiles/{slug}.json"): layer_read("slug"),
    ("GET", "/tiles/{slug}/{z}/{x}/{y}.mvt"): layer_read("slug"),
    ("GET", "/tiles/{slug}/{z}/{x}/{y}.png"): layer_read("slug"),
    ("POST", "/api/query/within"): QUERY,
    ("POST", "/api/query/radius"): QUERY,
    ("POST", "/api/query/near-layer"): QUERY,
    ("POST", "/api/query/nearest"): QUERY,
    ("POST", "/api/query/per-commune"): QUERY,
    ("POST", "/api/query/gaps"): QUERY,
    ("POST", "/api/query/buffer"): QUERY,
    ("POST", "/api/query/intersection"): QUERY,
    # imports
    ("POST", "/api/imports"): roles("gis_staff", audit_action="import", max_body="imports"),
    ("GET", "/api/imports"): roles("gis_staff", "leader"),
    ("GET", "/api/imports/{batch_id}"): roles("gis_staff", "leader"),
    ("GET", "/api/imports/{batch_id}/rejects"): roles("gis_staff", "leader"),
    # analytics
    ("GET", "/api/h3/{layer}"): layer_read("layer"),
    ("GET", "/api/h3/{layer}/communes"): layer_read("layer"),
    ("GET", "/api/h3/{layer}/hotspots"): layer_read("layer"),
    ("GET", "/api/h3/{layer}/change"): layer_read("layer"),
    ("GET", "/api/h3/{layer}/forecast"): layer_read("layer"),
    ("GET", "/api/analytics/indicators"): PUBLIC,
    # sector indicators (issue 9): any signed-in role
    ("GET", "/api/indicators"): AUTHENTICATED,
    ("GET", "/api/indicators/dashboards/{sector}"): AUTHENTICATED,
    ("GET", "/api/indicators/{code}"): AUTHENTICATED,
    ("GET", "/api/indicators/{code}/choropleth"): AUTHENTICATED,
    # alerts
    # commune staff see the alerts about their own communes (filtered inside the queries)
    ("GET", "/api/alerts"): roles(*ALERT_READERS, "commune_staff"),
    ("GET", "/api/alerts/stream"): roles(*ALERT_READERS, "commune_staff"),
    ("GET", "/api/alerts/rules"): roles(*ALERT_READERS),
    ("PUT", "/api/alerts/rules"): roles("operator", "leader"),
    ("POST", "/api/alerts/evaluate"): roles("operator", "leader"),
    ("GET", "/api/alerts/{alert_id}"): roles(*ALERT_READERS, "commune_staff"),
    ("POST", "/api/alerts/{alert_id}/ack"): roles("operator", "leader"),
    ("POST", "/api/alerts/{alert_id}/resolve"): roles("operator", "leader"),
    # cameras and events
    ("GET", "/api/cameras"): roles("operator", "leader", "gis_staff"),
    ("GET", "/api/cameras/{camera_id}"): roles("operator", "leader", "gis_staff"),
    ("GET", "/api/cameras/{camera_id}/snapshot.jpg"): roles(
        "operator", audit=True, audit_action="camera_snapshot"
    ),
    ("GET", "/api/cameras/{camera_id}/zones"): roles("operator", "gis_staff"),
    ("GET", "/api/cameras/{camera_id}/events"): roles("operator"),
    ("GET", "/api/events"): roles("operator"),
    ("GET", "/api/events/stream"): roles("operator"),
    ("GET", "/api/events/{event_id}"): roles("operator"),
    ("GET", "/api/events/{event_id}/snapshot.jpg"): roles(
        "operator", audit=True, audit_action="event_snapshot"
    ),
    # auth and audit (logins are audited by the handlers, with the attempted name)
    ("POST", "/api/auth/token"): Rule(audit=False),
    ("POST", "/api/auth/login"): Rule(audit=False),
    ("POST", "/api/auth/logout"): Rule(audit=False),
    ("GET", "/api/auth/me"): AUTHENTICATED,
    ("GET", "/api/auth/users"): ADMIN,
    ("POST", "/api/auth/users"): ADMIN,
    ("GET", "/api/audit"): ADMIN,
    # field reports: scoping by commune / owner happens inside the queries (layers.reports.store)
    ("POST", "/api/reports"): Rule(max_body="reports", audit_action="report_submit"),
    ("GET", "/api/reports"): roles(*REPORT_READERS),
    ("GET", "/api/reports/map"): PUBLIC,
    ("GET", "/api/reports/mine"): AUTHENTICATED,
    ("GET", "/api/reports/stats"): roles(*REPORT_READERS),
    ("POST", "/api/reports/overdue/check"): roles("operator", "leader"),
    ("POST", "/api/reports/sync"): ADMIN,
    ("GET", "/api/reports/{code}"): roles(*REPORT_READERS, "citizen"),
    ("GET", "/api/reports/{code}/photos/{photo_id}"): roles(*REPORT_READERS, "citizen"),
    ("POST", "/api/reports/{code}/assign"): roles(*REPORT_WORKERS),
    ("POST", "/api/reports/{code}/start"): roles(*REPORT_WORKERS),
    ("POST", "/api/reports/{code}/resolve"): roles(*REPORT_WORKERS, max_body="photo"),
    ("POST", "/api/reports/{code}/reject"): roles(*REPORT_WORKERS),
    ("POST", "/api/reports/{code}/rating"): roles("citizen"),
    # OGC API - Tiles and MapLibre styles (issue 22): metadata of readable layers
    ("GET", "/ogc/tileMatrixSets"): PUBLIC,
    ("GET", "/ogc/tileMatrixSets/{tms_id}"): PUBLIC,
    ("GET", "/ogc/collections/{collection_id}/tiles"): layer_read("collection_id"),
    ("GET", "/ogc/collections/{collection_id}/tiles/{tms_id}"): layer_read("collection_id"),
    ("GET", "/styles/map.json"): PUBLIC,
    ("GET", "/styles/{slug}.json"): layer_read("slug"),
    # security and reliability (issue 14)
    ("GET", "/api/jobs"): roles("operator", "leader", "gis_staff"),
    # rasters and flood exposure (issue 20); ZonalBody/FloodBody.layer_slugs() name the same
    ("GET", "/tiles/{slug}/terrain/{z}/{x}/{y}.png"): layer_read("slug"),
    ("GET", "/api/rasters"): PUBLIC,
    ("GET", "/api/rasters/{slug}"): layer_read("slug"),
    ("GET", "/api/rasters/{slug}/point"): layer_read("slug"),
    ("POST", "/api/rasters/{slug}/profile"): layer_read("slug"),
    ("POST", "/api/query/zonal"): QUERY,
    ("POST", "/api/query/flood-exposure"): QUERY,
    # incident command (issue 21): operators open and run incidents, leaders direct; commune
    # staff see their communes' incidents and agency staff their agency's tasks (scoped inside
    # the queries by analytics.incident_ops.scope_of)
    ("POST", "/api/incidents"): roles("operator", "leader"),
    ("GET", "/api/incidents"): roles(*INCIDENT_READERS),
    ("GET", "/api/incidents/stream"): roles(*INCIDENT_READERS, "agency_staff"),
    ("GET", "/api/incidents/board"): roles("leader", "operator", "planner"),
    ("GET", "/api/incidents/{incident_id}"): roles(*INCIDENT_READERS),
    ("PATCH", "/api/incidents/{incident_id}"): roles("operator", "leader"),
    ("GET", "/api/incidents/{incident_id}/suggested-links"): roles("operator", "leader"),
    ("POST", "/api/incidents/{incident_id}/links"): roles("operator", "leader"),
    ("POST", "/api/incidents/{incident_id}/transition"): roles("operator", "leader"),
    ("POST", "/api/incidents/{incident_id}/directives"): roles("leader"),
    ("GET", "/api/incidents/{incident_id}/tasks"): roles(*INCIDENT_READERS),
    ("GET", "/api/incidents/{incident_id}/around"): roles(*INCIDENT_READERS),
    ("GET", "/api/incidents/{incident_id}/report.html"): roles(*INCIDENT_READERS, audit=True),
    ("GET", "/api/incidents/{incident_id}/report.pdf"): roles(*INCIDENT_READERS, audit=True),
    ("GET", "/api/tasks"): roles(*TASK_WORKERS, "leader"),
    ("GET", "/api/tasks/{task_id}"): roles(*TASK_WORKERS, "leader"),
    ("POST", "/api/tasks/{task_id}/ack"): roles(*TASK_WORKERS),
    ("POST", "/api/tasks/{task_id}/note"): roles(*TASK_WORKERS, "leader", max_body="photo"),
    ("POST", "/api/tasks/{task_id}/complete"): roles(*TASK_WORKERS, "leader"),
    ("GET", "/api/tasks/{task_id}/notes/{note_id}/photo"): roles(*TASK_WORKERS, "leader"),
    ("GET", "/api/sops"): roles("operator", "leader", "planner"),
    ("PUT", "/api/sops"): ADMIN,
    # report workflow steps (issue 17); the role per step is checked by analytics.report_workflow
    ("GET", "/api/reports/form"): PUBLIC,
    ("POST", "/api/reports/{code}/accept"): roles(*REPORT_WORKERS),
    ("POST", "/api/reports/{code}/request-info"): roles(*REPORT_WORKERS),
    ("POST", "/api/reports/{code}/info"): roles("citizen", max_body="photo"),
    ("POST", "/api/reports/{code}/reopen"): roles(*REPORT_WORKERS),
    # map search, saved views, briefing export (issue 18): each search result and each exported
    # layer is checked against info_allowed / the report scope inside the handler
    ("GET", "/api/search"): PUBLIC,
    ("GET", "/api/views"): AUTHENTICATED,
    ("POST", "/api/views"): AUTHENTICATED,
    ("PATCH", "/api/views/{view_id}"): AUTHENTICATED,
    ("DELETE", "/api/views/{view_id}"): AUTHENTICATED,
    ("GET", "/api/export/briefing"): Rule(audit=True, audit_action="export_briefing"),
    # QGIS projects and personal API tokens (issue 22): the project handler checks the layers
    # it was asked for (authorize_layers); the token endpoint checks the password like sign-in
    ("GET", "/api/qgis/project.qgz"): Rule(
        layers_in_body=True, audit=True, audit_action="qgis_project"
    ),
    ("POST", "/api/auth/api-token"): Rule(audit=False),
    (
        "GET",
        "/ogc/collections/{collection_id}/tiles/{tms_id}/{tile_matrix}/{tile_row}/{tile_col}",
    ): layer_read("collection_id"),
}


def max_body_bytes(rule: Rule, settings: Settings) -> int:
    """The request body limit of a route."""
    extra = 1024 * 1024  # form fields and multipart framing
    if rule.max_body == "reports":
        return settings.report_max_photos * settings.report_photo_max_bytes + extra
    if rule.max_body == "photo":
        return settings.report_photo_max_bytes + extra
    if rule.max_body == "imports":
        return settings.ingest_max_upload_bytes
    return settings.max_request_bytes


# --- startup checks and tokens ------------------------------------------------------------


class InsecureConfigurationError(RuntimeError):
    """The settings are unsafe for production; the API refuses to start."""


def check_settings(settings: Settings) -> None:
    """Refuse a published secret key anywhere, and a short one in production.

    Without IOC_SECRET_KEY the key every replica shares is settled by the lifespan
    (`layers.auth.signing.ensure_shared_signing_key`): kept in the database, copied into the
    state directory.
    """
    if settings.secret_key is None:
        return
    secret = settings.secret_key.get_secret_value()
    if secret in PUBLIC_SECRETS:
        raise InsecureConfigurationError(
            "IOC_SECRET_KEY is the old published development secret; refusing to start. "
            "Unset it (a random key is then kept in the state directory) or set a long random "
            "value (e.g. `openssl rand -hex 32`)."
        )
    if settings.environment == "production" and len(secret) < 32:
        raise InsecureConfigurationError(
            "IOC_SECRET_KEY must be at least 32 characters in production."
        )


def issue_token(
    settings: Settings,
    user: User,
    now: datetime | None = None,
    ttl_s: int | None = None,
    kind: Literal["session", "api"] = "session",
) -> str:
    """A signed JWT naming the user and role, valid for `ttl_s` (default settings.token_ttl_s).

    Personal API tokens (`kind="api"`, for QGIS and scripts) live longer; like every token
    they die when the password changes (the credential stamp).
    """
    now = now or datetime.now(UTC)
    claims = {
        "iss": JWT_ISSUER,
        "sub": str(user.id),
        "name": user.username,
        "role": user.role,
        "cst": user.credential_stamp,
        "typ": kind,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl_s or settings.token_ttl_s)).timestamp()),
    }
    return jwt.encode(claims, settings.signing_key(), algorithm=JWT_ALGORITHM)


def decode_token(settings: Settings, token: str) -> tuple[int, str]:
    """The user id and credential stamp of a valid token; AuthenticationError otherwise."""
    try:
        claims = jwt.decode(
            token,
            settings.signing_key(),
            algorithms=[JWT_ALGORITHM],
            issuer=JWT_ISSUER,
            options={"require": ["exp", "iat", "sub", "iss"]},
        )
        return int(claims["sub"]), str(claims.get("cst", ""))
    except (jwt.PyJWTError, ValueError, KeyError) as exc:
        raise AuthenticationError(
            "invalid or expired token", i18n="err.security.invalid_or_expired_token"
        ) from exc


# --- password checks (sign-in forms, the token endpoints and HTTP Basic) -------------------


def check_password(
    engine: Engine,
    settings: Settings,
    username: str,
    password: str,
    *,
    ip: str,
    user_agent: str,
    path: str,
    now: datetime,
    how: str,
    method: str = "POST",
) -> User:
    """THE password check: every way of signing in with a password goes through it, audited.

    Rate-limited per address (one address guessing many names) and, after a few failures,
    per (account, address) pair with a doubling wait: guesses from one address never keep
    the account's owner out from another (no lockout anyone can trigger). Raises
    RateLimitedError (with retry_after_s) or AuthenticationError.
    """
    rate = settings.login_rate_per_minute / 60
    pair = f"login:pair:{username[:64]}:{ip}"

    def attempt(conn: Connection, who: str, role: str, action: str, status: int) -> None:
        audit.record(
            conn,
            who,
            role,
            action,
            method=method,
            path=path,
            status=status,
            ip=ip,
            user_agent=user_agent,
            details={"via": how},
        )

    with engine.begin() as conn:
        by_ip = ratelimit.take(conn, f"login:ip:{ip}", settings.login_rate_burst, rate, now)
        wait = ratelimit.failure_wait_s(
            conn,
            pair,
            now,
            settings.login_free_failures,
            settings.login_backoff_base_s,
            settings.login_backoff_max_s,
        )
        throttled = not by_ip or wait > 0
        if throttled:
            attempt(conn, username[:64], "anonymous", "login_throttled", 429)
    # Raised after the commit, so the throttling itself is recorded.
    if throttled:
        retry = wait if wait > 0 else 60
        raise RateLimitedError(
            f"too many sign-in attempts; try again in {retry} s",
            retry_after_s=retry,
            i18n="err.auth.too_many_sign_in_attempts",
            retry=retry,
        )
    try:
        with engine.begin() as conn:
            user = user_store.authenticate(conn, username, password, now)
            ratelimit.clear(conn, pair)
            attempt(conn, user.username, user.role, "login", 200)
        return user
    except AuthenticationError:
        with engine.begin() as conn:
            ratelimit.record_failure(conn, pair, now)
            attempt(conn, username[:64], "anonymous", "login_failed", 401)
        raise


# --- dependencies for handlers ------------------------------------------------------------


# Declared so /docs offers "Authorize"; the middleware has already resolved the token.
OAUTH2_SCHEME = OAuth2PasswordBearer(tokenUrl="/api/auth/token", auto_error=False)


def current_user(
    request: Request, _token: Annotated[str | None, Depends(OAUTH2_SCHEME)] = None
) -> User | None:
    """The authenticated caller, or None for anonymous requests."""
    user = request.scope.get("state", {}).get(USER_STATE_KEY)
    return user if isinstance(user, User) else None


def required_user(user: Annotated[User | None, Depends(current_user)]) -> User:
    """The authenticated caller; AuthenticationError when anonymous."""
    if user is None:
        raise AuthenticationError("sign in first", i18n="err.security.sign_in_first")
    return user


def client_ip(request: Request) -> str:
    """The caller's address as the server saw it."""
    return request.client.host if request.client else ""


def get_now() -> datetime:
    """The current time; tests override this dependency to inject a clock."""
    return datetime.now(UTC)


NowDep = Annotated[datetime, Depends(get_now)]
CurrentUser = Annotated[User | None, Depends(current_user)]
RequiredUser = Annotated[User, Depends(required_user)]

# --- layer access: the one decision ------------------------------------------------------


def layer_allowed(user: User | None, visibility: Mapping[str, Any]) -> bool:
    """THE layer-permission decision: the layer's catalogue visibility (public, signed_in,
    roles) against the caller."""
    access = visibility.get("access", "public")
    if access == "public":
        return True
    if user is None:
        return False
    if access == "signed_in" or user.role == "admin":
        return True
    return user.role in visibility.get("roles", ())


def info_allowed(user: User | None, info: Any) -> bool:
    """layer_allowed for a catalogue entry (anything with a `visibility` model or mapping)."""
    vis = info.visibility
    return layer_allowed(user, vis if isinstance(vis, Mapping) else vis.model_dump())


class LayerFlags:
    """Each layer's catalogue visibility, cached for a few seconds per process so tile bursts
    do not each pay a catalog query (one per app, on app.state)."""

    def __init__(self) -> None:
        self._flags: dict[str, tuple[dict[str, Any], float]] = {}
        self._lock = threading.Lock()

    def visibility(self, engine: Engine | None, slugs: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The visibility of each of `slugs` (admin-only for all when there is no database)."""
        if engine is None:
            return {s: ADMIN_ONLY_VISIBILITY for s in slugs}
        now = time.monotonic()
        with self._lock:
            stale = [s for s in slugs if self._flags.get(s, (PUBLIC_VISIBILITY, 0.0))[1] <= now]
        if stale:
            try:
                found = _layer_visibility(engine, stale)
            except DATABASE_AWAY as exc:
                # Database away: known entries (even expired) still decide, so cached public
                # tiles are served; an unknown layer cannot be judged.
                with self._lock:
                    if all(s in self._flags for s in slugs):
                        return {s: self._flags[s][0] for s in slugs}
                raise UnavailableError(
                    "the database is unreachable; retry shortly",
                    i18n="err.security.database_unreachable_retry_shortly",
                ) from exc
            with self._lock:
                if len(self._flags) > 10_000:  # arbitrary slugs must not grow it
                    self._flags.clear()
                for slug in stale:
                    # an unknown slug is public here: its handler answers 404
                    self._flags[slug] = (
                        found.get(slug, PUBLIC_VISIBILITY),
                        now + SENSITIVITY_TTL_S,
                    )
        with self._lock:
            return {s: self._flags.get(s, (ADMIN_ONLY_VISIBILITY, 0.0))[0] for s in slugs}


def readable(user: User | None, infos: Sequence[Any]) -> list[Any]:
    """The catalogue entries this caller may read: the metadata of a restricted layer is not
    listed to those who may not read it."""
    return [i for i in infos if info_allowed(user, i)]


def _valid_slugs(slugs: Sequence[str], param: str) -> list[str]:
    """The distinct slugs, in order; InvalidInputError naming `param` for a malformed one."""
    out: list[str] = []
    for slug in slugs:
        if not SLUG_RE.match(slug):
            shown = slug[:64].encode("unicode_escape").decode("ascii")
            raise InvalidInputError(
                f"{param}: '{shown}' is not a layer slug",
                param=param,
                i18n="err.security.not_layer_slug",
                shown=shown,
            )
        if slug not in out:
            out.append(slug)
    return out


def _decide(
    flags: LayerFlags,
    engine: Engine | None,
    call: _Call | None,
    user: User | None,
    slugs: list[str],
) -> None:
    """Record the layers in the audit entry, then refuse the first one the caller may not read."""
    if call is not None:
        call.details["layers"] = slugs
        call.layers_checked = True
    visibility = flags.visibility(engine, slugs)
    for slug in slugs:
        if not layer_allowed(user, visibility[slug]):
            if call is not None:
                call.details["sensitive_layer"] = slug
            if user is None:
                raise AuthenticationError(
                    f"layer '{slug}' is restricted: sign in",
                    layer=slug,
                    i18n="err.security.layer_restricted_sign_in",
                    slug=slug,
                )
            raise PermissionDeniedError(
                f"layer '{slug}' is restricted for role '{user.role}'",
                layer=slug,
                i18n="err.security.layer_restricted_for_role",
                slug=slug,
                role=user.role,
            )


def authorize_layers(request: Request, slugs: Sequence[str], param: str = "layer") -> None:
    """Check (and audit) the layers a handler's validated request names, before it reads them.

    Raises InvalidInputError for a malformed slug, AuthenticationError / PermissionDeniedError
    when the caller may not read one of them.
    """
    state = request.scope.get("state", {})
    call = state.get(CALL_STATE_KEY)
    user = state.get(USER_STATE_KEY)
    _decide(
        _layer_flags(request.app),
        getattr(request.app.state, "engine", None),
        call if isinstance(call, _Call) else None,
        user if isinstance(user, User) else None,
        _valid_slugs(slugs, param),
    )


def _layer_flags(app: Any) -> LayerFlags:
    flags = getattr(app.state, "layer_flags", None)
    if not isinstance(flags, LayerFlags):
        flags = app.state.layer_flags = LayerFlags()
    return flags


# --- route matching -----------------------------------------------------------------------


@dataclass(frozen=True)
class RouteEntry:
    """One route of the app as the policy sees it."""

    methods: frozenset[str] | None
    regex: re.Pattern[str]
    template: str


def app_routes(app: FastAPI) -> list[RouteEntry]:
    """Every route of the app in matching order (mounts have methods None)."""
    out = []
    for ctx in iter_route_contexts(app.routes):
        regex = getattr(ctx, "path_regex", None)
        template = ctx.path_format
        if regex is None or template is None:
            continue
        methods = ctx.methods
        out.append(RouteEntry(frozenset(methods) - {"HEAD"} if methods else None, regex, template))
    return out


def route_keys(app: FastAPI) -> list[tuple[str, str]]:
    """(method, template) of every route; what POLICY must cover (mounts count as GET)."""
    keys = []
    for entry in app_routes(app):
        for method in sorted(entry.methods or {"GET"}):
            keys.append((method, entry.template))
    return keys


def match_route(
    entries: list[RouteEntry], method: str, path: str
) -> tuple[str, dict[str, str]] | None:
    """(template, path params) of the route that will handle the request, or None."""
    lookup = "GET" if method == "HEAD" else method
    for entry in entries:
        m = entry.regex.match(path)
        if m and (entry.methods is None or lookup in entry.methods):
            return entry.template, m.groupdict()
    return None


# --- security headers ---------------------------------------------------------------------

# deck.gl and maplibre need blob: workers and data:/blob: images; nothing else leaves 'self'.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
    "worker-src 'self' blob:; child-src 'self' blob:; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# Swagger UI and ReDoc are served by the app (geo_api.docs) and start with an inline script.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; "
    "connect-src 'self'; worker-src 'self' blob:; object-src 'none'; base-uri 'self'; "
    "frame-ancestors 'none'"
)
DOCS_PATHS = frozenset({"/docs", "/redoc", "/docs/oauth2-redirect"})


def security_headers(path: str, settings: Settings) -> list[tuple[bytes, bytes]]:
    """Headers added to every response."""
    headers = [
        (b"content-security-policy", (DOCS_CSP if path in DOCS_PATHS else CSP).encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"strict-origin-when-cross-origin"),
        (b"x-frame-options", b"DENY"),
        (b"cross-origin-opener-policy", b"same-origin"),
        (b"permissions-policy", b"camera=(), microphone=(), geolocation=(self)"),
    ]
    if settings.environment == "production":
        headers.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
    return headers


# --- the middleware -----------------------------------------------------------------------


def _error(status: int, code: str, detail: str) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    body = orjson.dumps({"status": status, "code": code, "detail": detail, "description": detail})
    headers = [(b"content-type", b"application/json")]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    return status, body, headers


@dataclass
class _Call:
    """What the middleware learnt about one request (for the decision and the audit)."""

    method: str
    path: str
    template: str | None
    params: dict[str, str]
    rule: Rule | None
    user: User | None = None
    via_cookie: bool = False
    status: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
    layers_checked: bool = False


class SecurityMiddleware:
    """Pure ASGI middleware applying POLICY, size limits, headers and the audit trail."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self._routes: list[RouteEntry] | None = None
        self._users: dict[str, tuple[User | None, float]] = {}
        # HTTP Basic passwords verified lately: keyed by an HMAC under a per-process random key
        # (no password, nor a plain hash of one, is kept), valid settings.basic_auth_verify_s.
        self._verified: dict[str, tuple[int, str, float]] = {}
        self._basic_key = secrets.token_bytes(32)

    async def _user(self, engine: Engine, token: str) -> User | None:
        """The active user behind a token; lookups are reused for settings.auth_cache_s so a
        signed-in map's tile bursts do not each pay a database round trip."""
        ttl = self.settings.auth_cache_s
        now = time.monotonic()
        hit = self._users.get(token)
        if hit is not None and hit[1] > now:
            return hit[0]
        user = await anyio.to_thread.run_sync(_resolve_user, engine, self.settings, token)
        if ttl > 0:
            if len(self._users) > 10_000:
                self._users.clear()
            self._users[token] = (user, now + ttl)
        return user

    async def _basic_user(self, engine: Engine, scope: Scope, creds: Credentials) -> User:
        """The user behind HTTP Basic credentials (QGIS's Basic auth config, curl -u).

        QGIS sends the password with every request (each tile too), so a verified password is
        trusted for settings.basic_auth_verify_s before it is hashed and rate-limited again;
        the account itself is re-read like a token's, so a disabled account or a changed
        password stops working within settings.auth_cache_s. Raises _Refused (401 or 429).
        """
        if not creds.username or not creds.password:
            raise _Refused(
                _basic_refused(401, "invalid_credentials", "malformed Basic credentials")
            )
        now = time.monotonic()
        key = hmac.new(
            self._basic_key, f"{creds.username}\0{creds.password}".encode(), hashlib.sha256
        ).hexdigest()
        hit = self._verified.get(key)
        if hit is not None and hit[2] > now:
            user_id, stamp, _ = hit
            cached = self._users.get("basic:" + key)
            if cached is not None and cached[1] > now:
                user = cached[0]
            else:
                user = await anyio.to_thread.run_sync(_user_by_id, engine, user_id, stamp)
                self._users["basic:" + key] = (user, now + self.settings.auth_cache_s)
            if user is not None:
                return user
            self._verified.pop(key, None)
        client = scope.get("client")
        headers = dict(scope.get("headers", []))
        try:
            user = await anyio.to_thread.run_sync(
                lambda: check_password(
                    engine,
                    self.settings,
                    creds.username,
                    creds.password,
                    ip=client[0] if client else "",
                    user_agent=headers.get(b"user-agent", b"").decode("latin-1")[:200],
                    path=scope["path"],
                    now=datetime.now(UTC),
                    how="basic",
                    method=scope["method"],
                )
            )
        except RateLimitedError as exc:
            retry = int(exc.context.get("retry_after_s", 60))
            status, body, hdrs = _basic_refused(429, exc.code, exc.detail)
            raise _Refused((status, body, [*hdrs, (b"retry-after", str(retry).encode())])) from exc
        except AuthenticationError as exc:
            raise _Refused(_basic_refused(401, "invalid_credentials", exc.detail)) from exc
        if len(self._verified) > 10_000:
            self._verified.clear()
        self._verified[key] = (
            user.id,
            user.credential_stamp,
            now + self.settings.basic_auth_verify_s,
        )
        self._users["basic:" + key] = (user, now + self.settings.auth_cache_s)
        return user

    def _entries(self, scope: Scope) -> list[RouteEntry]:
        if self._routes is None:
            self._routes = app_routes(scope["app"])
        return self._routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        path = scope["path"]
        headers_out = security_headers(path, self.settings)

        dropped = False

        async def send_with_headers(message: Message) -> None:
            nonlocal dropped
            if dropped:
                return
            if message["type"] == "http.response.start":
                status = int(message["status"])
                if (
                    status < 400
                    and rule is not None
                    and rule.layers_in_body
                    and not (call.layers_checked)
                ):
                    # Fail closed: the handler answered without checking its body's layers.
                    log.error("%s %s answered without authorize_layers", method, template)
                    dropped = True
                    await _respond(
                        send,
                        call,
                        _error(500, "internal", _say(scope, "err.security.access_check")),
                    )
                    return
                call.status = status
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + headers_out
            await send(message)

        found = match_route(self._entries(scope), method, path) if method != "OPTIONS" else None
        template, params = found if found else (None, {})
        rule = POLICY.get((("GET" if method == "HEAD" else method), template)) if template else None
        call = _Call(method, path, template, params, rule)
        if template is None:
            # Unknown path or method (404/405) or a CORS preflight: nothing to protect.
            await self.app(scope, receive, send_with_headers)
            return
        engine: Engine | None = getattr(scope["app"].state, "engine", None)
        creds = _credentials(scope, self.settings)
        call.via_cookie = creds is not None and creds.ambient
        scope.setdefault("state", {})[USER_STATE_KEY] = None
        scope["state"][CALL_STATE_KEY] = call
        enforce = ENFORCE_ALL or template.startswith(OWN_PREFIXES)
        try:
            bad = _malformed_params(scope, call.params)
            if bad is not None:
                raise _Refused(_error(400, "invalid_input", _say(scope, bad[0], **bad[1])))
            try:
                if creds is not None and engine is not None:
                    if creds.kind == "basic":
                        call.user = await self._basic_user(engine, scope, creds)
                    elif creds.token:
                        call.user = await self._user(engine, creds.token)
                scope["state"][USER_STATE_KEY] = call.user
                if enforce:
                    receive = await self._check(scope, receive, call, engine)
            except DATABASE_AWAY as exc:
                log.warning("database away during the access check: %s", type(exc).__name__)
                raise _Refused(unavailable(self.settings, _lang(scope))) from exc
        except _Refused as refused:
            await _respond(send_with_headers, call, refused.response)
        else:
            try:
                await self.app(scope, receive, send_with_headers)
            except BaseException as exc:
                # A streamed (chunked) body ran past its limit while the app was reading it.
                if not _too_large(exc) or call.status is not None:
                    raise
                limit = max_body_bytes(rule, self.settings) if rule else 0
                await _respond(
                    send_with_headers,
                    call,
                    _error(
                        413,
                        "payload_too_large",
                        _say(scope, "err.security.body_limit", limit=limit),
                    ),
                )
        finally:
            if engine is not None and _audited(call):
                try:
                    await anyio.to_thread.run_sync(_write_audit, engine, scope, call)
                except Exception:  # the response is gone already; make the loss loud
                    log.exception("audit entry lost: %s %s", call.method, call.path)

    async def _check(
        self, scope: Scope, receive: Receive, call: _Call, engine: Engine | None
    ) -> Receive:
        """Apply the policy; returns the receive callable the app must use (body replayed)."""
        rule = call.rule
        if rule is None:
            if call.user is not None and call.user.role == "admin":
                return receive
            raise _Refused(
                _error(
                    401 if call.user is None else 403,
                    "forbidden",
                    _say(scope, "err.security.no_policy", method=call.method, route=call.template),
                )
            )
        if not rule.allows(call.user):
            raise _Refused(_denied(call.user, lang=_lang(scope)))
        if call.via_cookie and call.method not in SAFE_METHODS and _cross_origin(scope):
            # SameSite=strict already stops this in current browsers; this guards older ones.
            raise _Refused(_error(403, "forbidden", _say(scope, "err.security.cross_origin")))
        limit = max_body_bytes(rule, self.settings)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            raise _Refused(
                _error(
                    413, "payload_too_large", _say(scope, "err.security.body_limit", limit=limit)
                )
            )
        receive = _limited(receive, limit)
        # A layer in the path is the very string the router hands the handler.
        slug = call.params.get(rule.layer_param) if rule.layer_param else None
        if slug is not None:
            try:
                slugs = _valid_slugs([slug], rule.layer_param or "layer")
                await anyio.to_thread.run_sync(
                    _decide, _layer_flags(scope["app"]), engine, call, call.user, slugs
                )
            except InvalidInputError as exc:
                raise _Refused(
                    _error(400, "invalid_input", domain_detail(_lang(scope), exc))
                ) from exc
            except (AuthenticationError, PermissionDeniedError) as exc:
                lang = _lang(scope)
                raise _Refused(_denied(call.user, domain_detail(lang, exc), lang)) from exc
        return receive


class _Refused(Exception):
    def __init__(self, response: tuple[int, bytes, list[tuple[bytes, bytes]]]) -> None:
        super().__init__(response[0])
        self.response = response


INT64_MAX = 2**63 - 1


def _lang(scope: Scope) -> str:
    """The caller's language ('vi' or 'en'), as geo_api.i18n reads it from the request."""
    return i18n.request_lang(ScopeRequest(scope))


def _say(scope: Scope, key: str, **values: Any) -> str:
    """A catalogue message in the caller's language."""
    return i18n.t(_lang(scope), key, **values)


def _malformed_params(scope: Scope, params: dict[str, str]) -> tuple[str, dict[str, Any]] | None:
    """Why a path or query parameter can never be valid (NUL bytes, ids beyond 64 bits).

    The answer is a catalogue key and its values.

    Only refusals, decided before any handler or SQL sees the values; what passes is
    validated again by the handler's own parsing.
    """
    from urllib.parse import parse_qsl

    for name, value in params.items():
        if "\x00" in value:
            return "err.security.path_nul", {"name": name}
        if value.isdigit() and len(value) > 18 and int(value) > INT64_MAX:
            return "err.security.path_int64", {"name": name, "value": value[:40]}
    query = scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if "\x00" in name or "\x00" in value:
                shown = name.replace("\x00", "\\x00")[:64]
                return "err.security.query_nul", {"name": shown}
    return None


def unavailable(
    settings: Settings, lang: str = "vi"
) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    """503 with Retry-After: the database is away or the server is saturated."""
    status, body, headers = _error(503, "unavailable", i18n.t(lang, "err.edge.database_away"))
    return status, body, [*headers, (b"retry-after", str(settings.retry_after_s).encode())]


def _denied(
    user: User | None, why: str = "", lang: str = "vi"
) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    if user is None:
        return _error(401, "unauthenticated", why or i18n.t(lang, "err.security.sign_in_to_use"))
    return _error(
        403, "forbidden", why or i18n.t(lang, "err.security.role_may_not", role=user.role)
    )


@dataclass(frozen=True)
class Credentials:
    """What a request authenticates with: a token (bearer, API key header, cookie) or a
    username and password (HTTP Basic)."""

    kind: Literal["bearer", "api_key", "cookie", "basic"]
    token: str = ""
    username: str = ""
    password: str = ""

    @property
    def ambient(self) -> bool:
        """True for credentials a browser attaches by itself (cookie, remembered Basic), which
        a cross-site request could ride on."""
        return self.kind in ("cookie", "basic")


# Headers QGIS's authentication manager can set: `X-Esri-Authorization: Bearer T` (its
# EsriToken method, in 3.22) or any header of an APIHeader config (QGIS >= 3.26), X-API-Key.
API_KEY_HEADERS = (b"x-api-key", b"x-esri-authorization")


def _basic(value: bytes) -> Credentials:
    """username:password of a Basic header; empty fields when it cannot be decoded."""
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return Credentials("basic")
    username, _, password = decoded.partition(":")
    return Credentials("basic", username=username[:64], password=password[:1024])


def _credentials(scope: Scope, settings: Settings) -> Credentials | None:
    """The request's credentials: the Authorization header wins, then an API key header, then
    the web map's session cookie."""
    cookie_prefix = settings.session_cookie_name.encode() + b"="
    api_key: Credentials | None = None
    from_cookie: Credentials | None = None
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, rest = value.strip().partition(b" ")
            if scheme.lower() == b"bearer":
                return Credentials("bearer", token=rest.decode("latin-1").strip())
            if scheme.lower() == b"basic":
                return _basic(rest)
        elif name in API_KEY_HEADERS and api_key is None:
            raw = value.strip()
            if raw[:7].lower() == b"bearer ":
                raw = raw[7:].strip()
            api_key = Credentials("api_key", token=raw.decode("latin-1"))
        elif name == b"cookie":
            for part in value.split(b";"):
                part = part.strip()
                if part.startswith(cookie_prefix):
                    token = part[len(cookie_prefix) :].decode("latin-1")
                    from_cookie = Credentials("cookie", token=token)
    return api_key or from_cookie


def _cross_origin(scope: Scope) -> bool:
    """True when the browser says the request comes from another site or origin."""
    headers: dict[bytes, bytes] = dict(scope.get("headers", []))
    site = headers.get(b"sec-fetch-site")
    if site is not None:
        # Browsers that send Fetch Metadata say it directly (robust to proxies rewriting Host).
        return site not in (b"same-origin", b"none")
    origin = headers.get(b"origin")
    if origin is None or origin == b"null":
        return origin == b"null"
    host = headers.get(b"host", b"")
    return origin.split(b"://", 1)[-1] != host


def _user_by_id(engine: Engine, user_id: int, stamp: str) -> User | None:
    """The active user with this id whose credentials are still the ones verified."""
    with engine.connect() as conn:
        user = active_user(conn, user_id)
    if user is None or not secrets.compare_digest(user.credential_stamp, stamp):
        return None
    return user


def _basic_refused(
    status: int, code: str, detail: str
) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    """A refusal of HTTP Basic credentials, challenging for Basic (only then: a challenge on
    every 401 would make browsers prompt on the web map's own requests)."""
    status, body, headers = _error(status, code, detail)
    headers = [h for h in headers if h[0] != b"www-authenticate"]
    return (
        status,
        body,
        [*headers, (b"www-authenticate", b'Basic realm="IOC Map", charset="UTF-8"')],
    )


def _resolve_user(engine: Engine, settings: Settings, token: str) -> User | None:
    """The active user behind a token; None when the token is invalid (treated as anonymous)."""
    try:
        user_id, stamp = decode_token(settings, token)
    except AuthenticationError:
        return None
    with engine.connect() as conn:
        user = active_user(conn, user_id)
    # A token issued before the password changed no longer names the current credentials.
    if user is None or not secrets.compare_digest(user.credential_stamp, stamp):
        return None
    return user


PUBLIC_VISIBILITY: dict[str, Any] = {"access": "public", "roles": []}
ADMIN_ONLY_VISIBILITY: dict[str, Any] = {"access": "roles", "roles": ["admin"]}


def _layer_visibility(engine: Engine, slugs: list[str]) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        return layer_visibilities(conn, slugs)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyTooLarge(BaseException):
    """Raised while streaming a body past its limit (no Content-Length was sent).

    A BaseException, so the framework's body parsing (which turns any Exception into a 400)
    lets it through to the middleware, which answers 413.
    """


def _too_large(exc: BaseException) -> bool:
    if isinstance(exc, BodyTooLarge):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return any(_too_large(e) for e in exc.exceptions)
    return False


async def _respond(
    send: Send, call: _Call, response: tuple[int, bytes, list[tuple[bytes, bytes]]]
) -> None:
    status, body, hdrs = response
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": body})
    call.status = status


def _limited(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge(limit)
        return message

    return wrapped


def _audited(call: _Call) -> bool:
    if call.rule is not None and call.rule.audit is not None:
        return call.rule.audit
    return call.method not in ("GET", "HEAD", "OPTIONS")


def _write_audit(engine: Engine, scope: Scope, call: _Call) -> None:
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
    client = scope.get("client")
    details: dict[str, Any] = {"params": call.params, **call.details}
    if scope.get("query_string"):
        details["query"] = scope["query_string"].decode("latin-1")[:1000]
    if "x-forwarded-for" in headers:
        details["forwarded_for"] = headers["x-forwarded-for"][:200]
    action = (call.rule.audit_action if call.rule else None) or f"{call.method} {call.template}"
    with engine.begin() as conn:
        audit.record(
            conn,
            call.user.username if call.user else "anonymous",
            call.user.role if call.user else "anonymous",
            action,
            method=call.method,
            path=call.path,
            status=call.status,
            ip=client[0] if client else "",
            user_agent=headers.get("user-agent", ""),
            details=details,
        )


def install(app: FastAPI, settings: Settings) -> None:
    """Install the security middleware (outermost, so it sees every request first)."""
    app.add_middleware(SecurityMiddleware, settings=settings)


def reset_rate_limits(engine: Engine) -> None:
    """Empty every token bucket (tests and operators after an incident)."""
    with engine.begin() as conn:
        ratelimit.reset_all(conn)
