"""Router for /api/auth: OAuth2 password flow (JWT), web-map session cookies, me, user admin."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine

from geo_api.deps import ConnDep, EngineDep, SettingsDep
from geo_api.security import CurrentUser, NowDep, RequiredUser, client_ip, issue_token
from layers.auth import audit, ratelimit, users
from layers.errors import AuthenticationError, RateLimitedError
from layers.settings import Settings

router = APIRouter(prefix="/api/auth", tags=["auth"])


class LoginBody(BaseModel):
    """Credentials of the web map's sign-in form."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class NewUser(BaseModel):
    """An account created by an admin."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(pattern=r"^[A-Za-z0-9_.@-]{2,64}$")
    password: str = Field(min_length=users.MIN_PASSWORD_LENGTH, max_length=1024)
    role: users.Role
    admin_units: list[str] = Field(default_factory=list)


def _login(
    engine: Engine,
    settings: Settings,
    request: Request,
    username: str,
    password: str,
    now: Any,
    how: str,
) -> users.User:
    """Check credentials and audit every attempt.

    Rate-limited per address (one address guessing many names) and, after a few failures,
    per (account, address) pair with a doubling wait: guesses from one address never keep
    the account's owner out from another (no lockout anyone can trigger).
    """
    ip = client_ip(request)
    agent = request.headers.get("user-agent", "")
    rate = settings.login_rate_per_minute / 60
    pair = f"login:pair:{username[:64]}:{ip}"
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
            audit.record(
                conn,
                username[:64],
                "anonymous",
                "login_throttled",
                method="POST",
                path=request.url.path,
                status=429,
                ip=ip,
                user_agent=agent,
            )
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
            user = users.authenticate(conn, username, password, now)
            ratelimit.clear(conn, pair)
            audit.record(
                conn,
                user.username,
                user.role,
                "login",
                method="POST",
                path=request.url.path,
                status=200,
                ip=ip,
                user_agent=agent,
                details={"via": how},
            )
        return user
    except AuthenticationError:
        with engine.begin() as conn:
            ratelimit.record_failure(conn, pair, now)
            audit.record(
                conn,
                username[:64],
                "anonymous",
                "login_failed",
                method="POST",
                path=request.url.path,
                status=401,
                ip=ip,
                user_agent=agent,
                details={"via": how},
            )
        raise


@router.post("/token", summary="OAuth2 password flow: a bearer JWT")
def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    now: NowDep,
) -> dict[str, Any]:
    """Exchange username and password for an access token."""
    user = _login(engine, settings, request, form.username, form.password, now, "token")
    return {
        "access_token": issue_token(settings, user, now),
        "token_type": "bearer",
        "expires_in": settings.token_ttl_s,
        "user": user.public(),
    }


@router.post("/login", summary="Sign in the web map: sets an HttpOnly session cookie")
def login(
    body: LoginBody,
    request: Request,
    response: Response,
    engine: EngineDep,
    settings: SettingsDep,
    now: NowDep,
) -> dict[str, Any]:
    """Set a secure, HttpOnly, SameSite=strict session cookie carrying a JWT."""
    user = _login(engine, settings, request, body.username, body.password, now, "cookie")
    response.set_cookie(
        settings.session_cookie_name,
        issue_token(settings, user, now),
        max_age=settings.token_ttl_s,
        httponly=True,
        secure=settings.session_cookie_secure,
        samesite="strict",
        path="/",
    )
    return user.public()


@router.post("/logout", summary="Sign out: clears the session cookie")
def logout(
    request: Request,
    response: Response,
    engine: EngineDep,
    settings: SettingsDep,
    user: CurrentUser,
) -> dict[str, Any]:
    """Expire the session cookie."""
    response.delete_cookie(
        settings.session_cookie_name,
        path="/",
        httponly=True,
        secure=settings.session_cookie_secure,
        samesite="strict",
    )
    if user is not None:
        with engine.begin() as conn:
            audit.record(
                conn,
                user.username,
                user.role,
                "logout",
                method="POST",
                path=request.url.path,
                status=200,
                ip=client_ip(request),
                user_agent=request.headers.get("user-agent", ""),
            )
    return {"signed_out": True}


@router.get("/me", summary="The signed-in user")
def me(user: RequiredUser) -> dict[str, Any]:
    """Name, role and admin units of the caller."""
    return user.public()


@router.get("/users", summary="Every account (admin)")
def list_users(conn: ConnDep) -> list[dict[str, Any]]:
    """Accounts without their password hashes."""
    return [u.public() for u in users.list_users(conn)]


@router.post("/users", status_code=201, summary="Create an account (admin)")
def create_user(body: NewUser, conn: ConnDep) -> dict[str, Any]:
    """Create an active user with the given role (commune_staff need admin_units)."""
    return users.create_user(
        conn, body.username, body.password, body.role, body.admin_units
    ).public()
