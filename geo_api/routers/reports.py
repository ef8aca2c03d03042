"""Router for /api/reports: citizen field reports, their workflow, statistics and public map."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Connection, Engine
from starlette.concurrency import run_in_threadpool

from analytics import report_workflow as wf
from geo_api.deps import ConnDep, EngineDep, SettingsDep
from geo_api.security import CurrentUser, NowDep, RequiredUser, client_ip
from layers.auth import ratelimit
from layers.auth.users import User
from layers.errors import InvalidInputError, RateLimitedError
from layers.reports import media as report_media
from layers.reports import store as rep
from layers.settings import Settings

log = logging.getLogger(__name__)


def _check_overdue_now(engine: Engine) -> list[str]:
    with engine.begin() as conn:
        return wf.check_overdue(conn, datetime.now(UTC))


async def _overdue_loop(app: FastAPI, interval_s: float) -> None:
    """Raise SLA alerts periodically; safe with several replicas (rows are claimed once)."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            codes = await run_in_threadpool(_check_overdue_now, app.state.engine)
            if codes:
                log.info("overdue field reports alerted: %s", ", ".join(codes))
        except Exception:  # a failed round must not stop later ones
            log.exception("overdue check failed")


def start_overdue_checks(app: FastAPI) -> asyncio.Task[None] | None:
    """Start the SLA overdue check (every report_overdue_interval_s s; None when 0).

    Started and stopped by the app's lifespan (geo_api.main).
    """
    settings: Settings = app.state.settings
    if settings.report_overdue_interval_s <= 0:
        return None
    return asyncio.create_task(
        _overdue_loop(app, settings.report_overdue_interval_s), name="iocmap-report-overdue"
    )


router = APIRouter(prefix="/api/reports", tags=["reports"])


class WorkBody(BaseModel):
    """Optional details of a workflow step."""

    model_config = ConfigDict(extra="forbid")

    note: str = Field(default="", max_length=4000)
    assignee: str | None = Field(default=None, max_length=120)
    department: str | None = Field(default=None, max_length=200)


class RatingBody(BaseModel):
    """The citizen's satisfaction: hài lòng, chấp nhận or không hài lòng."""

    model_config = ConfigDict(extra="forbid")

    rating: rep.Rating


def _read_upload(upload: UploadFile, settings: Settings) -> report_media.Photo:
    # Read one byte past the limit so an oversized file is refused without reading it all.
    raw = upload.file.read(settings.report_photo_max_bytes + 1)
    return report_media.process_photo(
        raw, settings.report_photo_max_bytes, upload.filename or "photo"
    )


def _bbox(value: str | None) -> tuple[float, float, float, float] | None:
    if not value:
        return None
    try:
        parts = tuple(float(p) for p in value.split(","))
    except ValueError as exc:
        raise InvalidInputError(
            "bbox: 4 numbers minx,miny,maxx,maxy",
            param="bbox",
            i18n="err.reports.bbox_4_numbers_minx_miny",
        ) from exc
    if len(parts) != 4 or parts[0] > parts[2] or parts[1] > parts[3]:
        raise InvalidInputError(
            "bbox: 4 numbers minx,miny,maxx,maxy",
            param="bbox",
            i18n="err.reports.bbox_4_numbers_minx_miny",
        )
    return parts[0], parts[1], parts[2], parts[3]


@router.post("", status_code=201, summary="Submit a field report (multipart, up to 5 photos)")
def submit(
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    user: CurrentUser,
    now: NowDep,
    category: Annotated[str, Form()],
    description: Annotated[str, Form()],
    lon: Annotated[float | None, Form()] = None,
    lat: Annotated[float | None, Form()] = None,
    contact_name: Annotated[str | None, Form()] = None,
    contact_phone: Annotated[str | None, Form()] = None,
    contact_email: Annotated[str | None, Form()] = None,
    photos: Annotated[
        list[UploadFile] | None, File(description="JPEG or PNG, ≤ 10 MB each")
    ] = None,
) -> JSONResponse:
    """Record a report; routed to its commune and department; a duplicate is linked instead."""
    # Signed-in citizens have their own bucket; anonymous ones share their address's.
    bucket = f"report:user:{user.id}" if user else f"report:ip:{client_ip(request)}"
    rate = settings.report_rate_per_hour / 3600
    with engine.begin() as conn:
        allowed = ratelimit.take(conn, bucket, settings.report_rate_burst, rate, now)
        wait = (
            0
            if allowed
            else ratelimit.retry_after_s(conn, bucket, settings.report_rate_burst, rate, now)
        )
    if not allowed:
        raise RateLimitedError(
            f"too many reports; try again in {wait} s",
            retry_after_s=wait,
            i18n="err.reports.too_many_reports_try_again",
            wait=wait,
        )
    contact = None
    if contact_name or contact_phone or contact_email:
        contact = {"name": contact_name, "phone": contact_phone, "email": contact_email}
    try:
        sub = rep.Submission.model_validate(
            {
                "category": category,
                "description": description,
                "lon": lon,
                "lat": lat,
                "contact": contact,
            }
        )
    except ValidationError as exc:
        # the same 400 as a malformed request, in the caller's language (geo_api.errors)
        raise RequestValidationError(exc.errors()) from exc
    files = [p for p in photos or [] if p.filename or p.size]
    if len(files) > settings.report_max_photos:
        raise InvalidInputError(
            f"at most {settings.report_max_photos} photos",
            param="photos",
            i18n="err.reports.at_most_photos",
            report_max_photos=settings.report_max_photos,
        )
    # Every photo is decoded before anything is stored: one bad file refuses the whole report.
    checked = [_read_upload(f, settings) for f in files]
    with engine.begin() as conn:
        out = wf.submit(conn, sub, checked, user, now, settings.media_root)
    return JSONResponse(out, status_code=200 if out["duplicate_of"] else 201)


@router.get("", summary="Reports (commune staff: their communes only)")
def list_reports(
    conn: ConnDep,
    user: CurrentUser,
    now: NowDep,
    status: rep.Status | None = None,
    category: rep.Category | None = None,
    commune_code: str | None = None,
    overdue: bool | None = None,
    department: Annotated[str | None, Query(max_length=200)] = None,
    sort: rep.Sort = "received",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[dict[str, Any]]:
    """Newest first (or soonest due with sort=due), filtered; scoped to what the caller may read."""
    return rep.list_reports(
        conn,
        user,
        now=now,
        status=status,
        category=category,
        commune_code=commune_code,
        overdue=overdue,
        department=department,
        sort=sort,
        limit=limit,
        offset=offset,
    )


@router.get("/map", summary="Public, anonymised map of report locations and statuses")
def public_map(
    conn: ConnDep,
    bbox: Annotated[str | None, Query(description="minx,miny,maxx,maxy (WGS84)")] = None,
    since: datetime | None = None,
    status: rep.Status | None = None,
    category: rep.Category | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 5000,
) -> JSONResponse:
    """GeoJSON points on a ~100 m grid with category, status, commune and day only."""
    doc = rep.public_map(
        conn, bbox=_bbox(bbox), since=since, status=status, category=category, limit=limit
    )
    return JSONResponse(doc, media_type="application/geo+json")


@router.get("/form", summary="What the report form needs: categories, photo limits, statuses")
def form(settings: SettingsDep) -> dict[str, Any]:
    """Categories with their SLA and department, the photo limits and the workflow's statuses."""
    return {
        "categories": [
            {"code": c, "department": i.department, "sla_hours": i.sla.total_seconds() / 3600}
            for c, i in wf.CATEGORIES.items()
        ],
        "departments": sorted({i.department for i in wf.CATEGORIES.values()}),
        "statuses": list(wf.STATUSES),
        "max_photos": settings.report_max_photos,
        "photo_max_bytes": settings.report_photo_max_bytes,
    }


@router.get("/mine", summary="The caller's own reports")
def mine(conn: ConnDep, user: RequiredUser, now: NowDep) -> list[dict[str, Any]]:
    """Reports the signed-in citizen submitted."""
    return rep.own_reports(conn, user, now)


@router.get("/stats", summary="Received, processed %, on-time % and satisfaction")
def stats(
    conn: ConnDep,
    user: RequiredUser,
    settings: SettingsDep,
    group_by: rep.GroupBy = "commune",
    period: rep.Period = "month",
    since: datetime | None = None,
    until: datetime | None = None,
    commune_code: str | None = None,
    category: rep.Category | None = None,
) -> list[dict[str, Any]]:
    """Per commune, category or period (commune staff: their communes only)."""
    return rep.stats(
        conn,
        user,
        group_by,
        period=period,
        since=since,
        until=until,
        commune_code=commune_code,
        category=category,
        timezone=settings.timezone,
    )


@router.post("/overdue/check", summary="Raise alerts for reports past their SLA")
def check_overdue(conn: ConnDep, now: NowDep) -> dict[str, Any]:
    """Open one alert per newly overdue report."""
    return {"alerted": wf.check_overdue(conn, now)}


@router.post("/sync", summary="Re-mirror every report into the field_reports layer (admin)")
def sync(conn: ConnDep) -> dict[str, Any]:
    """Upsert all workflow reports as features (e.g. after re-seeding the demo)."""
    return {"synced": rep.sync_features(conn)}


@router.get("/{code}", summary="One report with history and photos")
def get_report(code: str, conn: ConnDep, user: CurrentUser, now: NowDep) -> dict[str, Any]:
    """404 also when the caller may not see it; `allowed_steps` are the steps the caller may take."""
    out = rep.get_report(conn, code, user, now)
    out["allowed_steps"] = wf.allowed_steps(out["status"], user.role) if user else []
    return out


@router.get("/{code}/photos/{photo_id}", summary="A report photo (EXIF stripped)")
def photo(
    code: str, photo_id: int, conn: ConnDep, user: CurrentUser, settings: SettingsDep
) -> FileResponse:
    """The stored, cleaned copy."""
    path, media_type = rep.photo_file(conn, code, photo_id, user, settings.media_root)
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": "private"})


def _work(
    code: str, action: str, conn: Any, user: Any, now: datetime, body: WorkBody | None
) -> dict[str, Any]:
    b = body or WorkBody()
    return wf.take_step(
        conn, code, action, user, now, note=b.note, assignee=b.assignee, department=b.department
    )


def _photo_step(
    code: str,
    action: str,
    conn: Connection,
    user: User,
    now: datetime,
    settings: Settings,
    note: str,
    photo: UploadFile | None,
) -> dict[str, Any]:
    """A workflow step that carries a note and an optional photo (resolve, provide_info)."""
    checked = _read_upload(photo, settings) if photo is not None and photo.filename else None
    return wf.take_step(
        conn, code, action, user, now, note=note, photo=checked, media_root=settings.media_root
    )


@router.post("/{code}/accept", summary="received / info_requested → accepted")
def accept(
    code: str, conn: ConnDep, user: RequiredUser, now: NowDep, body: WorkBody | None = None
) -> dict[str, Any]:
    """Take the report on (thụ lý): it is valid and belongs to this unit."""
    return _work(code, "accept", conn, user, now, body)


@router.post("/{code}/request-info", summary="received / accepted → info_requested")
def request_info(
    code: str, conn: ConnDep, user: RequiredUser, now: NowDep, body: WorkBody | None = None
) -> dict[str, Any]:
    """Ask the citizen for more information; `note` (the question) is required."""
    return _work(code, "request_info", conn, user, now, body)


@router.post("/{code}/info", summary="The citizen answers: info_requested → received")
def provide_info(
    code: str,
    conn: ConnDep,
    user: RequiredUser,
    now: NowDep,
    settings: SettingsDep,
    note: Annotated[str, Form(max_length=4000)],
    photo: Annotated[UploadFile | None, File()] = None,
) -> dict[str, Any]:
    """The citizen's answer (and optionally a photo) to a request for information."""
    return _photo_step(code, "provide_info", conn, user, now, settings, note, photo)


@router.post("/{code}/assign", summary="received / accepted / assigned → assigned")
def assign(
    code: str, conn: ConnDep, user: RequiredUser, now: NowDep, body: WorkBody | None = None
) -> dict[str, Any]:
    """Assign to a person or unit (default: the caller) and optionally another department."""
    return _work(code, "assign", conn, user, now, body)


@router.post("/{code}/start", summary="assigned → in_progress")
def start(
    code: str, conn: ConnDep, user: RequiredUser, now: NowDep, body: WorkBody | None = None
) -> dict[str, Any]:
    """Work has started."""
    return _work(code, "start", conn, user, now, body)


@router.post("/{code}/reject", summary="any open status → rejected")
def reject(
    code: str, conn: ConnDep, user: RequiredUser, now: NowDep, body: WorkBody | None = None
) -> dict[str, Any]:
    """Refuse the report; `note` (the reason) is required."""
    return _work(code, "reject", conn, user, now, body)


@router.post("/{code}/reopen", summary="resolved → in_progress, rejected → accepted (operator)")
def reopen(
    code: str, conn: ConnDep, user: RequiredUser, now: NowDep, body: WorkBody | None = None
) -> dict[str, Any]:
    """Reopen a closed report with a reason; it gets a fresh SLA and loses its rating."""
    return _work(code, "reopen", conn, user, now, body)


@router.post("/{code}/resolve", summary="in_progress → resolved, with note and optional photo")
def resolve(
    code: str,
    conn: ConnDep,
    user: RequiredUser,
    now: NowDep,
    settings: SettingsDep,
    note: Annotated[str, Form(max_length=4000)],
    photo: Annotated[UploadFile | None, File()] = None,
) -> dict[str, Any]:
    """Close the report with a resolution note and photo."""
    return _photo_step(code, "resolve", conn, user, now, settings, note, photo)


@router.post("/{code}/rating", summary="The citizen rates a resolved report")
def rating(
    code: str, body: RatingBody, conn: ConnDep, user: RequiredUser, now: NowDep
) -> dict[str, Any]:
    """hai_long (satisfied), chap_nhan (accept) or khong_hai_long (unsatisfied); once."""
    return rep.rate(conn, code, user, body.rating, now)
