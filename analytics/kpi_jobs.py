"""Derived sector indicators (pa_*, tt_*, gt_vehicles): recomputed from our own layers.

Each job reads one source layer and writes daily observations through
layers.indicators.store.upsert_observations, as one import batch per run. A job runs when its
source layer's data_version moved since the last run (or when forced), skips a layer that
does not exist yet, and is idempotent: rerunning it changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine

from layers.indicators import store as ind
from layers.ingest.batches import create_batch, finish_batch

log = logging.getLogger(__name__)
DEFAULT_TZ = "Asia/Ho_Chi_Minh"
# Incremental sources get a full recompute at least this often (late or deleted rows).
FULL_EVERY = timedelta(hours=24)
MAX_REJECT_SAMPLES = 20


@dataclass
class DerivedReport:
    """What one job did: skipped (why), or the observation counts of its batch."""

    job: str
    source: str
    status: str  # "refreshed" | "up_to_date" | "no_source"
    batch_id: int | None = None
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    reject_samples: list[tuple[int, str]] = field(default_factory=list)
    since: date | None = None  # incremental run: local days recomputed from this one on


def jobs() -> dict[str, list[str]]:
    """Source layer -> the derived indicator codes computed from it (one job per layer)."""
    out: dict[str, list[str]] = {}
    for code, src in ind.derived_codes().items():
        out.setdefault(src, []).append(code)
    return out


def _batch(conn: Connection, source: str) -> int:
    return create_batch(
        conn,
        layer_id=None,
        source=f"derived:{source}",
        actor="analytics.kpi_jobs",
        mode="upsert",
        kind="derived",
    )


def _finish(conn: Connection, batch_id: int, rep: DerivedReport) -> None:
    counts: dict[str, Any] = {
        k: v for k, v in asdict(rep).items() if k in ("inserted", "updated", "unchanged")
    }
    counts["rejected"] = rep.rejected
    finish_batch(
        conn,
        batch_id,
        status="succeeded",
        counts=counts,
        errors=[{"row": i, "reason": r} for i, r in rep.reject_samples],
    )


def refresh_job(
    conn: Connection, source: str, *, force: bool = False, tz: str = DEFAULT_TZ
) -> DerivedReport:
    """Recompute the indicators derived from one source layer (in the caller's transaction).

    Big append-mostly sources (traffic counts) are recomputed from the day before their
    last run, with a full recompute at least every FULL_EVERY; the others always in full.
    """
    codes = jobs()[source]
    job = "derived:" + source
    lv = ind.layer_version(conn, source)
    if lv is None:
        return DerivedReport(job=job, source=source, status="no_source")
    if not force and ind.job_version(conn, job) == lv[1]:
        return DerivedReport(job=job, source=source, status="up_to_date")
    since: date | None = None
    # One clock for the whole job (this process's), stored with the run and compared later.
    now = datetime.now(UTC)
    if source in ind.INCREMENTAL_SOURCES and not force:
        last = ind.job_refreshed_at(conn, job)
        full = ind.job_refreshed_at(conn, job + ":full")
        if last is not None and full is not None and now - full < FULL_EVERY:
            since = last.astimezone(ZoneInfo(tz)).date() - timedelta(days=1)
    rep = DerivedReport(job=job, source=source, status="refreshed", since=since)
    rep.batch_id = _batch(conn, source)
    for code in codes:
        rows = ind.derived_observations(conn, code, tz, since)
        counts = ind.upsert_observations(conn, rep.batch_id, rows)
        rep.inserted += counts.inserted
        rep.updated += counts.updated
        rep.unchanged += counts.unchanged
        rep.rejected += len(counts.rejected)
        room = MAX_REJECT_SAMPLES - len(rep.reject_samples)
        rep.reject_samples += [(i, f"{code}: {r}") for i, r in counts.rejected[:room]]
    _finish(conn, rep.batch_id, rep)
    ind.set_job_version(conn, job, lv[1], now)
    if since is None:
        ind.set_job_version(conn, job + ":full", lv[1], now)
    return rep


def refresh_derived(
    target: Engine | Connection,
    *,
    sources: Sequence[str] | None = None,
    force: bool = False,
    tz: str = DEFAULT_TZ,
) -> list[DerivedReport]:
    """Refresh every derived indicator whose source layer changed (all of them with force).

    With an Engine each source layer runs in its own transaction; with a Connection the
    caller's transaction holds them all (the demo seed passes its connection).
    """
    todo = list(sources) if sources is not None else sorted(jobs())
    reports: list[DerivedReport] = []
    for source in todo:
        if isinstance(target, Engine):
            with target.begin() as conn:
                rep = refresh_job(conn, source, force=force, tz=tz)
        else:
            rep = refresh_job(target, source, force=force, tz=tz)
        if rep.status == "refreshed":
            log.info(
                "derived indicators from %s: %d inserted, %d updated, %d rejected",
                source,
                rep.inserted,
                rep.updated,
                rep.rejected,
            )
        reports.append(rep)
    return reports
