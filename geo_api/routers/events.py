"""Detection events: search, their snapshots, and a live Server-Sent Events stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from geo_api.deps import ConnDep, EngineDep, SettingsDep
from layers.db import conninfo as database_conninfo
from layers.vision import events

router = APIRouter(prefix="/api/events", tags=["events"])


def _types(raw: list[str] | None) -> list[str]:
    return [t for v in (raw or []) for t in v.split(",") if t]


@router.get("", summary="Events of all cameras, newest first")
def list_events(
    conn: ConnDep,
    camera_id: str | None = None,
    time_from: Annotated[datetime | None, Query(alias="from")] = None,
    time_to: Annotated[datetime | None, Query(alias="to")] = None,
    type: Annotated[list[str] | None, Query(description="Event types (repeat or comma)")] = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Events filtered by camera, time range and types."""
    found = events.query_events(
        conn,
        camera_id=camera_id,
        time_from=time_from,
        time_to=time_to,
        types=_types(type),
        limit=limit,
    )
    return [e.model_dump(mode="json") for e in found]


@router.get("/stream", summary="New events as Server-Sent Events (LISTEN iocmap_events)")
async def stream(
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    camera_id: str | None = None,
    type: Annotated[list[str] | None, Query(description="Event types (repeat or comma)")] = None,
    max_events: Annotated[int | None, Query(ge=1, description="Close after this many")] = None,
) -> EventSourceResponse:
    """One SSE message per stored event (event: its type; data: the event as JSON).

    Works across processes: camera workers insert and NOTIFY, every API replica LISTENs.
    """
    conninfo = database_conninfo(settings)
    wanted = set(_types(type))

    async def gen() -> AsyncIterator[dict[str, str]]:
        sent = 0
        async for note in events.listen_events(conninfo):
            if note.get("listening"):
                yield {"event": "ready", "data": "{}"}
                continue
            if await request.is_disconnected():
                break
            if camera_id is not None and note.get("camera_id") != camera_id:
                continue
            if wanted and note.get("type") not in wanted:
                continue

            def load(i: int = int(note["id"])) -> dict[str, Any]:
                with engine.connect() as conn:
                    return events.get_event(conn, i).model_dump(mode="json")

            doc = await run_in_threadpool(load)
            yield {
                "event": str(doc["event_type"]),
                "id": str(doc["id"]),
                "data": orjson.dumps(doc).decode(),
            }
            sent += 1
            if max_events is not None and sent >= max_events:
                break

    return EventSourceResponse(gen(), ping=15)


@router.get(
    "/{event_id}/snapshot.jpg",
    summary="The snapshot stored with an event",
    responses={200: {"content": {"image/jpeg": {}}}},
)
def event_snapshot(event_id: int, conn: ConnDep, settings: SettingsDep) -> Response:
    """The JPEG taken when the event fired (privacy blur already applied)."""
    from vision.service import event_snapshot as load

    return Response(load(conn, settings, event_id), media_type="image/jpeg")


@router.get("/{event_id}", summary="One event")
def get_event(event_id: int, conn: ConnDep) -> dict[str, Any]:
    """One event by id."""
    return events.get_event(conn, event_id).model_dump(mode="json")
