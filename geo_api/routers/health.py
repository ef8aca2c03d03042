"""GET /health: the database is reachable and migrated."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from geo_api.deps import EngineDep
from geo_api.routers.jobs import job_statuses
from layers import migrate

router = APIRouter(tags=["health"])


@router.get("/health", summary="Database reachable and migrated")
def health(request: Request, engine: EngineDep) -> JSONResponse:
    """Report database reachability and migration state; 503 when either fails."""
    try:
        postgis = migrate.postgis_version(engine)
        current = sorted(migrate.current_heads(engine))
        expected = sorted(migrate.expected_heads(engine))
    except Exception as exc:  # any driver error means "not reachable" to a health probe
        return JSONResponse(
            {"status": "error", "database": "unreachable", "detail": str(exc).splitlines()[0]},
            status_code=503,
        )
    migrated = current == expected
    body: dict[str, Any] = {
        "status": "ok" if migrated else "error",
        "database": "ok",
        "postgis": postgis,
        "migrated": migrated,
        "revision": current,
        "expected_revision": expected,
        # Scheduled jobs fail alone and retry; a failing one shows here without failing health.
        "jobs": {
            j["name"]: {k: j[k] for k in ("last_ok_at", "last_error", "failures", "retry_at")}
            for j in job_statuses(request)
        },
    }
    standbys = getattr(request.app.state, "standby_pools", None)
    if standbys is not None:
        # Hot standby reads (issue 23): renders they did, and the ones the primary did because
        # the standby had not replayed the version yet or did not answer.
        body["standby_reads"] = {"standbys": len(standbys), **asdict(standbys.stats)}
    return JSONResponse(body, status_code=200 if migrated else 503)
