"""Router for /api/auth: OAuth2 password flow (JWT), web-map session cookies, me, user admin."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine

from geo_api.deps import ConnDep, EngineDep, SettingsDep
from geo_api.security import (
    CurrentUser,
    NowDep,
    RequiredUser,
    check_password,
    client_ip,
    issue_token,
)
from layers.auth import audit, users
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
    """Check credentials through the one rate-limited, audited password check."""
    return check_password(
        engine,
        settings,
        username,
        password,
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent", ""),
        path=request.url.path,
        now=now,
        how=how,
    )


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


class ApiTokenBody(BaseModel):
    """Credentials, and how long the personal API token should live."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    days: int | None = Field(default=None, ge=1, le=3650)


@router.post("/api-token", summary="A personal API token (QGIS, GDAL, scripts)")
def api_token(
    body: ApiTokenBody,
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    now: NowDep,
) -> dict[str, Any]:
    """A long-lived token for tools that cannot sign in: send it as `X-API-Key: T`,
    `Authorization: Bearer T` or (QGIS's EsriToken config) `X-Esri-Authorization: Bearer T`.

    It dies when it expires or when the password changes; asking needs the password again.
    """
    user = _login(engine, settings, request, body.username, body.password, now, "api_token")
    days = min(body.days or settings.api_token_ttl_days, settings.api_token_ttl_days)
    ttl_s = days * 86400
    return {
        "token": issue_token(settings, user, now, ttl_s=ttl_s, kind="api"),
        "token_type": "api_key",
        "expires_in": ttl_s,
        "expires_at": (now + timedelta(seconds=ttl_s)).isoformat(),
        "headers": ["X-API-Key", "Authorization: Bearer", "X-Esri-Authorization: Bearer"],
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
