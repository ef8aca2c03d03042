"""Standard operating procedures (issue 21): data per incident type and severity, versioned."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from analytics import incident_ops as ops
from analytics import incidents as rules
from geo_api.deps import ConnDep
from geo_api.security import RequiredUser
from layers.incidents import store

router = APIRouter(prefix="/api/sops", tags=["incidents"])


@router.get("", summary="Procedures with their current steps and version history")
def list_sops(conn: ConnDep) -> list[dict[str, Any]]:
    """Every SOP (the shipped ones are installed by `iocmap seed`)."""
    return store.list_sops(conn)


@router.put("", summary="Create a procedure or store a new version of it")
def put_sop(spec: rules.SopSpec, conn: ConnDep, user: RequiredUser) -> dict[str, Any]:
    """A new version; incidents already running keep the version they started with."""
    return ops.put_sop(conn, spec, user)
