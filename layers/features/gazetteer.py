"""Admin units in force: names for place-name matching (layers.features.placenames), codes, shapes."""

from __future__ import annotations

from datetime import date

import shapely
from geoalchemy2.shape import to_shape
from sqlalchemy import Connection, or_, select, text

from layers.models import admin_unit


def current_units(
    conn: Connection, *, as_of: date | None = None, level: str = "commune"
) -> list[tuple[str, str, str]]:
    """(code, name, kind) of the units of `level` valid on `as_of` (default: still in force).

    Feed them to `layers.features.placenames.Gazetteer.from_units`.
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


def current_unit_codes(conn: Connection) -> list[str]:
    """Codes of every admin unit still in force (any level)."""
    rows = conn.execute(select(admin_unit.c.code).where(admin_unit.c.valid_to.is_(None)))
    return [str(c) for (c,) in rows]


def has_admin_units(conn: Connection) -> bool:
    """True once any admin unit is loaded."""
    return conn.execute(select(admin_unit.c.code).limit(1)).first() is not None


def current_communes(conn: Connection) -> dict[str, tuple[str, shapely.Geometry]]:
    """code -> (name, WGS84 geometry) of the communes and wards in force."""
    rows = conn.execute(
        select(admin_unit.c.code, admin_unit.c.name, admin_unit.c.geom).where(
            admin_unit.c.level == "commune", admin_unit.c.valid_to.is_(None)
        )
    )
    return {str(c): (str(n), to_shape(g)) for c, n, g in rows}


def province_boundary_wkb(conn: Connection, province_code: str) -> bytes | None:
    """The province polygon as WKB: its admin unit, else the `admin_province` layer, else None."""
    row = conn.execute(
        text(
            "SELECT ST_AsBinary(ST_Union(geom)) FROM admin_unit "
            "WHERE level = 'province' AND code = :code AND valid_to IS NULL"
        ),
        {"code": province_code},
    ).scalar()
    if row is None:
        row = conn.execute(
            text(
                "SELECT ST_AsBinary(ST_Union(f.geom)) FROM feature f "
                "JOIN layer l ON l.id = f.layer_id WHERE l.slug = 'admin_province'"
            )
        ).scalar()
    return None if row is None else bytes(row)
