"""Bridge from rule events to the alerts of layers.alerts (the analytics area's mechanism).

Each vision event type gets an `alert_rule` row (slug `vision_<type>`). Those rows are
stored disabled because the analytics evaluator must not evaluate them (vision fires them
itself); alerts written under them are ordinary alerts: deduplicated while open, notified
on `iocmap_alerts`, acknowledged and resolved through /api/alerts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from vision.types import VisionEvent

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
    try:
        from layers import alerts as adb
    except ImportError:  # the alerts area is not installed: nothing to do
        return 0
    custom = getattr(adb, "raise_from_detection_events", None)
    if callable(custom):
        return int(custom(conn, camera_id, events))
    rule_ids: dict[str, int] = {}
    writes: list[Any] = []
    for e in events:
        if e.type not in SEVERITY:
            continue
        if e.type not in rule_ids:
            rule_ids[e.type] = adb.save_rule(
                conn,
                slug=f"vision_{e.type}",
                name=f"Camera: {TITLES_VI[e.type]}",
                severity=SEVERITY[e.type],
                enabled=False,
                spec={"source": "vision", "event_type": e.type},
            )
        key = f"{camera_id}:{e.type}:{e.zone_id if e.zone_id is not None else '-'}"
        if e.type not in ("crowd", "congestion"):
            key += f":{e.track_id}"
        geom = adb.point_wkb(e.lon, e.lat) if e.lon is not None and e.lat is not None else None
        writes.append(
            adb.AlertWrite(
                rule_id=rule_ids[e.type],
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
