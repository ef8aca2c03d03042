"""Users: argon2 hashes, authentication, roles and units, and the idempotent demo accounts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, select

from layers.auth import users
from layers.errors import AuthenticationError, ConflictError, InvalidInputError
from layers.models.reports import app_user

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def test_passwords_are_argon2_hashed_and_verified(engine: Engine) -> None:
    with engine.begin() as conn:
        users.create_user(conn, "u_hash", "correct horse battery", "planner")
        stored = conn.execute(
            select(app_user.c.password_hash).where(app_user.c.username == "u_hash")
        ).scalar_one()
        assert stored.startswith("$argon2id$") and "correct" not in stored
        user = users.authenticate(conn, "u_hash", "correct horse battery", NOW)
        assert user.role == "planner" and user.admin_units == ()
        with pytest.raises(AuthenticationError):
            users.authenticate(conn, "u_hash", "wrong password!", NOW)
        with pytest.raises(AuthenticationError):
            users.authenticate(conn, "nobody_here", "whatever123", NOW)


def test_disabled_users_cannot_sign_in(engine: Engine) -> None:
    with engine.begin() as conn:
        user = users.create_user(conn, "u_off", "a long password", "operator")
        users.set_active(conn, "u_off", False)
        with pytest.raises(AuthenticationError):
            users.authenticate(conn, "u_off", "a long password", NOW)
        assert users.active_user(conn, user.id) is None


def test_roles_units_and_duplicates_are_checked(seeded: Engine) -> None:
    with seeded.begin() as conn:
        code = users.demo_commune_code(conn)
        assert code
        with pytest.raises(InvalidInputError, match="role"):
            users.create_user(conn, "u_bad", "a long password", "superuser")
        with pytest.raises(InvalidInputError, match="unit"):
            users.create_user(conn, "u_cs", "a long password", "commune_staff")
        with pytest.raises(InvalidInputError, match="unknown admin unit"):
            users.create_user(conn, "u_cs", "a long password", "commune_staff", ["99999"])
        with pytest.raises(InvalidInputError, match="only commune_staff"):
            users.create_user(conn, "u_pl", "a long password", "planner", [code])
        with pytest.raises(InvalidInputError, match="at least"):
            users.create_user(conn, "u_short", "short", "planner")
        staff = users.create_user(conn, "u_cs", "a long password", "commune_staff", [code])
        assert staff.admin_units == (code,)
        with pytest.raises(ConflictError):
            users.create_user(conn, "u_cs", "another password", "citizen")


def test_demo_users_one_per_role_and_idempotent(seeded: Engine) -> None:
    from sqlalchemy import text

    # The demo seed already made them: start again from none, inside a transaction rolled back
    # at the end, so the shared database keeps its users.
    with seeded.connect() as conn:
        trans = conn.begin()
        try:
            conn.execute(text("DELETE FROM app_user WHERE username LIKE 'demo\\_%'"))
            first = users.seed_demo_users(conn)
            assert set(first) == {f"demo_{r}" for r in users.ROLES}
            assert users.seed_demo_users(conn) == {}
            for name, password in first.items():
                assert users.authenticate(conn, name, password, NOW).username == name
            assert users.get_user(conn, "demo_commune_staff").admin_units
        finally:
            trans.rollback()
