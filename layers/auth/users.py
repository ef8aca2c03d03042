"""Users and roles: argon2 password hashes, creation, authentication and the demo accounts."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, get_args

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from layers.errors import AuthenticationError, ConflictError, InvalidInputError, NotFoundError
from layers.models.core import admin_unit
from layers.models.reports import app_user

Role = Literal[
    "admin",
    "leader",
    "planner",
    "operator",
    "gis_staff",
    "commune_staff",
    "citizen",
    "agency_staff",
]
ROLES: tuple[Role, ...] = get_args(Role)

# argon2id with the OWASP minimum (19 MiB, t=2, p=1): the library default (64 MiB, p=4) costs
# over a second per sign-in on a busy 2-core server. Older hashes are upgraded at sign-in.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Verified against when the user does not exist, so a wrong name costs as much as a wrong password.
_DUMMY_HASH = _HASHER.hash("not-a-real-password")
MIN_PASSWORD_LENGTH = 8


@dataclass(frozen=True)
class User:
    """An account as the API sees it (never carries the hash)."""

    id: int
    username: str
    role: Role
    admin_units: tuple[str, ...] = field(default_factory=tuple)
    active: bool = True
    # A digest of the current password hash: tokens carry it, so changing a password (or
    # upgrading its hash) revokes every token issued before, with no extra table.
    credential_stamp: str = ""

    def public(self) -> dict[str, Any]:
        """JSON-safe description for /api/auth/me."""
        return {
            "id": self.id,
            "username": self.username,
            "role": self.role,
            "admin_units": list(self.admin_units),
            "active": self.active,
        }


def hash_password(password: str) -> str:
    """argon2id hash of a password."""
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when `password` matches the stored argon2 hash."""
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def check_role(role: str) -> Role:
    """Return `role` if it is known, else InvalidInputError listing the roles."""
    if role not in ROLES:
        raise InvalidInputError(
            f"unknown role '{role}'; roles: {', '.join(ROLES)}",
            role=role,
            i18n="err.users.unknown_role_roles",
            items=", ".join(ROLES),
        )
    return role


def credential_stamp(password_hash: str) -> str:
    """Short digest of a password hash that tokens carry (never the hash itself)."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def _user(row: Any) -> User:
    return User(
        id=int(row["id"]),
        username=row["username"],
        role=row["role"],
        admin_units=tuple(row["admin_units"] or ()),
        active=bool(row["active"]),
        credential_stamp=credential_stamp(row["password_hash"]),
    )


def _check_units(conn: Connection, role: Role, units: Sequence[str]) -> list[str]:
    units = sorted(set(units))
    if role == "agency_staff":
        # issue 21: the unit of an agency user is the ma_don_vi of one agency
        from layers.incidents.store import check_agency_codes

        return check_agency_codes(conn, units)
    if role == "commune_staff" and not units:
        raise InvalidInputError(
            "a commune_staff user needs at least one --unit (commune code)",
            i18n="err.users.commune_staff_user_needs_at",
        )
    if role != "commune_staff" and units:
        raise InvalidInputError(
            "only commune_staff users are bound to admin units",
            i18n="err.users.only_commune_staff_users_are",
        )
    if units:
        known = set(
            conn.execute(
                select(admin_unit.c.code).where(
                    admin_unit.c.code.in_(units), admin_unit.c.valid_to.is_(None)
                )
            ).scalars()
        )
        missing = [u for u in units if u not in known]
        if missing:
            raise InvalidInputError(
                f"unknown admin unit code(s): {', '.join(missing)}",
                i18n="err.users.unknown_admin_unit_code",
                items=", ".join(missing),
            )
    return units


def create_user(
    conn: Connection,
    username: str,
    password: str,
    role: str,
    admin_units: Sequence[str] = (),
) -> User:
    """Create an active user; ConflictError if the name is taken."""
    checked = check_role(role)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInputError(
            f"password must have at least {MIN_PASSWORD_LENGTH} characters",
            i18n="err.users.password_must_have_at_least",
            MIN_PASSWORD_LENGTH=MIN_PASSWORD_LENGTH,
        )
    units = _check_units(conn, checked, admin_units)
    stmt = (
        pg_insert(app_user)
        .values(
            username=username,
            password_hash=hash_password(password),
            role=checked,
            admin_units=units,
        )
        .on_conflict_do_nothing(index_elements=[app_user.c.username])
        .returning(app_user)
    )
    row = conn.execute(stmt).mappings().first()
    if row is None:
        raise ConflictError(
            f"user '{username}' already exists",
            username=username,
            i18n="err.users.user_already_exists",
        )
    return _user(row)


def get_user(conn: Connection, username: str) -> User:
    """One user by name, or NotFoundError."""
    row = conn.execute(select(app_user).where(app_user.c.username == username)).mappings().first()
    if row is None:
        raise NotFoundError(
            f"user '{username}' does not exist",
            username=username,
            i18n="err.users.user_does_not_exist",
        )
    return _user(row)


def active_user(conn: Connection, user_id: int) -> User | None:
    """The user with this id if it exists and is active (token holders are re-checked)."""
    row = (
        conn.execute(select(app_user).where(app_user.c.id == user_id, app_user.c.active))
        .mappings()
        .first()
    )
    return _user(row) if row is not None else None


def authenticate(conn: Connection, username: str, password: str, when: datetime) -> User:
    """The active user whose password matches, or AuthenticationError (same for every cause)."""
    row = conn.execute(select(app_user).where(app_user.c.username == username)).mappings().first()
    ok = verify_password(row["password_hash"] if row else _DUMMY_HASH, password)
    if row is None or not ok or not row["active"]:
        raise AuthenticationError(
            "wrong username or password", i18n="err.users.wrong_username_or_password"
        )
    if _HASHER.check_needs_rehash(row["password_hash"]):
        conn.execute(
            update(app_user)
            .where(app_user.c.id == row["id"])
            .values(password_hash=hash_password(password))
        )
    # Re-read after a possible rehash, so the token carries the stamp of the stored hash.
    fresh = (
        conn.execute(
            update(app_user)
            .where(app_user.c.id == row["id"])
            .values(last_login_at=when)
            .returning(app_user)
        )
        .mappings()
        .one()
    )
    return _user(fresh)


def set_password(conn: Connection, username: str, password: str) -> None:
    """Replace a user's password."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInputError(
            f"password must have at least {MIN_PASSWORD_LENGTH} characters",
            i18n="err.users.password_must_have_at_least",
            MIN_PASSWORD_LENGTH=MIN_PASSWORD_LENGTH,
        )
    done = conn.execute(
        update(app_user)
        .where(app_user.c.username == username)
        .values(password_hash=hash_password(password))
    ).rowcount
    if not done:
        raise NotFoundError(
            f"user '{username}' does not exist",
            username=username,
            i18n="err.users.user_does_not_exist",
        )


def set_active(conn: Connection, username: str, active: bool) -> None:
    """Enable or disable a user (disabled users' tokens stop working at once)."""
    done = conn.execute(
        update(app_user).where(app_user.c.username == username).values(active=active)
    ).rowcount
    if not done:
        raise NotFoundError(
            f"user '{username}' does not exist",
            username=username,
            i18n="err.users.user_does_not_exist",
        )


def list_users(conn: Connection) -> list[User]:
    """Every user, by name."""
    return [
        _user(r) for r in conn.execute(select(app_user).order_by(app_user.c.username)).mappings()
    ]


def demo_commune_code(conn: Connection) -> str | None:
    """The most populous commune: the demo commune_staff works there."""
    return conn.execute(
        select(admin_unit.c.code)
        .where(admin_unit.c.level == "commune", admin_unit.c.valid_to.is_(None))
        .order_by(admin_unit.c.population.desc().nulls_last(), admin_unit.c.code)
        .limit(1)
    ).scalar()


def seed_demo_users(conn: Connection) -> dict[str, str]:
    """Create one demo user per role (named demo_<role>); returns only NEW users' passwords.

    Idempotent: existing users keep their password. commune_staff is bound to the most
    populous commune, and is skipped while no admin units are loaded.
    """
    created: dict[str, str] = {}
    existing = set(conn.execute(select(app_user.c.username)).scalars())
    for role in ROLES:
        name = f"demo_{role}"
        if name in existing:
            continue
        units: list[str] = []
        if role == "commune_staff":
            code = demo_commune_code(conn)
            if code is None:
                continue
            units = [code]
        if role == "agency_staff":
            from layers.incidents.store import demo_agency_code

            agency = demo_agency_code(conn)  # the UBND of the demo commune
            if agency is None:
                continue
            units = [agency]
        password = secrets.token_urlsafe(12)
        create_user(conn, name, password, role, units)
        created[name] = password
    return created


def count_users(conn: Connection) -> int:
    """How many accounts exist."""
    return int(conn.execute(select(func.count()).select_from(app_user)).scalar_one())
