"""GET /api/jobs: the scheduled jobs of this process, with their last run and error."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from analytics.scheduler import JobBoard

router = APIRouter(prefix="/api/jobs", tags=["jobs"])


def job_statuses(request: Request) -> list[dict[str, Any]]:
    """Every scheduled job's status (an idle board when the scheduler is off)."""
    board = getattr(request.app.state, "jobs", None)
    return (board if isinstance(board, JobBoard) else JobBoard()).snapshot()


@router.get("", summary="Scheduled jobs: last run, last success, last error, next retry")
def list_jobs(request: Request) -> dict[str, Any]:
    """The H3 refresh, derived indicators and alert rules jobs of this API process."""
    running = getattr(request.app.state, "analytics_task", None) is not None
    board = getattr(request.app.state, "jobs", None)
    # Several replicas: only the holder of the jobs' lease runs them (issue 23).
    leader = isinstance(board, JobBoard) and board.leader
    return {
        "scheduler": "running" if running else "off",
        "leader": leader,
        "jobs": job_statuses(request),
    }
