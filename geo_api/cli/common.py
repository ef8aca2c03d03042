"""Helpers shared by CLI commands: settings, engine, and turning domain errors into exit codes."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import ParamSpec, TypeVar

import typer
from sqlalchemy import Engine

from layers import cluster, migrate
from layers.db import make_engine
from layers.errors import IocError
from layers.settings import Settings

P = ParamSpec("P")
R = TypeVar("R")


def load_settings() -> Settings:
    """Settings from the environment."""
    return Settings()


def friendly_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Print domain errors as one clear line and exit 1, instead of a traceback."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except IocError as exc:
            typer.secho(f"error: {exc.detail}", fg=typer.colors.RED, err=True)
            sys.exit(1)

    return wrapper


def audit_cli(engine: Engine, action: str, details: dict[str, object]) -> None:
    """Record a CLI action in the audit log, with the OS user as the actor."""
    from layers.auth import audit
    from layers.settings import current_os_user

    with engine.begin() as conn:
        audit.record(conn, current_os_user(), "cli", action, ip="local", details=details)


@contextmanager
def migrated_engine(settings: Settings) -> Iterator[Engine]:
    """Start the database if needed, migrate it, drop builds of killed imports, and yield an
    engine."""
    cluster.ensure_running(settings)
    engine = make_engine(settings)
    try:
        migrate.upgrade(engine)
        from layers.features.partitions import sweep_orphans

        # A server or import killed mid-import left its unattached build table: drop it now
        # rather than at the next import (live imports keep theirs: see layers.features.partitions).
        sweep_orphans(engine)
        from layers.ingest.locks import sweep_interrupted_batches

        # ...and its batch, still "running", is marked failed (issue 14).
        sweep_interrupted_batches(engine)
        yield engine
    finally:
        engine.dispose()
