"""Column makers the model modules share: the same column, spelt once.

Each returns a fresh Column (a Column belongs to one table), exactly as written out by hand, so
a table built with them has the schema it would have without them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Column, DateTime, ForeignKey, Text, func


def id_key(kind: Any = BigInteger) -> Column[Any]:
    """The table's surrogate primary key `id`."""
    return Column("id", kind, primary_key=True)


def parent(name: str, table: str, kind: Any = BigInteger) -> Column[Any]:
    """A required key to `table.id`; the row goes with its parent."""
    return Column(name, kind, ForeignKey(f"{table}.id", ondelete="CASCADE"), nullable=False)


def moment(name: str, *, required: bool = False, now: bool = False) -> Column[Any]:
    """A time with its zone; `now` defaults it to the database's clock."""
    return Column(
        name,
        DateTime(timezone=True),
        nullable=not required,
        server_default=func.now() if now else None,
    )


def words(name: str, *, required: bool = True, default: str | None = None) -> Column[Any]:
    """A text column; `default` is the database's value for a row that gives none."""
    return Column(name, Text, nullable=not required, server_default=default)


def done_by(step: str) -> tuple[Column[Any], Column[Any]]:
    """When a step was done and by whom: `<step>_at` and `<step>_by`, both empty until then."""
    return moment(f"{step}_at"), words(f"{step}_by", required=False)


def one_of(column: str, values: tuple[str, ...], name: str) -> CheckConstraint:
    """The column holds one of these values (a vocabulary kept in Python)."""
    return CheckConstraint(f"{column} IN ({', '.join(repr(v) for v in values)})", name=name)
