"""Run connectors: each run records batches, retries with backoff, and keeps what it fetched."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from ingest.connectors import sources
from ingest.connectors.config import (
    Connector,
    ConnectorsConfig,
    DropFolder,
    HttpPull,
    IndicatorDrop,
    IndicatorPull,
    Mqtt,
    NewsPull,
    load_config,
)
from ingest.connectors.indicators import LandingFailed
from ingest.pipeline import ImportOptions, ImportReport, run_import
from layers.errors import IocError, NotFoundError, UnavailableError
from layers.ingest.batches import (
    connector_state_row,
    create_batch,
    finish_batch,
    save_connector_state,
)
from layers.settings import Settings

__all__ = ["RunResult", "load_config", "run_connector", "run_connectors"]


@dataclass
class RunResult:
    """Outcome of one connector run (over all its attempts)."""

    name: str
    kind: str
    status: str = "succeeded"  # succeeded | failed
    attempts: int = 0
    batches: list[int] = field(default_factory=list)
    imported: int = 0
    rejected: int = 0
    files: list[str] = field(default_factory=list)
    message: str = ""

    def summary(self) -> str:
        """One line for the CLI."""
        return (
            f"{self.name} ({self.kind}): {self.status} after {self.attempts} attempt(s); "
            f"imported {self.imported}, rejected {self.rejected}; batches "
            f"{', '.join(map(str, self.batches)) or '-'}"
            + (f"; {self.message}" if self.message else "")
        )


def spool_dir(settings: Settings, name: str) -> Path:
    """Where a connector keeps fetched data until it is imported."""
    return settings.state_dir / "ingest" / "spool" / name


def _state(engine: Engine, name: str) -> dict[str, Any]:
    with engine.connect() as conn:
        row = connector_state_row(conn, name)
    return row if row else {"name": name, "cursor": {}, "failures": 0}


def _save_state(engine: Engine, name: str, **values: Any) -> None:
    with engine.begin() as conn:
        save_connector_state(conn, name, **values)


def _import(
    engine: Engine,
    settings: Settings,
    c: HttpPull | DropFolder | Mqtt,
    path: Path,
    attempt: int,
    **kw: Any,
) -> ImportReport:
    opts = ImportOptions(
        path=path,
        layer=c.layer,
        actor=f"connector:{c.name}",
        kind=c.kind,
        connector=c.name,
        source_name=f"{c.name}:{path.name}",
        **kw,
    )
    report = run_import(engine, settings, opts)
    return report


def _empty_batch(engine: Engine, c: Connector, attempt: int, status: str, message: str) -> int:
    with engine.begin() as conn:
        batch = create_batch(
            conn,
            layer_id=None,
            source=f"{c.name}: {message}"[:200],
            actor=f"connector:{c.name}",
            mode="append",
            kind="connector" if isinstance(c, IndicatorPull | IndicatorDrop | NewsPull) else c.kind,
            connector=c.name,
            attempts=attempt,
        )
        finish_batch(
            conn,
            batch,
            status=status,
            counts={"fetched": 0},
            report={"message": message},
            errors=[message] if status == "failed" else [],
        )
    return batch


def _add(result: RunResult, report: ImportReport) -> None:
    if report.batch_id is not None:
        result.batches.append(report.batch_id)
    result.imported += report.inserted + report.updated
    result.rejected += report.rows_rejected


def _import_spool(
    engine: Engine, settings: Settings, c: HttpPull | Mqtt, result: RunResult, attempt: int
) -> None:
    """Import every spooled fetch, oldest first; each is deleted only once it has landed."""
    for path in sources.pending_spool(spool_dir(settings, c.name)):
        meta = sources.spool_meta(path)
        if not meta.get("count"):
            path.unlink()
            result.batches.append(_empty_batch(engine, c, attempt, "succeeded", "nothing new"))
            continue
        if isinstance(c, HttpPull):
            report = _import(engine, settings, c, path, attempt, key=c.key, mode=c.mode, crs=c.crs)
        else:
            report = _import(
                engine, settings, c, path, attempt,
                key="reading_id", mode="upsert", time_field="ts", title="Sensor readings",
                crs="EPSG:4326",
            )  # fmt: skip
        _add(result, report)
        if meta.get("cursor") is not None:
            _save_state(engine, c.name, cursor={"since": meta["cursor"]})
        path.unlink()


def _run_http(
    engine: Engine, settings: Settings, c: HttpPull, result: RunResult, attempt: int
) -> None:
    _import_spool(engine, settings, c, result, attempt)  # leftovers of a failed run first
    cursor = (_state(engine, c.name).get("cursor") or {}).get("since")
    features, new_cursor = sources.fetch_http(c, cursor)
    sources.write_spool(
        spool_dir(settings, c.name),
        features,
        {"cursor": new_cursor, "count": len(features), "fetched_at": datetime.now(UTC).isoformat()},
    )
    _import_spool(engine, settings, c, result, attempt)


def _run_mqtt(engine: Engine, settings: Settings, c: Mqtt, result: RunResult, attempt: int) -> None:
    folder = spool_dir(settings, c.name)
    live = folder / "incoming.jsonl"
    _import_spool(engine, settings, c, result, attempt)
    if not live.exists() or live.stat().st_size == 0:
        sources.collect_mqtt(c, live)
    features = sources.mqtt_features(live) if live.exists() else []
    sources.write_spool(folder, features, {"count": len(features)})
    live.unlink(missing_ok=True)  # now safely in the spool file
    _import_spool(engine, settings, c, result, attempt)


def _run_drop(
    engine: Engine, settings: Settings, c: DropFolder, result: RunResult, attempt: int
) -> None:
    done, failed = c.path / "done", c.path / "failed"
    found = list(sources.drop_files(c.path, c.patterns, c.settle_s))
    if not found:
        result.batches.append(_empty_batch(engine, c, attempt, "succeeded", "no new files"))
        return
    for path in found:
        try:
            report = _import(engine, settings, c, path, attempt, key=c.key, mode=c.mode, crs=c.crs)
        except IocError as exc:
            failed.mkdir(parents=True, exist_ok=True)
            target = failed / path.name
            shutil.move(str(path), target)
            target.with_name(target.name + ".error.json").write_text(
                json.dumps({"file": path.name, "error": exc.detail}, ensure_ascii=False, indent=2),
                encoding="utf-8",
            )
            result.files.append(f"failed/{path.name}")
            result.status = "failed"
            result.message = exc.detail
            continue
        _add(result, report)
        done.mkdir(parents=True, exist_ok=True)
        target = done / path.name
        shutil.move(str(path), target)
        target.with_name(target.name + ".report.json").write_text(
            report.model_dump_json(indent=2), encoding="utf-8"
        )
        result.files.append(f"done/{path.name}")


def _run_sector(
    engine: Engine,
    settings: Settings,
    c: IndicatorPull | IndicatorDrop | NewsPull,
    result: RunResult,
    attempt: int,
) -> None:
    """Indicator pulls, indicator drop folders and the news feed (one batch per fetch or file)."""
    from ingest.connectors import indicators, news

    reports: Sequence[indicators.LandReport | news.NewsReport]
    if isinstance(c, IndicatorDrop):
        reports, moved, failure = indicators.run_drop(engine, settings, c, attempt)
        result.files += moved
        if failure is not None:
            result.status, result.message = "failed", failure
    elif isinstance(c, IndicatorPull):
        reports = indicators.run_pull(engine, settings, c, spool_dir(settings, c.name), attempt)
    else:
        reports = news.run_news(engine, settings, c, spool_dir(settings, c.name), attempt)
    for rep in reports:
        if rep.batch_id is not None:
            result.batches.append(rep.batch_id)
        result.imported += rep.written
        result.rejected += rep.rejected
    if not reports and not result.files:
        result.message = "nothing new"


def run_connector(
    engine: Engine,
    settings: Settings,
    c: Connector,
    sleep: Callable[[float], object] = time.sleep,
) -> RunResult:
    """One run of one connector: up to 1 + retries attempts with exponential backoff."""
    result = RunResult(c.name, c.kind)
    for attempt in range(1, c.retries + 2):
        result.attempts = attempt
        try:
            if isinstance(c, HttpPull):
                _run_http(engine, settings, c, result, attempt)
            elif isinstance(c, Mqtt):
                _run_mqtt(engine, settings, c, result, attempt)
            elif isinstance(c, IndicatorPull | IndicatorDrop | NewsPull):
                _run_sector(engine, settings, c, result, attempt)
                if result.status == "failed":
                    break  # a bad export is not transient: it is in failed/ with its report
            else:
                _run_drop(engine, settings, c, result, attempt)
                if result.status == "failed":
                    break  # a bad file is not transient: it is in failed/ with its report
            _save_state(
                engine,
                c.name,
                last_run_at=datetime.now(UTC),
                last_status="succeeded",
                last_batch_id=result.batches[-1] if result.batches else None,
                failures=0,
                next_attempt_at=datetime.now(UTC) + timedelta(seconds=c.interval_s),
            )
            result.status = "succeeded"
            if result.message != "nothing new":
                result.message = ""
            return result
        except Exception as exc:
            message = exc.detail if isinstance(exc, IocError) else f"{type(exc).__name__}: {exc}"
            result.status = "failed"
            result.message = message
            if isinstance(exc, LandingFailed):
                result.batches.append(exc.batch_id)
            elif isinstance(exc, UnavailableError):
                # The failure happened before any import: record it as a batch of its own.
                result.batches.append(_empty_batch(engine, c, attempt, "failed", message))
            if attempt <= c.retries:
                sleep(c.backoff_s * 2 ** (attempt - 1))
    failures = int(_state(engine, c.name).get("failures") or 0) + 1
    _save_state(
        engine,
        c.name,
        last_run_at=datetime.now(UTC),
        last_status="failed",
        failures=failures,
        next_attempt_at=datetime.now(UTC)
        + timedelta(seconds=min(c.interval_s, c.backoff_s * 2**failures)),
    )
    return result


def run_connectors(
    engine: Engine, settings: Settings, cfg: ConnectorsConfig, name: str | None = None
) -> list[RunResult]:
    """Run the named connector, or every enabled one."""
    chosen = [c for c in cfg.connectors if (name is None and c.enabled) or c.name == name]
    if name is not None and not chosen:
        known = ", ".join(c.name for c in cfg.connectors) or "none configured"
        raise NotFoundError(f"no connector named '{name}' ({known})", name=name)
    return [run_connector(engine, settings, c) for c in chosen]
