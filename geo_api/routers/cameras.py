"""Cameras: registry with live status, latest frame with overlays, zones and events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from geo_api.deps import ConnDep, SettingsDep
from layers.vision import cameras, events

router = APIRouter(prefix="/api/cameras", tags=["cameras"])

NO_STORE = {"Cache-Control": "no-store"}


def _camera_doc(
    cam: cameras.CameraRecord, last: events.EventOut | None, stale_after_s: float
) -> dict[str, Any]:
    from vision.status import effective_status, picture_doc

    now = datetime.now(UTC)
    doc = cam.model_dump(mode="json", exclude={"frame_path", "overlay"})
    # The worker's own word is kept; `status` is what an operator may rely on.
    doc["worker_status"] = cam.status
    doc["status"] = effective_status(cam.status, cam.last_frame_at, now, stale_after_s)
    doc["picture"] = picture_doc(cam.status, cam.last_frame_at, now, stale_after_s)
    doc["last_event"] = last.model_dump(mode="json") if last else None
    doc["links"] = {
        "snapshot": f"/api/cameras/{cam.camera_id}/snapshot.jpg",
        "events": f"/api/cameras/{cam.camera_id}/events",
        "zones": f"/api/cameras/{cam.camera_id}/zones",
    }
    return doc


@router.get("", summary="Cameras with status, last frame time and last event")
def list_cameras(conn: ConnDep, settings: SettingsDep) -> list[dict[str, Any]]:
    """Every registered camera."""
    last = events.latest_events(conn)
    stale = settings.vision_stale_after_s
    return [_camera_doc(c, last.get(c.camera_id), stale) for c in cameras.list_cameras(conn)]


@router.get("/{camera_id}", summary="One camera")
def get_camera(camera_id: str, conn: ConnDep, settings: SettingsDep) -> dict[str, Any]:
    """One camera with its status and last event."""
    cam = cameras.get_camera(conn, camera_id)
    last = events.query_events(conn, camera_id=camera_id, limit=1)
    return _camera_doc(cam, last[0] if last else None, settings.vision_stale_after_s)


@router.get(
    "/{camera_id}/snapshot.jpg",
    summary="Latest frame, optionally with tracked boxes and zones drawn",
    responses={200: {"content": {"image/jpeg": {}}}},
)
async def snapshot(
    camera_id: str,
    conn: ConnDep,
    settings: SettingsDep,
    boxes: Annotated[bool, Query(description="Draw the tracked objects")] = False,
    zones: Annotated[bool, Query(description="Draw the zones projected from the map")] = False,
) -> Response:
    """The JPEG the camera's worker wrote last (privacy blur already applied)."""
    from vision.service import camera_snapshot

    data = await run_in_threadpool(camera_snapshot, conn, settings, camera_id, boxes, zones)
    return Response(data, media_type="image/jpeg", headers=NO_STORE)


@router.get("/{camera_id}/zones", summary="Zones drawn on the map for this camera")
def zones(camera_id: str, conn: ConnDep) -> dict[str, Any]:
    """The camera's zones as a GeoJSON FeatureCollection."""
    cameras.get_camera(conn, camera_id)
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": z.id,
                "geometry": z.geometry,
                "properties": {"name": z.name, "kind": z.kind, "params": z.params},
            }
            for z in cameras.list_zones(conn, camera_id)
        ],
    }


@router.get("/{camera_id}/events", summary="The camera's events, newest first")
def camera_events(
    camera_id: str,
    conn: ConnDep,
    time_from: Annotated[datetime | None, Query(alias="from")] = None,
    time_to: Annotated[datetime | None, Query(alias="to")] = None,
    type: Annotated[list[str] | None, Query(description="Event types (repeat or comma)")] = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Events of one camera filtered by time range and types."""
    cameras.get_camera(conn, camera_id)
    types = [t for v in (type or []) for t in v.split(",") if t]
    found = events.query_events(
        conn, camera_id=camera_id, time_from=time_from, time_to=time_to, types=types, limit=limit
    )
    return [e.model_dump(mode="json") for e in found]
