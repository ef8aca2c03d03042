"""Storage of saved map views: each user's named views of the map (URL state) and their order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from layers.errors import ConflictError, InvalidInputError, NotFoundError
from layers.models.mapviews import map_view


@dataclass(frozen=True)
class MapView:
    """One saved view."""

    id: int
    name: str
    state: str
    rotate_s: int
    position: int

    def doc(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "id": self.id,
            "name": self.name,
            "state": self.state,
            "rotate_s": self.rotate_s,
            "position": self.position,
        }


def _row(r: Any) -> MapView:
    return MapView(int(r.id), str(r.name), str(r.state), int(r.rotate_s), int(r.position))


def list_views(conn: Connection, user_id: int) -> list[MapView]:
    """The user's views in their order."""
    stmt = (
        select(map_view)
        .where(map_view.c.user_id == user_id)
        .order_by(map_view.c.position, map_view.c.id)
    )
    return [_row(r) for r in conn.execute(stmt)]


def count_views(conn: Connection, user_id: int) -> int:
    """How many views the user has."""
    stmt = select(func.count()).select_from(map_view).where(map_view.c.user_id == user_id)
    return int(conn.execute(stmt).scalar_one())


def create_view(
    conn: Connection, user_id: int, name: str, state: str, rotate_s: int, max_views: int
) -> MapView:
    """Save a new view at the end of the list (409 on a duplicate name, 400 past the limit)."""
    if count_views(conn, user_id) >= max_views:
        raise InvalidInputError(
            f"at most {max_views} saved views per user",
            field="name",
            i18n="err.mapviews.at_most_saved_views_per",
            max_views=max_views,
        )
    position = conn.execute(
        select(func.coalesce(func.max(map_view.c.position) + 1, 0)).where(
            map_view.c.user_id == user_id
        )
    ).scalar_one()
    try:
        with conn.begin_nested():
            row = conn.execute(
                insert(map_view)
                .values(
                    user_id=user_id, name=name, state=state, rotate_s=rotate_s, position=position
                )
                .returning(map_view)
            ).one()
    except IntegrityError as exc:
        raise ConflictError(
            f"a view named '{name}' already exists",
            field="name",
            i18n="err.mapviews.view_named_already_exists",
            name=name,
        ) from exc
    return _row(row)


def update_view(
    conn: Connection,
    user_id: int,
    view_id: int,
    values: dict[str, Any],
) -> MapView:
    """Change a view's name, state, rotation time or position (only the user's own)."""
    try:
        with conn.begin_nested():
            row = conn.execute(
                update(map_view)
                .where(and_(map_view.c.id == view_id, map_view.c.user_id == user_id))
                .values(**values, updated_at=func.now())
                .returning(map_view)
            ).one_or_none()
    except IntegrityError as exc:
        raise ConflictError(
            "a view with that name already exists",
            field="name",
            i18n="err.mapviews.view_with_that_name_already",
        ) from exc
    if row is None:
        raise NotFoundError(
            f"view {view_id} does not exist",
            view=view_id,
            i18n="err.mapviews.view_does_not_exist",
            view_id=view_id,
        )
    return _row(row)


def delete_view(conn: Connection, user_id: int, view_id: int) -> None:
    """Delete one of the user's views."""
    gone = conn.execute(
        delete(map_view).where(and_(map_view.c.id == view_id, map_view.c.user_id == user_id))
    ).rowcount
    if not gone:
        raise NotFoundError(
            f"view {view_id} does not exist",
            view=view_id,
            i18n="err.mapviews.view_does_not_exist",
            view_id=view_id,
        )
