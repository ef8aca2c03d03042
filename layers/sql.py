"""The one place identifiers are quoted; values are always bound, never formatted."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from psycopg import sql
from sqlalchemy import ColumnElement, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY

_SAFE_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def quote_ident(name: str) -> str:
    """Return `name` as a double-quoted SQL identifier, refusing anything that is not a plain name."""
    if not _SAFE_IDENT.match(name):
        raise ValueError(f"not a safe SQL identifier: {name!r}")
    return '"' + name.replace('"', '""') + '"'


def ident(name: str) -> sql.Identifier:
    """Return `name` as a psycopg Identifier, after the same check as quote_ident."""
    quote_ident(name)
    return sql.Identifier(name)


def any_of(col: ColumnElement[Any], values: Iterable[Any], item_type: Any) -> ColumnElement[bool]:
    """`col = ANY(:array)`: one bound array parameter, however many values (never an IN list
    whose parameter count grows with the input and fails past 65,535)."""
    return col == any_(bindparam(None, list(values), type_=ARRAY(item_type)))
