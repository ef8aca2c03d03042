"""GET /health: the database is reachable and migrated."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from geo_api.deps import EngineDep
from layers import migrate

router = APIRouter(tags=["health"])


@router.get("/health", summary="Database reachable and migrated")
def health(engine: EngineDep) -> JSONResponse:
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
    body = {
        "status": "ok" if migrated else "error",
        "database": "ok",
        "postgis": postgis,
        "migrated": migrated,
        "revision": current,
        "expected_revision": expected,
    }
    return JSONResponse(body, status_code=200 if migrated else 503)
