"""Sector connectors whose records are indicator values: a pulled API or a drop folder of exports.

Each fetch lands as one import_batch (kind "connector") in one transaction: the observations
(layers.indicators.store.upsert_observations), the quarantined records (import_reject: record
number, reason, field and the original record) and the connector's cursor. A record with any
bad field is rejected whole, so a record is never half-written; a failure rolls everything
back and leaves the fetch in the spool for the next attempt.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine

from ingest.connectors import sources
from ingest.connectors.config import IndicatorDrop, IndicatorPull, PeriodSpec
from ingest.tabular import normalise_header
from layers.errors import InvalidInputError, IocError, NotFoundError
from layers.features.gazetteer import current_unit_codes
from layers.features.items import source_keys_by
from layers.features.registry import layer_id_of
from layers.indicators.store import (
    ObservationIn,
    catalog,
    period_end,
    period_floor,
    upsert_observations,
)
from layers.ingest.batches import (
    connector_state_row,
    create_batch,
    finish_batch,
    save_connector_state,
    write_rejects,
)
from layers.settings import Settings

MAX_ERRORS_IN_BATCH = 50

R = TypeVar("R")


@dataclass
class LandReport:
    """What one fetch (or file) did."""

    batch_id: int | None = None
    records: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def written(self) -> int:
        """Observations inserted or corrected."""
        return self.inserted + self.updated


@dataclass(frozen=True)
class Reject:
    """A quarantined record: its number, why, which field, and the record as received."""

    row: int
    reason: str
    field: str
    detail: str
    original: Any

    def line(self) -> str:
        """One line for the batch errors."""
        where = f", field {self.field}" if self.field else ""
        return f"record {self.row}{where}: {self.reason}: {self.detail}"


class LandingFailed(IocError):
    """Writing a fetch failed and was rolled back; its batch is marked failed."""

    code = "landing_failed"

    def __init__(self, detail: str, batch_id: int) -> None:
        super().__init__(detail, batch_id=batch_id)
        self.batch_id = batch_id


class _Bad(Exception):
    def __init__(self, reason: str, field_name: str, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.field, self.detail = reason, field_name, detail


# ---------------------------------------------------------------- parsing

_EU = re.compile(r"^[+-]?\d{1,3}(\.\d{3})+(,\d+)?$")
_US = re.compile(r"^[+-]?\d{1,3}(,\d{3})+\.\d+$")
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}($|[T ])")
_NUM = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def parse_number(value: Any) -> float | None:
    """A number from JSON or a Vietnamese spreadsheet ('1.234,5', '12,5'); None when empty."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is a boolean, not a number")
    if isinstance(value, int | float):
        out = float(value)
    else:
        s = str(value).strip().replace("\u00a0", "").replace(" ", "")
        if _EU.match(s):
            s = s.replace(".", "").replace(",", ".")
        elif _US.match(s):
            s = s.replace(",", "")
        else:
            s = s.replace(",", ".", 1)
        if not _NUM.match(s):
            raise ValueError(f"{value!r} is not a number")
        out = float(s)
    if not math.isfinite(out):
        raise ValueError(f"{value!r} is not a finite number")
    return out


def _as_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    s = str(value).strip()
    if _ISO_DAY.match(s):
        try:
            return date.fromisoformat(s[:10])
        except ValueError:
            return None
    for fmt in ("%d/%m/%Y", "%d-%m-%Y"):
        try:
            return datetime.strptime(s[:10], fmt).date()
        except ValueError:
            continue
    return None


def parse_period(value: Any, frequency: str) -> tuple[date, date]:
    """(start, inclusive end) of the period a record names (see `_parse_period`)."""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        return _parse_period(value, frequency)
    # Every record of a period names it the same way: parse each spelling once.
    key = (value, frequency)
    found = _PERIODS.get(key)
    if found is None:
        found = _parse_period(value, frequency)
        if len(_PERIODS) > 10_000:
            _PERIODS.clear()
        _PERIODS[key] = found
    return found


_PERIODS: dict[tuple[str | int | float, str], tuple[date, date]] = {}


def _parse_period(value: Any, frequency: str) -> tuple[date, date]:
    """(start, inclusive end) of the period a record names, at the indicator's frequency.

    Accepts dates (2024-06-01, 01/06/2024), months (2024-06, 06/2024, 6/2024), quarters
    (2024-Q2), years (2024) and school years (2024-2025, 2024/2025, or the start year).
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError("no period")
    start: date | None = None
    s = str(value).strip()
    if isinstance(value, float) and value.is_integer():
        s = str(int(value))
    if frequency == "school_year":
        m = re.match(r"^(\d{4})\s*[-/–]\s*(\d{4})$", s)
        if m and int(m.group(2)) == int(m.group(1)) + 1:
            start = date(int(m.group(1)), 9, 1)
        elif re.match(r"^\d{4}$", s):
            start = date(int(s), 9, 1)
    elif frequency == "year" and re.match(r"^\d{4}$", s):
        start = date(int(s), 1, 1)
    elif frequency == "quarter" and (m := re.match(r"^(\d{4})\s*-?\s*[Qq]([1-4])$", s)):
        start = date(int(m.group(1)), 3 * int(m.group(2)) - 2, 1)
    elif frequency == "month" and (m := re.match(r"^(\d{4})-(\d{1,2})$", s)):
        start = _safe_date(int(m.group(1)), int(m.group(2)))
    elif frequency == "month" and (m := re.match(r"^(\d{1,2})/(\d{4})$", s)):
        start = _safe_date(int(m.group(2)), int(m.group(1)))
    if start is None:
        d = _as_date(value)
        if d is None:
            raise ValueError(f"{value!r} is not a {frequency.replace('_', ' ')}")
        start = period_floor(d, frequency)
    return start, period_end(start, frequency)


def _safe_date(year: int, month: int) -> date | None:
    try:
        return date(year, month, 1)
    except ValueError:
        return None


def unit_code(value: Any) -> str | None:
    """A unit code as text (spreadsheets turn 16681 into 16681.0)."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    s = str(value).strip()
    return s or None


# ---------------------------------------------------------------- mapping


def subject_keys(conn: Connection, subject_layer: str | None, prop: str | None) -> dict[str, str]:
    """unit code -> subject key: admin unit codes, or a layer's source keys (or a property)."""
    if subject_layer is None:
        return {c: c for c in current_unit_codes(conn)}
    layer_id = layer_id_of(conn, subject_layer)
    if layer_id is None:
        raise NotFoundError(f"subject layer '{subject_layer}' does not exist", slug=subject_layer)
    return source_keys_by(conn, layer_id, prop)


def check_indicators(mapping: dict[str, str], subject_layer: str | None) -> dict[str, str]:
    """Mapped fields whose indicator cannot take values from this connector, with the reason."""
    defs = catalog()
    bad: dict[str, str] = {}
    for fld, code in mapping.items():
        defn = defs.get(code)
        if defn is None:
            bad[fld] = f"unknown indicator '{code}'"
        elif defn.rollup == "rate":
            bad[fld] = f"indicator '{code}' is computed ({defn.numerator}/{defn.denominator})"
        elif defn.subject_layer != subject_layer:
            bad[fld] = (
                f"indicator '{code}' is about {defn.subject_layer or 'admin units'}, "
                f"not {subject_layer or 'admin units'}"
            )
    return bad


def to_observations(
    records: Sequence[Any],
    cfg: IndicatorPull | IndicatorDrop,
    keys: dict[str, str],
    row_numbers: Sequence[int] | None = None,
) -> tuple[list[ObservationIn], list[int], list[Reject]]:
    """Observations of every good record, the record index of each, and the rejects."""
    bad_indicators = check_indicators(cfg.indicators, cfg.subject_layer)
    period: PeriodSpec = cfg.period
    good: dict[int, list[ObservationIn]] = {}
    owner: dict[tuple[str, str, date], int] = {}
    rejects: list[Reject] = []
    originals: dict[int, Any] = {}
    for i, rec in enumerate(records):
        number = row_numbers[i] if row_numbers is not None else i + 1
        try:
            if not isinstance(rec, dict):
                raise _Bad("malformed_record", "", f"expected an object, got {type(rec).__name__}")
            code = unit_code(rec.get(cfg.unit_field))
            if code is None:
                raise _Bad("missing_field", cfg.unit_field, "no unit code")
            key = keys.get(code)
            if key is None:
                where = cfg.subject_layer or "admin units"
                raise _Bad("unknown_unit", cfg.unit_field, f"unit code '{code}' not in {where}")
            if period.field not in rec:
                raise _Bad("missing_field", period.field, "no period")
            try:
                start, end = parse_period(rec[period.field], period.frequency)
            except ValueError as exc:
                raise _Bad("unparsable_date", period.field, str(exc)) from exc
            mine: list[ObservationIn] = []
            for fld, ind in cfg.indicators.items():
                if fld not in rec:
                    continue
                if fld in bad_indicators:
                    raise _Bad("unknown_indicator", fld, bad_indicators[fld])
                try:
                    value = parse_number(rec[fld])
                except ValueError as exc:
                    raise _Bad("unparsable_number", fld, str(exc)) from exc
                if value is None:
                    continue
                # Fields are checked above; construct without re-validating 100k+ rows.
                mine.append(
                    ObservationIn.model_construct(
                        indicator=ind,
                        subject_layer=cfg.subject_layer,
                        subject_key=key,
                        period_start=start,
                        period_end=end,
                        value=value,
                    )
                )
            if not mine:
                raise _Bad("missing_field", ",".join(cfg.indicators), "no indicator value")
        except _Bad as bad:
            rejects.append(Reject(number, bad.reason, bad.field, bad.detail, rec))
            continue
        # The same value sent twice in one fetch: the later record is the later correction.
        for o in mine:
            earlier = owner.get((o.indicator, o.subject_key, o.period_start))
            if earlier is not None and earlier in good:
                del good[earlier]
                rejects.append(
                    Reject(earlier, "duplicate_record", "", f"superseded by record {number}",
                           originals[earlier])
                )  # fmt: skip
            owner[(o.indicator, o.subject_key, o.period_start)] = number
        good[number] = mine
        originals[number] = rec
    rows = [o for obs in good.values() for o in obs]
    origin = [n for n, obs in good.items() for _ in obs]
    rejects.sort(key=lambda r: r.row)
    return rows, origin, rejects


# ---------------------------------------------------------------- landing


def save_cursor(conn: Connection, name: str, cursor: str) -> None:
    """Move a connector's incremental cursor (inside the transaction that landed the data)."""
    save_connector_state(conn, name, cursor={"since": cursor})


def _layer_id(conn: Connection, slug: str | None) -> int | None:
    if slug is None:
        return None
    return layer_id_of(conn, slug)


def land_records(
    engine: Engine,
    cfg: IndicatorPull | IndicatorDrop,
    records: Sequence[Any],
    *,
    source: str,
    attempt: int,
    cursor: str | None = None,
    row_numbers: Sequence[int] | None = None,
) -> LandReport:
    """Write one fetch as one batch, atomically; the cursor moves with it."""
    with engine.begin() as conn:
        batch_id = create_batch(
            conn,
            layer_id=_layer_id(conn, cfg.subject_layer),
            source=source[:200],
            actor=f"connector:{cfg.name}",
            mode="upsert",
            kind="connector",
            connector=cfg.name,
            attempts=attempt,
        )
    report = LandReport(batch_id=batch_id, records=len(records))
    try:
        with engine.begin() as conn:
            keys = subject_keys(conn, cfg.subject_layer, cfg.unit_property)
            rows, origin, rejects = to_observations(records, cfg, keys, row_numbers)
            counts = upsert_observations(conn, batch_id, rows)
            if counts.rejected:
                # Our checks mirror the model's; a refusal here would half-write a record.
                first = "; ".join(f"record {origin[i]}: {why}" for i, why in counts.rejected[:5])
                raise InvalidInputError(f"{cfg.name}: observations refused: {first}")
            report.inserted, report.updated = counts.inserted, counts.updated
            report.unchanged = counts.unchanged
            report.reasons = quarantine(conn, batch_id, rejects)
            report.rejected = len(rejects)
            succeed_batch(
                conn,
                batch_id,
                cfg.name,
                cursor,
                rejects,
                counts={
                    "records": len(records),
                    "observations": len(rows),
                    "inserted": counts.inserted,
                    "updated": counts.updated,
                    "unchanged": counts.unchanged,
                    "rejected": len(rejects),
                },
                report={"source": source, "reasons": report.reasons, "cursor": cursor},
            )
    except Exception as exc:
        raise fail_batch(engine, batch_id, exc, len(records), {"source": source}) from exc
    return report


def succeed_batch(
    conn: Connection,
    batch_id: int,
    connector: str,
    cursor: str | None,
    rejects: Sequence[Reject],
    *,
    counts: dict[str, int],
    report: dict[str, Any],
) -> None:
    """Close a landed fetch's batch as succeeded; its cursor moves in the same transaction."""
    if cursor is not None:
        save_cursor(conn, connector, cursor)
    finish_batch(
        conn,
        batch_id,
        status="succeeded",
        counts=counts,
        report=report,
        errors=[r.line() for r in rejects[:MAX_ERRORS_IN_BATCH]],
    )


def fail_batch(
    engine: Engine, batch_id: int, exc: Exception, records: int, report: dict[str, Any]
) -> LandingFailed:
    """Mark a batch failed in its own transaction; the error to raise from `exc`."""
    message = exc.detail if isinstance(exc, IocError) else f"{type(exc).__name__}: {exc}"
    with engine.begin() as conn:
        finish_batch(
            conn, batch_id, status="failed", counts={"records": records},
            report=report, errors=[message],
        )  # fmt: skip
    return LandingFailed(message, batch_id)


def quarantine(conn: Connection, batch_id: int, rejects: Sequence[Reject]) -> dict[str, int]:
    """Write the rejects to import_reject; how many there are of each reason."""
    write_rejects(
        conn,
        batch_id,
        [
            (
                r.row,
                r.reason,
                (f"{r.field}: " if r.field else "") + r.detail,
                r.original if isinstance(r.original, dict) else {"value": r.original},
            )
            for r in rejects
        ],
    )
    reasons: dict[str, int] = {}
    for r in rejects:
        reasons[r.reason] = reasons.get(r.reason, 0) + 1
    return reasons


# ---------------------------------------------------------------- runs


def load_cursor(engine: Engine, name: str) -> str | None:
    """The connector's saved cursor, None before its first landed fetch."""
    with engine.connect() as conn:
        row = connector_state_row(conn, name)
    state = row["cursor"] if row else None
    cursor = (state or {}).get("since")
    return None if cursor is None else str(cursor)


def drain_spool(spool: Path, land: Callable[[list[Any], dict[str, Any]], R]) -> list[R]:
    """Land every spooled fetch (records, meta), oldest first; each file goes once landed."""
    out = []
    for path in sources.pending_records_spool(spool):
        doc = json.loads(path.read_text(encoding="utf-8"))
        out.append(land(doc.get("records") or [], doc.get("iocmap") or {}))
        path.unlink()
    return out


def run_pull(
    engine: Engine, settings: Settings, cfg: IndicatorPull, spool: Path, attempt: int
) -> list[LandReport]:
    """Land leftover fetches, then fetch what changed since the cursor and land it."""
    reports = land_spool(engine, cfg, spool, attempt)
    records, new_cursor = sources.fetch_records(cfg, load_cursor(engine, cfg.name))
    if not records:
        return reports
    sources.write_records_spool(
        spool, records, {"cursor": new_cursor, "count": len(records), "url": cfg.url}
    )
    return reports + land_spool(engine, cfg, spool, attempt)


def land_spool(engine: Engine, cfg: IndicatorPull, spool: Path, attempt: int) -> list[LandReport]:
    """Land every spooled fetch, oldest first; each file is deleted once it has landed."""
    return drain_spool(
        spool,
        lambda records, meta: land_records(
            engine,
            cfg,
            records,
            source=f"{cfg.name}: {meta.get('url', cfg.url)}",
            attempt=attempt,
            cursor=meta.get("cursor"),
        ),
    )


def read_table(path: Path, sheet: str | None) -> tuple[list[dict[str, Any]], list[int]]:
    """Rows of a CSV/XLSX export keyed by accent-free snake_case headers, with sheet row numbers."""
    from ingest.tabular import read_csv, read_xlsx

    suffix = path.suffix.lower()
    if suffix not in (".xlsx", ".csv", ".txt"):
        raise InvalidInputError(f"{path.name}: only CSV and XLSX exports are read")
    try:
        if suffix == ".xlsx":
            table, _notes, _sheet = read_xlsx(path, sheet)
        else:
            table, _notes, _delim = read_csv(path, None)
    except IocError:
        raise
    except Exception as exc:  # openpyxl/arrow errors: the file is unreadable, not transient
        raise InvalidInputError(
            f"{path.name}: cannot be read: {type(exc).__name__}: {exc}"
        ) from exc
    names = [normalise_header(n).replace(" ", "_") for n in table.column_names]
    rows = [dict(zip(names, row.values(), strict=True)) for row in table.to_pylist()]
    return rows, [i + 2 for i in range(len(rows))]  # row 1 is the header


def run_drop(
    engine: Engine, settings: Settings, cfg: IndicatorDrop, attempt: int
) -> tuple[list[LandReport], list[str], str | None]:
    """Land each waiting export; move it to done/ or failed/ with its report."""
    folder = cfg.path if cfg.path.is_absolute() else settings.state_dir / cfg.path
    reports: list[LandReport] = []
    moved: list[str] = []
    failure: str | None = None
    for path in list(sources.drop_files(folder, cfg.patterns, cfg.settle_s)):
        try:
            records, numbers = read_table(path, cfg.sheet)
            rep = land_records(
                engine, cfg, records, source=f"{cfg.name}: {path.name}", attempt=attempt,
                row_numbers=numbers,
            )  # fmt: skip
        except IocError as exc:
            _move(path, folder / "failed", {"file": path.name, "error": exc.detail}, ".error.json")
            moved.append(f"failed/{path.name}")
            failure = exc.detail
            continue
        reports.append(rep)
        _move(
            path,
            folder / "done",
            {"file": path.name, "batch_id": rep.batch_id, "records": rep.records,
             "inserted": rep.inserted, "updated": rep.updated, "unchanged": rep.unchanged,
             "rejected": rep.rejected, "reasons": rep.reasons},
            ".report.json",
        )  # fmt: skip
        moved.append(f"done/{path.name}")
    return reports, moved, failure


def _move(path: Path, target_dir: Path, report: dict[str, Any], suffix: str) -> None:
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / path.name
    shutil.move(str(path), target)
    target.with_name(target.name + suffix).write_text(
        json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8"
    )
