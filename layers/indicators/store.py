"""Sector indicators: definitions, observation upserts with history, and computed roll-ups.

Observations are stored once, at the subject they were measured on (a feature of a layer,
or an admin unit). Everything above that (communes, the province, coarser periods, rates)
is computed at read time, so a late correction shows up everywhere at once.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict
from sqlalchemy import (
    ColumnElement,
    Connection,
    Date,
    Text,
    cast,
    delete,
    func,
    literal_column,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by, insert

from layers.errors import InvalidInputError, NotFoundError
from layers.indicators import catalog as indicator_catalog
from layers.models.indicators import (
    indicator,
    indicator_job_state,
    indicator_observation,
    indicator_observation_revision,
    indicator_subject,
)
from layers.sql import any_of

Frequency = Literal["day", "month", "quarter", "year", "school_year"]
Rollup = Literal["sum", "mean", "rate"]
Level = Literal["feature", "commune", "province"]
LEVELS: tuple[Level, ...] = ("feature", "commune", "province")
GRAINS: tuple[Frequency, ...] = ("day", "month", "quarter", "year", "school_year")
# Which coarser grains each frequency converts to (a school year does not nest in calendar
# quarters or years, so those conversions are refused rather than guessed).
_COARSER: dict[str, frozenset[str]] = {
    "day": frozenset(GRAINS),
    "month": frozenset({"month", "quarter", "year", "school_year"}),
    "quarter": frozenset({"quarter", "year"}),
    "year": frozenset({"year"}),
    "school_year": frozenset({"school_year"}),
}
# Values per response are a dense subjects x periods matrix: refuse absurd requests.
MAX_CELLS = 5_000_000
F64 = NDArray[np.float64]


class IndicatorDef(BaseModel):
    """One indicator of the catalog."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str
    name_vi: str
    name_en: str
    unit: str
    sector: str
    source_system: str
    frequency: Frequency
    rollup: Rollup
    numerator: str | None = None
    denominator: str | None = None
    scale: float = 1.0
    higher_is_better: bool | None = None
    subject_layer: str | None = None  # None: the subjects are admin units


class ObservationIn(BaseModel):
    """One value of an indicator for a subject and a period (period_end inclusive)."""

    model_config = ConfigDict(extra="forbid")

    indicator: str
    subject_layer: str | None  # None: subject_key is an admin_unit code
    subject_key: str
    period_start: date
    period_end: date
    value: float


@dataclass
class ObservationCounts:
    """What an upsert did; rejected rows are (row index, reason) and were not written."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Subject:
    """A row of an IndicatorValues matrix: a feature, a commune or the province."""

    key: str
    name: str
    level: Level
    layer: str | None
    commune_code: str | None
    lng: float | None
    lat: float | None


@dataclass
class IndicatorValues:
    """Values of an indicator at a level and grain: values[i, j] is subjects[i] at periods[j]."""

    indicator: IndicatorDef
    level: Level
    grain: Frequency
    periods: list[date]
    subjects: list[Subject]
    values: F64


# --- catalog --------------------------------------------------------------------------------


@cache
def catalog() -> dict[str, IndicatorDef]:
    """The catalog's definitions by code, in catalog order."""
    return {d["code"]: IndicatorDef(**d) for d in indicator_catalog.INDICATORS}


def sectors() -> list[dict[str, str]]:
    """The sectors as {code, name_vi, name_en}."""
    return [{"code": c, "name_vi": vi, "name_en": en} for c, vi, en in indicator_catalog.SECTORS]


def get_indicator(code: str) -> IndicatorDef:
    """The definition of `code`, or NotFoundError."""
    try:
        return catalog()[code]
    except KeyError:
        close = difflib.get_close_matches(code, list(catalog()), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise NotFoundError(
            f"unknown indicator '{code}'{hint} (GET /api/indicators lists them)",
            close=", ".join(close),
            indicator=code,
            i18n="err.indicators_store.unknown_indicator_close"
            if close
            else "err.indicators_store.unknown_indicator",
        ) from None


def is_stock(code: str) -> bool:
    """Whether a coarser period takes the last value (end-of-period stock) instead of the sum."""
    return code in indicator_catalog.STOCK_CODES


def levels_for(defn: IndicatorDef) -> list[Level]:
    """Roll-up levels an indicator can be read at (feature only for feature subjects)."""
    return ["feature", "commune", "province"] if defn.subject_layer else ["commune", "province"]


def _catalog_row(d: IndicatorDef) -> dict[str, Any]:
    row = d.model_dump()
    row["stock"] = is_stock(d.code)
    return row


def sync_catalog(conn: Connection) -> int:
    """Write the catalog into the `indicator` table where it differs; returns rows written."""
    cols = [c.name for c in indicator.c if c.name != "updated_at"]
    have = {
        r["code"]: dict(r) for r in conn.execute(select(*[indicator.c[c] for c in cols])).mappings()
    }
    changed = [
        row for row in (_catalog_row(d) for d in catalog().values()) if have.get(row["code"]) != row
    ]
    if not changed:
        return 0
    stmt = insert(indicator).values(changed)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[indicator.c.code],
            set_={c: stmt.excluded[c] for c in cols if c != "code"} | {"updated_at": text("now()")},
        )
    )
    return len(changed)


def list_indicators(conn: Connection) -> list[IndicatorDef]:
    """Every indicator definition, in catalog order (syncing the table first)."""
    sync_catalog(conn)
    return list(catalog().values())


# --- periods --------------------------------------------------------------------------------

# Periods are the province's calendar days and months.
PERIOD_TZ = "Asia/Ho_Chi_Minh"


def today_local() -> date:
    """Today in the province (periods are local calendar days)."""
    return datetime.now(ZoneInfo(PERIOD_TZ)).date()


def accumulates(defn: IndicatorDef) -> bool:
    """Whether a period's value grows while the period runs (flows counted day by day).

    Stocks and once-a-period figures (school-year and yearly surveys) are whole as soon as
    they are reported, so they are never "in progress".
    """
    return defn.frequency in ("day", "month", "quarter") and not is_stock(defn.code)


def in_progress_from(defn: IndicatorDef, grain: str, today: date | None = None) -> date | None:
    """Start of the `grain` period still running today, for accumulating indicators; else None."""
    if not accumulates(defn):
        return None
    return period_floor(today or today_local(), grain)


def period_floor(d: date, grain: str) -> date:
    """Start of the `grain` period that contains `d`."""
    if grain == "day":
        return d
    if grain == "month":
        return d.replace(day=1)
    if grain == "quarter":
        return date(d.year, (d.month - 1) // 3 * 3 + 1, 1)
    if grain == "year":
        return date(d.year, 1, 1)
    if grain == "school_year":
        return date(d.year if d.month >= 9 else d.year - 1, 9, 1)
    raise InvalidInputError(
        f"unknown grain '{grain}'; use one of {', '.join(GRAINS)}",
        i18n="err.indicators_store.unknown_grain_use_one",
        grain=grain,
        items=", ".join(GRAINS),
    )


def _add_months(d: date, months: int) -> date:
    m = d.month - 1 + months
    return date(d.year + m // 12, m % 12 + 1, 1)


def next_period(start: date, grain: str) -> date:
    """Start of the period after the one starting at `start`."""
    if grain == "day":
        return start + timedelta(days=1)
    step = {"month": 1, "quarter": 3, "year": 12, "school_year": 12}[grain]
    return _add_months(start, step)


def shift_period(start: date, grain: str, n: int) -> date:
    """Start of the period `n` periods after (n < 0: before) the one starting at `start`."""
    if grain == "day":
        return start + timedelta(days=n)
    step = {"month": 1, "quarter": 3, "year": 12, "school_year": 12}[grain]
    return _add_months(start, step * n)


def period_end(start: date, grain: str) -> date:
    """Inclusive last day of the period starting at `start`."""
    return next_period(start, grain) - timedelta(days=1)


def period_range(first: date, last: date, grain: str) -> list[date]:
    """Starts of every `grain` period from the one holding `first` to the one holding `last`."""
    out: list[date] = []
    p = period_floor(first, grain)
    while p <= last:
        out.append(p)
        p = next_period(p, grain)
    return out


def _period_problem(defn: IndicatorDef, start: date, end: date) -> str | None:
    if end < start:
        return f"period_end {end} is before period_start {start}"
    if period_floor(start, defn.frequency) != start or period_end(start, defn.frequency) != end:
        return (
            f"period {start}..{end} is not one {defn.frequency} "
            f"(expected {period_floor(start, defn.frequency)}.."
            f"{period_end(period_floor(start, defn.frequency), defn.frequency)})"
        )
    return None


def resolve_grain(defn: IndicatorDef, grain: str | None) -> Frequency:
    """The grain to read at: the indicator's frequency by default, or a coarser one."""
    if grain is None:
        return defn.frequency
    if grain not in _COARSER:
        raise InvalidInputError(
            f"unknown grain '{grain}'; use one of {', '.join(GRAINS)}",
            i18n="err.indicators_store.unknown_grain_use_one",
            grain=grain,
            items=", ".join(GRAINS),
        )
    if grain not in _COARSER[defn.frequency]:
        raise InvalidInputError(
            f"indicator '{defn.code}' is {defn.frequency}ly data; it cannot be read by {grain}",
            i18n="err.indicators_store.indicator_ly_data_it_cannot",
            indicator=defn.code,
            frequency=defn.frequency,
            grain=grain,
        )
    return grain  # type: ignore[return-value]


# --- writes ---------------------------------------------------------------------------------

_UPSERT_SQL = text(
    """
    WITH incoming AS (
        SELECT * FROM unnest(
            CAST(:codes AS text[]), CAST(:sids AS integer[]), CAST(:starts AS date[]),
            CAST(:ends AS date[]), CAST(:vals AS double precision[])
        ) AS t(indicator_code, subject_id, period_start, period_end, value)
    ), old AS (
        SELECT o.indicator_code, o.subject_id, o.period_start, o.period_end, o.value,
               o.import_batch_id, o.updated_at
        FROM indicator_observation o
        JOIN incoming i USING (indicator_code, subject_id, period_start)
    ), up AS (
        INSERT INTO indicator_observation AS o
            (indicator_code, subject_id, period_start, period_end, value, import_batch_id)
        SELECT indicator_code, subject_id, period_start, period_end, value, :batch
        FROM incoming
        ON CONFLICT (indicator_code, subject_id, period_start) DO UPDATE
        SET value = EXCLUDED.value, period_end = EXCLUDED.period_end,
            import_batch_id = EXCLUDED.import_batch_id, updated_at = now()
        WHERE (o.value, o.period_end) IS DISTINCT FROM (EXCLUDED.value, EXCLUDED.period_end)
        RETURNING o.indicator_code, o.subject_id, o.period_start
    ), rev AS (
        INSERT INTO indicator_observation_revision
            (indicator_code, subject_id, period_start, period_end, value, import_batch_id,
             written_at, replaced_by_batch_id)
        SELECT old.indicator_code, old.subject_id, old.period_start, old.period_end, old.value,
               old.import_batch_id, old.updated_at, :batch
        FROM up JOIN old USING (indicator_code, subject_id, period_start)
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM up) - (SELECT count(*) FROM rev), (SELECT count(*) FROM rev)
    """
)
_CHUNK = 20_000


def _subject_label(layer_slug: str | None, key: str) -> str:
    return f"{layer_slug}/{key}" if layer_slug else f"admin unit {key}"


def _lookup_subjects(
    conn: Connection, wanted: set[tuple[str | None, str]]
) -> dict[tuple[str | None, str], tuple[str | None, bool]]:
    """(layer, key) -> (commune_code, is_province) for the subjects that exist."""
    found: dict[tuple[str | None, str], tuple[str | None, bool]] = {}
    by_layer: dict[str | None, list[str]] = {}
    for lay, key in wanted:
        by_layer.setdefault(lay, []).append(key)
    for lay, keys in by_layer.items():
        if lay is None:
            rows = conn.execute(
                text(
                    "SELECT code, level FROM admin_unit "
                    "WHERE code = ANY(CAST(:keys AS text[])) AND valid_to IS NULL"
                ),
                {"keys": keys},
            )
            for code, level in rows:
                prov = level == "province"
                found[(None, code)] = (None if prov else code, prov)
        else:
            rows = conn.execute(
                text(
                    "SELECT f.source_key, f.properties->>'commune_code' FROM feature f "
                    "JOIN layer l ON l.id = f.layer_id "
                    "WHERE l.slug = :slug AND f.source_key = ANY(CAST(:keys AS text[]))"
                ),
                {"slug": lay, "keys": keys},
            )
            for key, commune in rows:
                found[(lay, key)] = (commune, False)
    return found


SUBJECT_CHUNK = 5_000


def _subject_ids(
    conn: Connection, subjects: dict[tuple[str | None, str], tuple[str | None, bool]]
) -> dict[tuple[str | None, str], int]:
    """Ids of the subjects, creating them and refreshing their commune as needed."""
    if not subjects:
        return {}
    rows = [
        {"layer": lay or "", "key": key, "commune_code": commune, "is_province": prov}
        for (lay, key), (commune, prov) in subjects.items()
    ]
    # Chunks keep each statement's parameter count (4 per row) far below PostgreSQL's 65,535.
    for i in range(0, len(rows), SUBJECT_CHUNK):
        stmt = insert(indicator_subject).values(rows[i : i + SUBJECT_CHUNK])
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[indicator_subject.c.layer, indicator_subject.c.key],
                set_={"commune_code": stmt.excluded.commune_code},
                # Only rewrite rows whose feature moved to another commune.
                where=indicator_subject.c.commune_code.is_distinct_from(stmt.excluded.commune_code),
            )
        )
    by_layer: dict[str, list[str]] = {}
    for lay, key in subjects:
        by_layer.setdefault(lay or "", []).append(key)
    ids: dict[tuple[str | None, str], int] = {}
    for lay, keys in by_layer.items():
        for sid, key in conn.execute(
            select(indicator_subject.c.id, indicator_subject.c.key).where(
                indicator_subject.c.layer == lay, any_of(indicator_subject.c.key, keys, Text)
            )
        ):
            ids[(lay or None, key)] = sid
    return ids


def upsert_observations(
    conn: Connection, batch_id: int | None, rows: Sequence[ObservationIn]
) -> ObservationCounts:
    """Insert or correct observations in place, recording every change of value with its batch.

    Rows with an unknown indicator or subject, a computed (rate) indicator, a period that is
    not one period of the indicator's frequency or a non-finite value are rejected with
    their index and reason; the others are written.
    """
    counts = ObservationCounts()
    defs = catalog()
    valid: dict[tuple[str, str | None, str, date], int] = {}
    for i, row in enumerate(rows):
        defn = defs.get(row.indicator)
        if defn is None:
            counts.rejected.append((i, f"unknown indicator '{row.indicator}'"))
            continue
        if defn.rollup == "rate":
            counts.rejected.append(
                (
                    i,
                    f"computed indicator '{row.indicator}' "
                    f"(= {defn.numerator} / {defn.denominator}); send its parts",
                )
            )
            continue
        if row.subject_layer != defn.subject_layer:
            about = defn.subject_layer or "admin units"
            got = row.subject_layer or "an admin unit"
            counts.rejected.append((i, f"indicator '{row.indicator}' is about {about}, not {got}"))
            continue
        problem = _period_problem(defn, row.period_start, row.period_end)
        if problem:
            counts.rejected.append((i, problem))
            continue
        if not math.isfinite(row.value):
            counts.rejected.append((i, f"value {row.value} is not a finite number"))
            continue
        key = (row.indicator, row.subject_layer, row.subject_key, row.period_start)
        if key in valid:
            # The later row is the later correction; the earlier one is not written.
            counts.rejected.append((valid[key], f"superseded by row {i} of the same batch"))
        valid[key] = i
    if not valid:
        counts.rejected.sort()
        return counts

    wanted = {(lay, key) for (_, lay, key, _) in valid}
    found = _lookup_subjects(conn, wanted)
    for k, i in list(valid.items()):
        if (k[1], k[2]) not in found:
            counts.rejected.append((i, f"unknown subject {_subject_label(k[1], k[2])}"))
            del valid[k]
    counts.rejected.sort()
    if not valid:
        return counts

    sync_catalog(conn)
    ids = _subject_ids(conn, {s: found[s] for s in {(k[1], k[2]) for k in valid}})
    order = sorted(valid.values())
    for lo in range(0, len(order), _CHUNK):
        chunk = [rows[i] for i in order[lo : lo + _CHUNK]]
        ins, upd = conn.execute(
            _UPSERT_SQL,
            {
                "codes": [r.indicator for r in chunk],
                "sids": [ids[(r.subject_layer, r.subject_key)] for r in chunk],
                "starts": [r.period_start for r in chunk],
                "ends": [r.period_end for r in chunk],
                "vals": [float(r.value) for r in chunk],
                "batch": batch_id,
            },
        ).one()
        counts.inserted += int(ins)
        counts.updated += int(upd)
    counts.unchanged = len(valid) - counts.inserted - counts.updated
    return counts


def observation_history(
    conn: Connection, code: str, subject_layer: str | None, subject_key: str, period_start: date
) -> list[dict[str, Any]]:
    """Every value one observation has had, oldest first (the last is the current one).

    Each entry: value, period_end, import_batch_id (the batch that wrote it), written_at.
    """
    params = {"code": code, "layer": subject_layer or "", "key": subject_key, "ps": period_start}
    old = conn.execute(
        text(
            "SELECT r.value, r.period_end, r.import_batch_id, r.written_at "
            "FROM indicator_observation_revision r "
            "JOIN indicator_subject s ON s.id = r.subject_id "
            "WHERE r.indicator_code = :code AND s.layer = :layer AND s.key = :key "
            "AND r.period_start = :ps ORDER BY r.id"
        ),
        params,
    ).mappings()
    cur = conn.execute(
        text(
            "SELECT o.value, o.period_end, o.import_batch_id, o.updated_at AS written_at "
            "FROM indicator_observation o JOIN indicator_subject s ON s.id = o.subject_id "
            "WHERE o.indicator_code = :code AND s.layer = :layer AND s.key = :key "
            "AND o.period_start = :ps"
        ),
        params,
    ).mappings()
    return [dict(r) for r in old] + [dict(r) for r in cur]


def delete_observations(
    conn: Connection, code: str, start: date | None = None, end: date | None = None
) -> int:
    """Remove an indicator's observations and their history in a period range."""
    n = 0
    for table in (indicator_observation_revision, indicator_observation):
        stmt = delete(table).where(table.c.indicator_code == code)
        if start is not None:
            stmt = stmt.where(table.c.period_start >= start)
        if end is not None:
            stmt = stmt.where(table.c.period_start <= end)
        n = conn.execute(stmt).rowcount
    return n


# --- reads ----------------------------------------------------------------------------------


def _province_code(conn: Connection) -> str:
    code = conn.execute(
        text("SELECT code FROM admin_unit WHERE level = 'province' AND valid_to IS NULL LIMIT 1")
    ).scalar()
    return str(code) if code is not None else "40"


def _subjects_at(
    conn: Connection, defn: IndicatorDef, level: Level, keys: Sequence[str] | None
) -> list[Subject]:
    """The subjects of a level in key order (all of them, or those named by `keys`)."""
    params: dict[str, Any] = {"keys": list(keys) if keys is not None else None}
    filt = "AND (CAST(:keys AS text[]) IS NULL OR {col} = ANY(CAST(:keys AS text[])))"
    if level == "feature":
        if defn.subject_layer is None:
            raise InvalidInputError(
                f"indicator '{defn.code}' is measured on admin units; use level commune or province",
                i18n="err.indicators_store.indicator_measured_on_admin_units",
                indicator=defn.code,
            )
        params["slug"] = defn.subject_layer
        sql = (
            "SELECT f.source_key AS key, "
            "COALESCE(f.properties->>'name', f.properties->>'title', f.source_key) AS name, "
            "f.properties->>'commune_code' AS commune_code, "
            "ST_X(ST_PointOnSurface(f.geom)) AS lng, ST_Y(ST_PointOnSurface(f.geom)) AS lat "
            "FROM feature f JOIN layer l ON l.id = f.layer_id "
            "WHERE l.slug = :slug AND f.source_key IS NOT NULL "
            + filt.format(col="f.source_key")
            + " ORDER BY f.source_key"
        )
    else:
        params["level"] = level
        sql = (
            "SELECT code AS key, name, CASE WHEN level = 'commune' THEN code END AS commune_code, "
            "ST_X(ST_PointOnSurface(geom)) AS lng, ST_Y(ST_PointOnSurface(geom)) AS lat "
            "FROM admin_unit WHERE level = :level AND valid_to IS NULL "
            + filt.format(col="code")
            + " ORDER BY code"
        )
    out = [
        Subject(
            key=r["key"],
            name=r["name"],
            level=level,
            layer=defn.subject_layer if level == "feature" else None,
            commune_code=r["commune_code"],
            lng=r["lng"],
            lat=r["lat"],
        )
        for r in conn.execute(text(sql), params).mappings()
    ]
    if keys is not None:
        missing = sorted(set(keys) - {s.key for s in out})
        if missing:
            what = defn.subject_layer if level == "feature" else level
            raise NotFoundError(
                f"unknown {what} subject(s) {', '.join(missing)} for indicator '{defn.code}'",
                subjects=missing,
                i18n="err.indicators_store.unknown_subject_for_indicator",
                what=what,
                items=", ".join(missing),
                indicator=defn.code,
            )
    return out


def _bucket(col: ColumnElement[date], grain: str) -> ColumnElement[date]:
    """SQL for the start of the `grain` period that `col` falls in."""
    if grain == "day":
        return col
    if grain == "school_year":
        # 1 Sept -> 31 Aug: shift back 8 months, take the calendar year, shift forward again.
        eight: ColumnElement[Any] = literal_column("interval '8 months'")
        return cast(func.date_trunc("year", col - eight) + eight, Date)
    return cast(func.date_trunc(grain, col), Date)


@dataclass(frozen=True)
class _Scope:
    """Which stored subjects a read needs: all, a layer's features, or some units of a level."""

    level: Level
    subject_layer: str | None
    units: tuple[str, ...] | None


def _fetch_buckets(
    conn: Connection, code: str, grain: str, lo: date | None, hi: date | None, scope: _Scope
) -> pd.DataFrame:
    """Per (subject, period of `grain`): the subject's value, converted from its frequency."""
    o, s = indicator_observation, indicator_subject
    v: ColumnElement[float]
    if is_stock(code):
        v = func.array_agg(aggregate_order_by(o.c.value, o.c.period_start.desc()))[1]
    elif get_indicator(code).rollup == "mean":
        v = func.avg(o.c.value)
    else:
        v = func.sum(o.c.value)
    p = _bucket(o.c.period_start, grain).label("p")
    stmt = (
        select(s.c.layer, s.c.key, s.c.commune_code, s.c.is_province, p, v.label("v"))
        .select_from(o.join(s, s.c.id == o.c.subject_id))
        .where(o.c.indicator_code == code)
        .group_by(s.c.id, p)
    )
    if lo is not None:
        stmt = stmt.where(o.c.period_start >= lo)
    if hi is not None:
        stmt = stmt.where(o.c.period_start < hi)
    if scope.level == "feature":
        stmt = stmt.where(s.c.layer == (scope.subject_layer or ""))
        if scope.units is not None:
            stmt = stmt.where(s.c.key.in_(scope.units))
    elif scope.level == "commune" and scope.units is not None:
        stmt = stmt.where(s.c.commune_code.in_(scope.units))
    rows = conn.execute(stmt).all()
    return pd.DataFrame(
        [tuple(r) for r in rows], columns=["layer", "key", "commune_code", "is_province", "p", "v"]
    ).astype({"v": "float64", "is_province": "bool"})


def _at_level(
    df: pd.DataFrame, code: str, level: Level, subject_layer: str | None, province: str
) -> pd.Series:
    """Values indexed by (unit, period) at `level`: sums (or means) over the level's subjects."""
    how = "mean" if get_indicator(code).rollup == "mean" else "sum"
    if df.empty:
        return pd.Series(dtype="float64", index=pd.MultiIndex.from_arrays([[], []]))
    if level == "feature":
        part = df[df["layer"] == (subject_layer or "")]
        return part.groupby(["key", "p"])["v"].agg(how)
    if level == "commune":
        part = df[df["commune_code"].notna() & ~df["is_province"]]
        return part.groupby(["commune_code", "p"])["v"].agg(how)
    units = df[~df["is_province"]].assign(unit=province)
    rolled = units.groupby(["unit", "p"])["v"].agg(how)
    own = df[df["is_province"]].assign(unit=province).groupby(["unit", "p"])["v"].agg(how)
    # A value typed in for the province only stands in for periods no commune reported.
    return rolled.combine_first(own)


def _level_series(
    conn: Connection,
    defn: IndicatorDef,
    level: Level,
    grain: str,
    lo: date | None,
    hi: date | None,
    units: Sequence[str] | None,
) -> pd.Series:
    province = _province_code(conn) if level == "province" else ""
    scope = _Scope(level, defn.subject_layer, tuple(units) if units is not None else None)

    def base(code: str) -> pd.Series:
        rows = _fetch_buckets(conn, code, grain, lo, hi, scope)
        return _at_level(rows, code, level, defn.subject_layer, province)

    if defn.rollup != "rate":
        return base(defn.code)
    assert defn.numerator and defn.denominator
    num, den = base(defn.numerator), base(defn.denominator)
    if num.empty or den.empty:
        # An input with no rows has a plain index that cannot align with the other's levels.
        return (num if num.empty else den).astype("float64")
    num, den = num.align(den, join="inner")
    ok = den.to_numpy() > 0
    vals = np.full(len(num), np.nan)
    vals[ok] = num.to_numpy()[ok] / den.to_numpy()[ok] * defn.scale
    return pd.Series(vals, index=num.index, dtype="float64")


def indicator_values(
    conn: Connection,
    code: str,
    *,
    level: Level,
    start: date | None = None,
    end: date | None = None,
    grain: str | None = None,
    subjects: Sequence[str] | None = None,
) -> IndicatorValues:
    """Values of `code` at a roll-up level and grain, as a subjects x periods matrix (NaN gaps).

    Periods run continuously from `start` (or the first period with data) to `end` (or the
    last period with data); rates are sum(numerator) / sum(denominator) x scale at the level.
    """
    defn = get_indicator(code)
    if level not in LEVELS:
        raise InvalidInputError(
            f"unknown level '{level}'; use one of {', '.join(LEVELS)}",
            i18n="err.indicators_store.unknown_level_use_one",
            level=level,
            items=", ".join(LEVELS),
        )
    g = resolve_grain(defn, grain)
    if start and end and end < start:
        raise InvalidInputError(
            f"end {end} is before start {start}",
            i18n="err.indicators_store.end_before_start",
            end=end,
            start=start,
        )
    subs = _subjects_at(conn, defn, level, subjects)
    lo = period_floor(start, g) if start else None
    hi = next_period(period_floor(end, g), g) if end else None
    series = _level_series(conn, defn, level, g, lo, hi, subjects).dropna()
    if series.empty:
        first, last = lo, (period_floor(end, g) if end else None)
    else:
        got = sorted(set(series.index.get_level_values(1)))
        first, last = lo or got[0], (period_floor(end, g) if end else got[-1])
    periods = period_range(first, last, g) if first and last else []
    if len(subs) * len(periods) > MAX_CELLS:
        raise InvalidInputError(
            f"{len(subs)} subjects x {len(periods)} periods is too many values; "
            "narrow the period, pick subjects or use a coarser grain",
            i18n="err.indicators_store.subjects_x_periods_too_many",
            subjects=len(subs),
            periods=len(periods),
        )
    values = np.full((len(subs), len(periods)), np.nan)
    if not series.empty and periods and subs:
        row_of = {s.key: i for i, s in enumerate(subs)}
        col_of = {p: j for j, p in enumerate(periods)}
        units = series.index.get_level_values(0)
        starts = series.index.get_level_values(1)
        for unit, p, v in zip(units, starts, series.to_numpy(), strict=True):
            i, j = row_of.get(str(unit)), col_of.get(p)
            if i is not None and j is not None:
                values[i, j] = v
    return IndicatorValues(
        indicator=defn, level=level, grain=g, periods=periods, subjects=subs, values=values
    )


def latest_periods(conn: Connection) -> dict[str, date | None]:
    """The last period start with data for every indicator (rates: where both parts have it)."""
    have: dict[str, date] = {
        code: p
        for code, p in conn.execute(
            text(
                "SELECT c.code, (SELECT max(o.period_start) FROM indicator_observation o "
                "WHERE o.indicator_code = c.code) FROM unnest(CAST(:codes AS text[])) AS c(code)"
            ),
            {"codes": list(catalog())},
        )
        if p is not None
    }
    out: dict[str, date | None] = {}
    for code, d in catalog().items():
        if d.rollup == "rate":
            assert d.numerator and d.denominator
            a, b = have.get(d.numerator), have.get(d.denominator)
            out[code] = min(a, b) if a and b else None
        else:
            out[code] = have.get(code)
    return out


# --- derived indicators (computed from our own layers; run by analytics.kpi_jobs) -----------

# Resolved field reports per commune and local day of resolution; on-time ones are a subset.
_RESOLVED_REPORTS = (
    "SELECT properties->>'commune_code', "
    "(CAST(properties->>'resolved_at' AS timestamptz) AT TIME ZONE :tz)::date, count(*) "
    "FROM feature WHERE layer_id = :lid AND properties->>'commune_code' IS NOT NULL "
    "AND properties->>'status' = 'resolved' AND properties->>'resolved_at' IS NOT NULL "
)
# News items placed on a commune, per commune and local day of publication.
_PLACED_NEWS = (
    "SELECT properties->>'commune_code', "
    "(CAST(properties->>'published_at' AS timestamptz) AT TIME ZONE :tz)::date, count(*) "
    "FROM feature WHERE layer_id = :lid AND properties->>'commune_code' IS NOT NULL "
    "AND properties->>'published_at' IS NOT NULL "
    "AND COALESCE(properties->>'match', 'matched') = 'matched' "
)

# code -> (source layer, subject layer or None for communes, SQL giving (subject, day, value)).
# Days are local days of `:tz`; only features of the source layer (`:lid`) are read.
_DERIVED_SQL: dict[str, tuple[str, str | None, str]] = {
    "pa_received": (
        "field_reports",
        None,
        "SELECT properties->>'commune_code', "
        "(CAST(properties->>'received_at' AS timestamptz) AT TIME ZONE :tz)::date, count(*) "
        "FROM feature WHERE layer_id = :lid AND properties->>'commune_code' IS NOT NULL "
        "AND properties->>'received_at' IS NOT NULL GROUP BY 1, 2",
    ),
    "pa_resolved": ("field_reports", None, _RESOLVED_REPORTS + "GROUP BY 1, 2"),
    "pa_on_time": (
        "field_reports",
        None,
        _RESOLVED_REPORTS + "AND properties->>'due_at' IS NOT NULL "
        "AND CAST(properties->>'resolved_at' AS timestamptz) "
        "<= CAST(properties->>'due_at' AS timestamptz) GROUP BY 1, 2",
    ),
    "tt_news": ("news_items", None, _PLACED_NEWS + "GROUP BY 1, 2"),
    "tt_news_negative": (
        "news_items",
        None,
        _PLACED_NEWS + "AND properties->>'sentiment' = 'negative' GROUP BY 1, 2",
    ),
    "gt_vehicles": (
        "traffic_counts",
        "cameras",
        "SELECT properties->>'camera_id', "
        "(CAST(properties->>'minute' AS timestamptz) AT TIME ZONE :tz)::date, "
        "sum(CAST(properties->>'count' AS double precision)) "
        "FROM feature WHERE layer_id = :lid AND properties->>'camera_id' IS NOT NULL "
        "AND properties->>'minute' IS NOT NULL "
        # observed_at is the minute: an indexed range for incremental runs.
        "AND (CAST(:since AS timestamptz) IS NULL OR observed_at >= :since) GROUP BY 1, 2",
    ),
}


# Sources big and append-mostly enough to be refreshed by recent days between full runs.
INCREMENTAL_SOURCES = frozenset({"traffic_counts"})


def derived_codes() -> dict[str, str]:
    """Derived indicator code -> the layer it is computed from."""
    return {code: src for code, (src, _, _) in _DERIVED_SQL.items()}


def layer_version(conn: Connection, slug: str) -> tuple[int, int] | None:
    """(layer id, data_version) of a layer, or None when it does not exist (yet)."""
    row = conn.execute(
        text("SELECT id, data_version FROM layer WHERE slug = :s"), {"s": slug}
    ).one_or_none()
    return (int(row[0]), int(row[1])) if row else None


def job_version(conn: Connection, job: str) -> int | None:
    """The source data_version a derived job last computed from."""
    v = conn.execute(
        select(indicator_job_state.c.source_version).where(indicator_job_state.c.job == job)
    ).scalar()
    return int(v) if v is not None else None


def job_refreshed_at(conn: Connection, job: str) -> datetime | None:
    """When a derived job last ran to completion."""
    v = conn.execute(
        select(indicator_job_state.c.refreshed_at).where(indicator_job_state.c.job == job)
    ).scalar()
    return v if isinstance(v, datetime) else None


def set_job_version(conn: Connection, job: str, version: int, at: datetime | None = None) -> None:
    """Record that `job` is up to date with its source's data_version (as of `at`, or now)."""
    # The caller's clock when given: the job compares it with its own clock later.
    when: Any = at if at is not None else text("now()")
    stmt = insert(indicator_job_state).values(job=job, source_version=version, refreshed_at=when)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[indicator_job_state.c.job],
            set_={"source_version": version, "refreshed_at": when},
        )
    )


def derived_observations(
    conn: Connection, code: str, tz: str, since: date | None = None
) -> list[ObservationIn]:
    """A derived indicator recomputed from its source layer, as daily observations.

    Subject-days that had a value before but no longer have any source rows come back
    as 0, so a deleted or moved feature is reflected and reruns are idempotent. With
    `since` (incremental sources only), only local days from `since` on are recomputed.
    """
    src, subject_layer, sql = _DERIVED_SQL[code]
    lv = layer_version(conn, src)
    if lv is None:
        return []
    if src not in INCREMENTAL_SOURCES:
        since = None
    since_ts = datetime.combine(since, datetime.min.time(), tzinfo=ZoneInfo(tz)) if since else None
    fresh: dict[tuple[str, date], float] = {
        (str(k), d): float(v)
        for k, d, v in conn.execute(text(sql), {"lid": lv[0], "tz": tz, "since": since_ts})
        if k is not None and d is not None and (since is None or d >= since)
    }
    old = conn.execute(
        text(
            "SELECT s.key, o.period_start FROM indicator_observation o "
            "JOIN indicator_subject s ON s.id = o.subject_id "
            "WHERE o.indicator_code = :code AND o.value <> 0 "
            "AND (CAST(:since AS date) IS NULL OR o.period_start >= :since)"
        ),
        {"code": code, "since": since},
    ).all()
    for key, day in old:
        fresh.setdefault((str(key), day), 0.0)
    return [
        ObservationIn(
            indicator=code,
            subject_layer=subject_layer,
            subject_key=key,
            period_start=day,
            period_end=day,
            value=v,
        )
        for (key, day), v in sorted(fresh.items())
    ]


def nonzero_subject_days(conn: Connection, code: str) -> list[tuple[str, date]]:
    """(subject key, period start) of an indicator's non-zero observations (derived jobs zero
    the ones whose source rows went away)."""
    rows = conn.execute(
        text(
            "SELECT s.key, o.period_start FROM indicator_observation o "
            "JOIN indicator_subject s ON s.id = o.subject_id "
            "WHERE o.indicator_code = :code AND o.value <> 0"
        ),
        {"code": code},
    ).all()
    return [(str(k), d) for k, d in rows]
