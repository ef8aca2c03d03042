"""FastAPI dependencies: settings, engine and a per-request connection, all from app.state."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Connection, Engine

from layers.settings import Settings


def get_settings(request: Request) -> Settings:
    """The Settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


def get_engine(request: Request) -> Engine:
    """The engine opened by the app's lifespan."""
    engine: Engine = request.app.state.engine
    return engine


def get_connection(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[Connection]:
    """A connection in a transaction, committed when the handler returns without error."""
    with engine.begin() as conn:
        yield conn


def get_read_connection(request: Request) -> Iterator[Connection]:
    """A connection for reads that may lag the primary a little: a hot standby when
    IOC_DATABASE_READ_URLS is set (issue 23), else the primary; never used to write."""
    engine: Engine | None = getattr(request.app.state, "read_engine", None)
    if engine is None:
        # One machine: exactly the primary's request transaction, as before.
        yield from get_connection(request.app.state.engine)
        return
    with engine.connect() as conn:
        yield conn


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
# scope="function": the transaction commits before the response is sent, so a client that
# reads right after a write (POST then GET) sees it.
ConnDep = Annotated[Connection, Depends(get_connection, scope="function")]
ReadConnDep = Annotated[Connection, Depends(get_read_connection, scope="function")]
