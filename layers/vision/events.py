"""Detection events (time-partitioned), their NOTIFY signal, and per-minute traffic counts."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import BigInteger, Connection, and_, cast, func, literal_column, select, text
from sqlalchemy.dialects.postgresql import insert

from layers.errors import InvalidInputError, NotFoundError
from layers.features.registry import (
    LayerSpec,
    LayerStyle,
    create_or_update_layer,
    get_layer,
    mark_layer_changed,
)
from layers.models import feature
from layers.models.vision import camera_state, detection_event

EVENTS_CHANNEL = "iocmap_events"
EVENT_TYPES = (
    "detection",
    "intrusion",
    "crowd",
    "congestion",
    "wrong_way",
    "stopped_vehicle",
    "line_crossing",
    "speeding",
    "camera_online",
    "camera_offline",
)

# The per-minute vehicle counts layer: written by vision, aggregated by analytics.traffic.
# Vision only creates it when missing; it never overwrites the catalog entry.
TRAFFIC_COUNTS = LayerSpec(
    slug="traffic_counts",
    title_vi="Lưu lượng xe theo phút",
    title_en="Vehicle counts per minute",
    description="Số xe mỗi phút theo camera và loại xe (từ mô-đun thị giác và bộ đếm nhập vào).",
    sector="traffic",
    geometry_type="Point",
    property_schema={
        "type": "object",
        "properties": {
            "camera_id": {"type": "string"},
            "vehicle_class": {"type": "string"},
            "count": {"type": "integer"},
            "minute": {"type": "string", "format": "date-time"},
        },
        "required": ["camera_id", "vehicle_class", "count", "minute"],
        "additionalProperties": True,
    },
    default_style=LayerStyle(fill_color=(255, 87, 34, 200), point_radius=4),
    source_system="IOC Map vision / traffic counters",
    time_field="minute",
)


class EventIn(BaseModel):
    """An event to store."""

    model_config = ConfigDict(extra="forbid")

    camera_id: str
    event_type: str
    observed_at: datetime
    class_name: str | None = None
    confidence: float | None = None
    track_id: int | None = None
    zone_id: int | None = None
    lon: float | None = Field(default=None, ge=-180, le=180)
    lat: float | None = Field(default=None, ge=-90, le=90)
    snapshot_path: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    # Given by workers that publish through the broker (issue 23): stored at most once.
    event_uid: UUID | None = None


class EventOut(EventIn):
    """A stored event."""

    model_config = ConfigDict(extra="ignore")

    id: int


class CountIn(BaseModel):
    """Vehicles of one class over one counting line in one minute."""

    model_config = ConfigDict(extra="forbid")

    camera_id: str
    zone_id: int
    minute: datetime
    vehicle_class: str
    count: int = Field(ge=0)
    lon: float
    lat: float


def ensure_partitions(conn: Connection, times: Sequence[datetime]) -> list[str]:
    """Create the month partitions these timestamps need (idempotent); return their names."""
    months = sorted({t.replace(day=1, hour=0, minute=0, second=0, microsecond=0) for t in times})
    return [
        str(conn.execute(text("SELECT vision_ensure_event_partition(:ts)"), {"ts": m}).scalar())
        for m in months
    ]


def notify_payload(event_id: int, e: EventIn) -> str:
    """The small JSON NOTIFY payload: enough to filter and to fetch the row."""
    return json.dumps(
        {
            "id": event_id,
            "camera_id": e.camera_id,
            "type": e.event_type,
            "t": e.observed_at.isoformat(),
        },
        separators=(",", ":"),
    )


def insert_events(conn: Connection, events: Sequence[EventIn]) -> list[int]:
    """Store events, signal each on `iocmap_events`, and stamp the cameras' last_event_at.

    An event whose event_uid is already stored (a broker redelivery) is skipped: neither
    stored nor signalled twice. Returns the ids of the rows stored now.
    """
    if not events:
        return []
    for e in events:
        if e.observed_at.tzinfo is None:
            raise InvalidInputError(
                "event time must be timezone-aware",
                camera_id=e.camera_id,
                i18n="err.events.event_time_must_be_timezone",
            )
    ensure_partitions(conn, [e.observed_at for e in events])
    ids: list[int] = []
    for e in events:
        geom = (
            func.ST_SetSRID(func.ST_MakePoint(e.lon, e.lat), 4326)
            if e.lon is not None and e.lat is not None
            else None
        )
        values = e.model_dump(exclude={"lon", "lat"})
        stmt = insert(detection_event).values(**values, geom=geom)
        if e.event_uid is not None:
            stmt = stmt.on_conflict_do_nothing(
                index_elements=[detection_event.c.event_uid, detection_event.c.observed_at]
            )
        stored = conn.execute(stmt.returning(detection_event.c.id)).scalar()
        if stored is None:
            continue  # already there
        eid = int(stored)
        ids.append(eid)
        conn.execute(
            text("SELECT pg_notify(:channel, :payload)"),
            {"channel": EVENTS_CHANNEL, "payload": notify_payload(eid, e)},
        )
    latest: dict[str, datetime] = {}
    for e in events:
        if e.camera_id not in latest or e.observed_at > latest[e.camera_id]:
            latest[e.camera_id] = e.observed_at
    for cam, t in latest.items():
        stmt = insert(camera_state).values(camera_id=cam, last_event_at=t)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[camera_state.c.camera_id],
                set_={
                    "last_event_at": func.greatest(
                        camera_state.c.last_event_at, stmt.excluded.last_event_at
                    )
                },
            )
        )
    return ids


def _event_select() -> Any:
    return select(
        detection_event.c.id,
        detection_event.c.camera_id,
        detection_event.c.event_type,
        detection_event.c.observed_at,
        detection_event.c.class_name,
        detection_event.c.confidence,
        detection_event.c.track_id,
        detection_event.c.zone_id,
        detection_event.c.snapshot_path,
        detection_event.c.attributes,
        func.ST_X(detection_event.c.geom).label("lon"),
        func.ST_Y(detection_event.c.geom).label("lat"),
    )


def query_events(
    conn: Connection,
    camera_id: str | None = None,
    time_from: datetime | None = None,
    time_to: datetime | None = None,
    types: Sequence[str] | None = None,
    limit: int = 100,
    before_id: int | None = None,
) -> list[EventOut]:
    """Events newest first, filtered by camera, time range and types."""
    if limit < 1 or limit > 10_000:
        raise InvalidInputError(
            f"limit must be between 1 and 10000; got {limit}",
            param="limit",
            i18n="err.events.limit_must_be_between_1",
            limit=limit,
        )
    if time_from and time_to and time_from > time_to:
        raise InvalidInputError(
            "time range is inverted: from must be <= to",
            param="datetime",
            i18n="err.events.time_range_inverted_from_must",
        )
    conds = []
    if camera_id is not None:
        conds.append(detection_event.c.camera_id == camera_id)
    if time_from is not None:
        conds.append(detection_event.c.observed_at >= time_from)
    if time_to is not None:
        conds.append(detection_event.c.observed_at <= time_to)
    if types:
        conds.append(detection_event.c.event_type.in_(list(types)))
    if before_id is not None:
        conds.append(detection_event.c.id < before_id)
    stmt = (
        _event_select()
        .where(and_(True, *conds))
        .order_by(detection_event.c.observed_at.desc(), detection_event.c.id.desc())
        .limit(limit)
    )
    return [EventOut.model_validate(dict(r)) for r in conn.execute(stmt).mappings()]


def get_event(conn: Connection, event_id: int) -> EventOut:
    """One event by id, or NotFoundError."""
    row = conn.execute(_event_select().where(detection_event.c.id == event_id)).mappings().first()
    if row is None:
        raise NotFoundError(
            f"event {event_id} does not exist",
            event_id=event_id,
            i18n="err.events.event_does_not_exist",
        )
    return EventOut.model_validate(dict(row))


def latest_events(conn: Connection) -> dict[str, EventOut]:
    """Each camera's most recent event."""
    stmt = (
        _event_select()
        .distinct(detection_event.c.camera_id)
        .order_by(
            detection_event.c.camera_id,
            detection_event.c.observed_at.desc(),
            detection_event.c.id.desc(),
        )
    )
    out = [EventOut.model_validate(dict(r)) for r in conn.execute(stmt).mappings()]
    return {e.camera_id: e for e in out}


def ensure_traffic_layer(conn: Connection) -> int:
    """Id of the time-enabled `traffic_counts` layer, created on first use."""
    try:
        return get_layer(conn, TRAFFIC_COUNTS.slug).id
    except NotFoundError:
        return create_or_update_layer(conn, TRAFFIC_COUNTS)


def upsert_traffic_counts(conn: Connection, counts: Sequence[CountIn]) -> int:
    """Add per-minute counts to `traffic_counts` (summing a minute written twice); returns rows."""
    if not counts:
        return 0
    layer_id = ensure_traffic_layer(conn)
    for c in counts:
        minute = c.minute.replace(second=0, microsecond=0)
        props = {
            "camera_id": c.camera_id,
            "zone_id": c.zone_id,
            "vehicle_class": c.vehicle_class,
            "count": c.count,
            "minute": minute.isoformat(),
        }
        key = f"{c.camera_id}|{c.zone_id}|{c.vehicle_class}|{minute.isoformat()}"
        stmt = insert(feature).values(
            layer_id=layer_id,
            geom=func.ST_SetSRID(func.ST_MakePoint(c.lon, c.lat), 4326),
            properties=props,
            source_key=key,
            observed_at=minute,
        )
        previous = cast(feature.c.properties.op("->>")("count"), BigInteger)
        added = cast(stmt.excluded.properties.op("->>")("count"), BigInteger)
        summed = stmt.excluded.properties.op("||")(
            func.jsonb_build_object(literal_column("'count'"), previous + added)
        )
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[feature.c.layer_id, feature.c.source_key],
                index_where=feature.c.source_key.isnot(None),
                set_={"properties": summed, "updated_at": func.now()},
            )
        )
    mark_layer_changed(conn, layer_id)
    return len(counts)


def take_expired_snapshots(conn: Connection, cutoff: datetime) -> list[str]:
    """Forget snapshot paths of events older than `cutoff`; return them for deletion."""
    expired = and_(
        detection_event.c.observed_at < cutoff, detection_event.c.snapshot_path.is_not(None)
    )
    paths = [
        str(p)
        for p in conn.execute(select(detection_event.c.snapshot_path).where(expired)).scalars()
    ]
    conn.execute(detection_event.update().where(expired).values(snapshot_path=None))
    return paths


async def listen_events(conninfo: str) -> AsyncIterator[dict[str, Any]]:
    """Yield NOTIFY payloads of `iocmap_events` as dicts (a dedicated LISTEN connection).

    The first item is `{"listening": True}`, once LISTEN is in place, so a caller can tell
    its client it will not miss what happens next.
    """
    from psycopg import sql

    from layers.db import connect_async
    from layers.sql import ident

    async with await connect_async(conninfo) as aconn:
        await aconn.execute(sql.SQL("LISTEN {}").format(ident(EVENTS_CHANNEL)))
        yield {"listening": True}
        async for note in aconn.notifies():
            try:
                payload = json.loads(note.payload)
            except ValueError:
                continue
            if isinstance(payload, dict):
                yield payload


def camera_points(conn: Connection) -> list[tuple[str, float, float, str | None]]:
    """(source key, lon, lat, owner) of the `cameras` layer's features, by source key."""
    rows = conn.execute(
        text(
            "SELECT f.source_key, ST_X(f.geom), ST_Y(f.geom), f.properties->>'owner' "
            "FROM feature f JOIN layer l ON l.id = f.layer_id "
            "WHERE l.slug = 'cameras' AND f.source_key IS NOT NULL ORDER BY f.source_key"
        )
    ).all()
    return [(str(k), float(x), float(y), owner) for k, x, y, owner in rows]


_INSERT_COUNTS = text(
    """
    INSERT INTO feature (layer_id, geom, properties, source_key, observed_at)
    SELECT :lid, ST_SetSRID(ST_MakePoint(t.lon, t.lat), 4326),
           jsonb_build_object('camera_id', t.cam, 'zone_id', NULL, 'vehicle_class', t.cls,
                              'count', t.n, 'minute', t.minute, 'interval_min', CAST(:interval AS integer),
                              'synthetic', true, 'source', CAST(:source AS text)),
           t.key, CAST(t.minute AS timestamptz)
    FROM unnest(CAST(:cams AS text[]), CAST(:classes AS text[]), CAST(:ns AS integer[]),
                CAST(:minutes AS text[]), CAST(:keys AS text[]),
                CAST(:lons AS double precision[]), CAST(:lats AS double precision[]))
         AS t(cam, cls, n, minute, key, lon, lat)
    ON CONFLICT (layer_id, source_key) WHERE source_key IS NOT NULL DO NOTHING
    """
)


def insert_counter_counts(
    conn: Connection, layer_id: int, interval_min: int, source: str, cols: dict[str, list[object]]
) -> int:
    """Insert synthetic vehicle counts (parallel lists cams, classes, ns, minutes, keys, lons,
    lats) into the traffic layer, leaving existing source keys alone; rows added."""
    res = conn.execute(
        _INSERT_COUNTS,
        {"lid": layer_id, "interval": interval_min, "source": source, **cols},
    )
    return max(res.rowcount, 0)
