"""Saved map views of the signed-in user (the views list and the video-wall rotation)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from geo_api.deps import ConnDep, SettingsDep
from geo_api.security import required_user
from layers.auth import mapviews
from layers.auth.users import User

router = APIRouter(prefix="/api/views", tags=["views"])
UserDep = Annotated[User, Depends(required_user)]


class ViewIn(BaseModel):
    """A view to save: its name and the page's URL state (query string)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=120)
    state: str = Field(max_length=4000)
    rotate_s: int = Field(default=30, ge=5, le=3600)


class ViewPatch(BaseModel):
    """Fields of a view to change."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=120)
    state: str | None = Field(default=None, max_length=4000)
    rotate_s: int | None = Field(default=None, ge=5, le=3600)
    position: int | None = Field(default=None, ge=0, le=100_000)


@router.get("", summary="My saved views")
def list_views(conn: ConnDep, user: UserDep) -> list[dict[str, Any]]:
    """The caller's saved views in order."""
    return [v.doc() for v in mapviews.list_views(conn, user.id)]


@router.post("", status_code=201, summary="Save the current view")
def create_view(
    body: ViewIn, conn: ConnDep, user: UserDep, settings: SettingsDep
) -> dict[str, Any]:
    """Save a named view for the caller."""
    view = mapviews.create_view(
        conn, user.id, body.name.strip(), body.state, body.rotate_s, settings.map_views_max
    )
    return view.doc()


@router.patch("/{view_id}", summary="Rename, re-save or reorder a view")
def update_view(view_id: int, body: ViewPatch, conn: ConnDep, user: UserDep) -> dict[str, Any]:
    """Change one of the caller's views."""
    values = body.model_dump(exclude_none=True)
    return mapviews.update_view(conn, user.id, view_id, values).doc()


@router.delete("/{view_id}", status_code=204, summary="Delete a view")
def delete_view(view_id: int, conn: ConnDep, user: UserDep) -> Response:
    """Delete one of the caller's views."""
    mapviews.delete_view(conn, user.id, view_id)
    return Response(status_code=204)
