"""`iocmap user …`: create accounts (password from a prompt or stdin), list, disable, re-key."""

from __future__ import annotations

import sys

import typer

from geo_api.cli.common import friendly_errors, load_settings, migrated_engine
from layers.auth import users

user_app = typer.Typer(help="User accounts and roles.", no_args_is_help=True)


def _read_password(from_stdin: bool) -> str:
    """The password from stdin (first line) when piped or asked, else a confirmed prompt."""
    if from_stdin or not sys.stdin.isatty():
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise typer.BadParameter("no password on stdin")
        return line
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@user_app.command("add")
@friendly_errors
def add(
    name: str = typer.Argument(..., help="Login name"),
    role: str = typer.Option(..., "--role", help=f"One of: {', '.join(users.ROLES)}"),
    unit: list[str] = typer.Option(
        [], "--unit", help="Commune code (repeatable; required for commune_staff)"
    ),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from stdin instead of prompting"
    ),
) -> None:
    """Create a user; the password is prompted for, or read from stdin."""
    users.check_role(role)
    password = _read_password(password_stdin)
    with migrated_engine(load_settings()) as engine, engine.begin() as conn:
        user = users.create_user(conn, name, password, role, unit)
    units = f" ({', '.join(user.admin_units)})" if user.admin_units else ""
    typer.echo(f"created {user.username}: {user.role}{units}")


@user_app.command("passwd")
@friendly_errors
def passwd(
    name: str = typer.Argument(..., help="Login name"),
    password_stdin: bool = typer.Option(False, "--password-stdin"),
) -> None:
    """Set a new password (prompt or stdin)."""
    password = _read_password(password_stdin)
    with migrated_engine(load_settings()) as engine, engine.begin() as conn:
        users.set_password(conn, name, password)
    typer.echo(f"password of {name} changed")


@user_app.command("disable")
@friendly_errors
def disable(name: str = typer.Argument(..., help="Login name")) -> None:
    """Disable an account; its tokens and cookies stop working at once."""
    with migrated_engine(load_settings()) as engine, engine.begin() as conn:
        users.set_active(conn, name, False)
    typer.echo(f"{name} disabled")


@user_app.command("enable")
@friendly_errors
def enable(name: str = typer.Argument(..., help="Login name")) -> None:
    """Re-enable an account."""
    with migrated_engine(load_settings()) as engine, engine.begin() as conn:
        users.set_active(conn, name, True)
    typer.echo(f"{name} enabled")


@user_app.command("list")
@friendly_errors
def list_users() -> None:
    """Every account with its role and units."""
    with migrated_engine(load_settings()) as engine, engine.connect() as conn:
        for u in users.list_users(conn):
            state = "" if u.active else " [disabled]"
            units = f" {','.join(u.admin_units)}" if u.admin_units else ""
            typer.echo(f"{u.username}\t{u.role}{units}{state}")


def register(app: typer.Typer) -> None:
    """Attach the `user` group."""
    app.add_typer(user_app, name="user")
