"""The news and social-media connector: items placed on the commune their text names.

Matched items become features of the `news_items` layer (a point inside the commune, jittered
by the item id so reruns place it identically). Items whose place is ambiguous or missing are
kept in the batch's quarantine (import_reject) with the reason and the candidate communes,
never dropped silently. One fetch lands as one batch, in one transaction, cursor included.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry import Point
from sqlalchemy import Connection, Engine

from ingest.connectors import sources
from ingest.connectors.config import NewsPull
from ingest.connectors.indicators import (
    LandReport,
    Reject,
    drain_spool,
    fail_batch,
    load_cursor,
    quarantine,
    succeed_batch,
)
from layers.errors import NotFoundError
from layers.features.bulk import FeatureRow, upsert_features
from layers.features.gazetteer import current_communes, current_units, has_admin_units
from layers.features.placenames import Gazetteer
from layers.features.registry import create_or_update_layer, layer_id_of
from layers.ingest.batches import create_batch
from layers.settings import Settings


@dataclass
class NewsReport(LandReport):
    """What one fetch of the feed did (written: features inserted or updated)."""

    matched: int = 0


def _published(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a timestamp")
    dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if dt.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone")
    return dt


def _point_in(geom: shapely.Geometry, seed_text: str) -> Point:
    """A point inside the commune near its centre, the same for the same item every run."""
    rng = np.random.default_rng(zlib.crc32(seed_text.encode()))
    centre = geom.representative_point()
    minx, miny, maxx, maxy = geom.bounds
    sx, sy = (maxx - minx) * 0.08, (maxy - miny) * 0.08
    for _ in range(20):
        x = round(float(centre.x + rng.normal(0, sx)), 6)
        y = round(float(centre.y + rng.normal(0, sy)), 6)
        pt = Point(x, y)
        if geom.contains(pt):
            return pt
    return Point(round(centre.x, 6), round(centre.y, 6))


def _communes(conn: Connection) -> dict[str, tuple[str, shapely.Geometry]]:
    return current_communes(conn)


def _layer(conn: Connection, slug: str) -> int:
    found = layer_id_of(conn, slug)
    if found is not None:
        return found
    from layers.demo.specs import NEWS_ITEMS

    # A real deployment gets the same layer, without the demo's synthetic flag.
    spec = NEWS_ITEMS.model_copy(
        update={"slug": slug, "synthetic": False, "license": "", "description": ""}
    )
    return create_or_update_layer(conn, spec)


def items_to_features(
    records: Sequence[Any],
    cfg: NewsPull,
    gazetteer: Gazetteer,
    communes: dict[str, tuple[str, shapely.Geometry]],
) -> tuple[list[FeatureRow], list[Reject]]:
    """Features of the items placed on a commune, and the rejects (unplaced or malformed)."""
    out: list[FeatureRow] = []
    rejects: list[Reject] = []
    for i, rec in enumerate(records, start=1):
        if not isinstance(rec, dict):
            rejects.append(Reject(i, "malformed_record", "", "expected an object", rec))
            continue
        item_id = rec.get(cfg.id_field)
        title = rec.get(cfg.title_field)
        if not item_id or not isinstance(title, str) or not title.strip():
            missing = cfg.id_field if not item_id else cfg.title_field
            rejects.append(Reject(i, "missing_field", missing, "required", rec))
            continue
        try:
            published = _published(rec.get(cfg.published_field))
        except ValueError as exc:
            rejects.append(Reject(i, "unparsable_date", cfg.published_field, str(exc), rec))
            continue
        raw_sent = str(rec.get(cfg.sentiment_field) or "").strip().lower()
        sentiment = cfg.sentiment_map.get(raw_sent)
        if sentiment is None:
            rejects.append(
                Reject(
                    i,
                    "schema_violation",
                    cfg.sentiment_field,
                    f"unknown sentiment {raw_sent!r}",
                    rec,
                )
            )
            continue
        summary = str(rec.get(cfg.summary_field) or "") if cfg.summary_field else ""
        match = gazetteer.match(f"{title}\n{summary}")
        if match.status != "matched" or match.code not in communes:
            reason = "place_ambiguous" if match.status == "ambiguous" else "place_not_found"
            detail = (
                f"candidates {', '.join(match.candidates)}"
                if match.status == "ambiguous"
                else "no commune or ward named"
            )
            rejects.append(
                Reject(i, reason, cfg.title_field, detail,
                       {**rec, "match": match.status, "candidates": list(match.candidates)})
            )  # fmt: skip
            continue
        name, geom = communes[match.code]
        props = {
            "item_id": str(item_id),
            "title": title.strip(),
            "summary": summary,
            "source": str(rec.get(cfg.source_field) or "") if cfg.source_field else "",
            "url": str(rec.get(cfg.url_field) or "") if cfg.url_field else "",
            "published_at": published.isoformat(),
            "sentiment": sentiment,
            "commune_code": match.code,
            "commune_name": name,
            "match": "matched",
            "candidates": [],
        }
        out.append(FeatureRow(str(item_id), _point_in(geom, str(item_id)), props, published))
    return out, rejects


def land_items(
    engine: Engine, cfg: NewsPull, records: Sequence[Any], *, attempt: int, cursor: str | None
) -> NewsReport:
    """One fetch as one batch: matched items upserted, the others quarantined, cursor saved."""
    with engine.begin() as conn:
        layer_id = _layer(conn, cfg.layer)
        batch_id = create_batch(
            conn, layer_id=layer_id, source=f"{cfg.name}: {cfg.url}"[:200],
            actor=f"connector:{cfg.name}", mode="upsert", kind="connector",
            connector=cfg.name, attempts=attempt,
        )  # fmt: skip
    report = NewsReport(batch_id=batch_id, records=len(records))
    try:
        with engine.begin() as conn:
            communes = _communes(conn)
            gazetteer = Gazetteer.from_units(current_units(conn))
            rows, rejects = items_to_features(records, cfg, gazetteer, communes)
            counts = upsert_features(conn, layer_id, rows, batch_id=batch_id)
            report.reasons = quarantine(conn, batch_id, rejects)
            report.matched = len(rows)
            report.inserted, report.updated = counts.inserted, counts.updated
            report.unchanged, report.rejected = counts.unchanged, len(rejects)
            succeed_batch(
                conn,
                batch_id,
                cfg.name,
                cursor,
                rejects,
                counts={
                    "records": len(records),
                    "matched": len(rows),
                    "ambiguous": report.reasons.get("place_ambiguous", 0),
                    "unplaced": report.reasons.get("place_not_found", 0),
                    "inserted": counts.inserted,
                    "updated": counts.updated,
                    "unchanged": counts.unchanged,
                    "rejected": len(rejects),
                },
                report={"reasons": report.reasons, "cursor": cursor},
            )
    except Exception as exc:
        raise fail_batch(engine, batch_id, exc, len(records), {}) from exc
    return report


def run_news(
    engine: Engine, settings: Settings, cfg: NewsPull, spool: Path, attempt: int
) -> list[NewsReport]:
    """Land leftover fetches, then fetch new items since the cursor and land them."""
    reports = _land_spool(engine, cfg, spool, attempt)
    with engine.connect() as conn:
        if not has_admin_units(conn):
            raise NotFoundError("no admin units: place names cannot be matched (seed first)")
    records, new_cursor = sources.fetch_records(cfg, load_cursor(engine, cfg.name))
    if not records:
        return reports
    sources.write_records_spool(spool, records, {"cursor": new_cursor, "count": len(records)})
    return reports + _land_spool(engine, cfg, spool, attempt)


def _land_spool(engine: Engine, cfg: NewsPull, spool: Path, attempt: int) -> list[NewsReport]:
    return drain_spool(
        spool,
        lambda records, meta: land_items(
            engine, cfg, records, attempt=attempt, cursor=meta.get("cursor")
        ),
    )
