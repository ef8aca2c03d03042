"""Bridge from rule events to the alerts of layers.analytics.alerts (the analytics area's mechanism).

Each vision event type has an `alert_rule` row (slug `vision_<type>`, installed by migration
0012_storage; SEVERITY and TITLES_VI here must match it). Those rows are stored disabled because the analytics evaluator must not evaluate them (vision fires them
itself); alerts written under them are ordinary alerts: deduplicated while open, notified
on `iocmap_alerts`, acknowledged and resolved through /api/alerts.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import Connection

from layers.analytics import alerts as adb
from vision.types import VisionEvent

log = logging.getLogger(__name__)

SEVERITY = {
    "intrusion": "critical",
    "wrong_way": "critical",
    "speeding": "warning",
    "stopped_vehicle": "warning",
    "crowd": "warning",
    "congestion": "warning",
}
TITLES_VI = {
    "intrusion": "Xâm nhập khu vực cấm",
    "wrong_way": "Đi ngược chiều",
    "speeding": "Vượt quá tốc độ",
    "stopped_vehicle": "Dừng đỗ sai quy định",
    "crowd": "Tụ tập đông người",
    "congestion": "Ùn tắc giao thông",
}


def write_event_alerts(conn: Connection, camera_id: str, events: Sequence[VisionEvent]) -> int:
    """Open (or refresh) one alert per alerting event; returns how many were new."""
    rule_ids = adb.rule_ids_by_slug(conn, [f"vision_{t}" for t in SEVERITY])
    writes: list[adb.AlertWrite] = []
    for e in events:
        if e.type not in SEVERITY:
            continue
        rule_id = rule_ids.get(f"vision_{e.type}")
        if rule_id is None:  # installed by migration 0012_storage; an operator removed it
            log.warning("no alert rule vision_%s: camera event not alerted", e.type)
            continue
        key = f"{camera_id}:{e.type}:{e.zone_id if e.zone_id is not None else '-'}"
        if e.type not in ("crowd", "congestion"):
            key += f":{e.track_id}"
        geom = adb.point_wkb(e.lon, e.lat) if e.lon is not None and e.lat is not None else None
        writes.append(
            adb.AlertWrite(
                rule_id=rule_id,
                dedup_key=key,
                severity=SEVERITY[e.type],
                title=f"{TITLES_VI[e.type]} — camera {camera_id}",
                area_kind="camera",
                area_ref=camera_id,
                geom_wkb=geom,
                value=e.attributes.get("speed_kmh") if e.type == "speeding" else None,
                threshold=e.attributes.get("limit_kmh") if e.type == "speeding" else None,
                evidence={
                    "camera_id": camera_id,
                    "event_type": e.type,
                    "class_name": e.class_name,
                    "track_id": e.track_id,
                    "zone_id": e.zone_id,
                    "links": [f"/api/cameras/{camera_id}/events?type={e.type}"],
                    **{k: v for k, v in e.attributes.items() if isinstance(v, int | float | str)},
                },
                window_start=e.t,
                window_end=e.t,
            )
        )
    if not writes:
        return 0
    new, _ = adb.write_alerts(conn, writes)
    return len(new)
