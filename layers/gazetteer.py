"""Names of the admin units in force, for place-name matching (analytics.placenames)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Connection, or_, select

from layers.models import admin_unit


def current_units(
    conn: Connection, *, as_of: date | None = None, level: str = "commune"
) -> list[tuple[str, str, str]]:
    """(code, name, kind) of the units of `level` valid on `as_of` (default: still in force).

    Feed them to `analytics.placenames.Gazetteer.from_units`.
    """
    stmt = select(admin_unit.c.code, admin_unit.c.name, admin_unit.c.kind).where(
        admin_unit.c.level == level
    )
    if as_of is None:
        stmt = stmt.where(admin_unit.c.valid_to.is_(None))
    else:
        stmt = stmt.where(
            admin_unit.c.valid_from <= as_of,
            or_(admin_unit.c.valid_to.is_(None), admin_unit.c.valid_to > as_of),
        )
    return [(str(c), str(n), str(k)) for c, n, k in conn.execute(stmt.order_by(admin_unit.c.code))]
