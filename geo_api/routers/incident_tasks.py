"""Incident tasks (issue 21): agency users see theirs, acknowledge, add notes and photos, complete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from analytics import incident_ops as ops
from geo_api.deps import ConnDep, SettingsDep
from geo_api.security import NowDep, RequiredUser
from layers.incidents import store

router = APIRouter(prefix="/api/tasks", tags=["incidents"])


class CompleteIn(BaseModel):
    """An optional closing note."""

    model_config = ConfigDict(extra="forbid")

    note: str = Field(default="", max_length=5000)


@router.get("", summary="Tasks: mine (my agency's or my communes'), or all for operators")
def list_tasks(
    conn: ConnDep, user: RequiredUser, mine: bool = False, open_only: bool = False
) -> list[dict[str, Any]]:
    """Tasks in the caller's scope, most urgent first (agency users always get only theirs)."""
    scope = ops.scope_of(user)
    if mine and scope == store.EVERYTHING:
        # An operator's or leader's own tasks: the ones for the incidents they command.
        rows = store.list_tasks(conn, open_only=open_only)
        return [r for r in rows if r["commander"] == user.username and r["agency_code"] is None]
    return store.list_tasks(conn, scope=scope, open_only=open_only)


@router.get("/{task_id}", summary="One task with its notes")
def get_task(task_id: int, conn: ConnDep, user: RequiredUser) -> dict[str, Any]:
    """The task (in the caller's scope) and its notes."""
    t = store.get_task(conn, task_id, ops.scope_of(user))
    t["notes"] = store.list_notes(conn, [task_id])
    return t


@router.post("/{task_id}/ack", summary="Acknowledge a task")
def ack(task_id: int, conn: ConnDep, user: RequiredUser, now: NowDep) -> dict[str, Any]:
    """The agency has taken the task on (its first response)."""
    return ops.ack_task(conn, task_id, user, now)


@router.post("/{task_id}/note", summary="Add a note and/or a photo")
def note(
    task_id: int,
    conn: ConnDep,
    user: RequiredUser,
    settings: SettingsDep,
    now: NowDep,
    text: Annotated[str, Form(max_length=5000)] = "",
    photo: Annotated[UploadFile | None, File()] = None,
) -> dict[str, Any]:
    """A progress note, a photo from the field, or both (multipart form)."""
    raw = photo.file.read(settings.incident_photo_max_bytes + 1) if photo is not None else None
    return ops.note_task(conn, task_id, user, now, text, raw, settings)


@router.post("/{task_id}/complete", summary="Complete a task")
def complete(
    task_id: int, conn: ConnDep, user: RequiredUser, now: NowDep, body: CompleteIn | None = None
) -> dict[str, Any]:
    """Done, once the evidence the SOP step requires (note or photo) is there."""
    return ops.complete_task(conn, task_id, user, now, (body or CompleteIn()).note)


@router.get("/{task_id}/notes/{note_id}/photo", summary="A task photo")
def photo(task_id: int, note_id: int, conn: ConnDep, user: RequiredUser) -> Response:
    """The photo of a task note (in the caller's scope)."""
    store.get_task(conn, task_id, ops.scope_of(user))
    data, media_type = store.get_photo(conn, task_id, note_id)
    return Response(data, media_type=media_type, headers={"Cache-Control": "private, max-age=300"})
