"""Rules over geolocated tracks, all in ground metres and seconds of frame time (pure).

Zones are drawn on the map (WGS84), converted once into the camera's ground frame, and
evaluated there: distances, speeds and dwell times then mean what they say.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import shapely
from shapely.geometry import LineString, Point
from shapely.geometry.base import BaseGeometry

from vision.geo import GroundFrame, angle_diff_deg, bearing_deg
from vision.types import (
    PERSON_CLASSES,
    VEHICLE_CLASSES,
    LineCount,
    Observation,
    VisionEvent,
)

ZoneKind = Literal["forbidden", "no_parking", "counting_line", "lane", "area"]
ZONE_KINDS: tuple[str, ...] = ("forbidden", "no_parking", "counting_line", "lane", "area")

# Typical ground footprints (m²), for occupancy: the share of a zone's area that is covered.
FOOTPRINT_M2 = {
    "car": 8.0,
    "vehicle": 8.0,
    "truck": 25.0,
    "bus": 30.0,
    "motorcycle": 1.6,
    "motorbike": 1.6,
    "bicycle": 1.2,
    "person": 0.5,
}


@dataclass(frozen=True)
class Zone:
    """A zone in the ground frame, with the parameters of the rules it carries.

    Parameters (all optional): `classes` (list of class names the zone applies to),
    `dwell_s` and `stop_speed_mps` (no_parking), `direction_deg`, `wrong_way_min_angle_deg`,
    `min_speed_mps`, `min_travel_m` (lane), `speed_limit_kmh` (lane/area), `crowd_min`
    (people), `congestion_count`, `congestion_occupancy` (0..1) and `congestion_for_s`.
    """

    id: int
    name: str
    kind: ZoneKind
    geometry: BaseGeometry
    params: Mapping[str, Any] = field(default_factory=dict)

    def applies_to(self, label: str) -> bool:
        """True when the zone has no class filter or lists this class."""
        classes = self.params.get("classes")
        return not classes or label in classes


def zone_from_wgs84(
    zone_id: int,
    name: str,
    kind: str,
    geometry: BaseGeometry,
    params: Mapping[str, Any],
    frame: GroundFrame,
) -> Zone:
    """Convert a zone drawn on the map (WGS84 geometry) into the camera's ground frame."""
    if kind not in ZONE_KINDS:
        raise ValueError(f"unknown zone kind '{kind}'; known: {', '.join(ZONE_KINDS)}")

    def to_ground(coords: np.ndarray) -> np.ndarray:
        return frame.to_ground(coords)

    ground = shapely.transform(geometry, to_ground)
    return Zone(zone_id, name, kind, ground, dict(params))  # type: ignore[arg-type]


@dataclass
class RuleSettings:
    """Defaults for rules whose zone does not say otherwise."""

    speed_window_s: float = 1.0
    min_speed_samples: int = 4
    presence_s: float = 1.0
    track_ttl_s: float = 5.0
    default_speed_limit_kmh: float | None = None
    speeding_min_samples: int = 3
    crowd_rearm_s: float = 10.0
    detection_min_age_s: float = 0.0
    detection_min_travel_m: float = 0.0


@dataclass
class _TrackState:
    label: str
    first_t: float
    last_t: float
    x: float
    y: float
    score: float
    lon: float
    lat: float
    history: deque[tuple[float, float, float]] = field(default_factory=lambda: deque(maxlen=120))
    inside: set[int] = field(default_factory=set)
    fired: set[tuple[str, int]] = field(default_factory=set)
    stopped_since: dict[int, float] = field(default_factory=dict)
    lane_travel: dict[int, float] = field(default_factory=dict)
    speeding_samples: int = 0
    crossed: set[int] = field(default_factory=set)
    reported: bool = False
    box: tuple[float, float, float, float] | None = None


def _to_dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _minute(t: float) -> datetime:
    return _to_dt(t).replace(second=0, microsecond=0)


class RuleEngine:
    """Keeps per-track and per-zone state and turns observations into events."""

    def __init__(
        self,
        zones: Sequence[Zone],
        frame: GroundFrame,
        settings: RuleSettings | None = None,
        emit_detections: bool = True,
    ) -> None:
        self.zones = list(zones)
        self.frame = frame
        self.settings = settings or RuleSettings()
        self.emit_detections = emit_detections
        self.tracks: dict[int, _TrackState] = {}
        self.counts: Counter[tuple[int, datetime, str]] = Counter()
        self._zone_since: dict[tuple[str, int], float] = {}
        self._zone_fired: set[tuple[str, int]] = set()
        self._crowd_last: dict[int, float] = {}
        self._now = 0.0

    # ---- per-frame entry point -------------------------------------------------------

    def step(self, t: datetime, observations: Iterable[Observation]) -> list[VisionEvent]:
        """Advance to time `t` with the tracks seen in this frame; return events that fired."""
        now = t.timestamp()
        self._now = now
        events: list[VisionEvent] = []
        for obs in observations:
            events.extend(self._observe(now, obs))
        events.extend(self._zone_rules(now))
        self._expire(now)
        return events

    # ---- track-level rules -----------------------------------------------------------

    def _observe(self, now: float, obs: Observation) -> list[VisionEvent]:
        st = self.tracks.get(obs.track_id)
        events: list[VisionEvent] = []
        prev: tuple[float, float] | None = None
        if st is None:
            st = _TrackState(
                obs.label, now, now, obs.x, obs.y, obs.score, obs.lon, obs.lat, box=obs.box
            )
            self.tracks[obs.track_id] = st
        else:
            prev = (st.x, st.y)
            st.label = obs.label
            st.last_t, st.x, st.y, st.score = now, obs.x, obs.y, obs.score
            st.lon, st.lat, st.box = obs.lon, obs.lat, obs.box
        st.history.append((now, obs.x, obs.y))
        if self.emit_detections and not st.reported and self._worth_reporting(st, obs):
            st.reported = True
            events.append(self._event("detection", now, st, obs.track_id))
        velocity = self._velocity(st)
        speed = float(np.hypot(*velocity)) if velocity is not None else None
        here = Point(obs.x, obs.y)
        for zone in self.zones:
            if not zone.applies_to(obs.label):
                continue
            if zone.kind == "counting_line":
                if prev is not None and zone.id not in st.crossed:
                    step = LineString([prev, (obs.x, obs.y)])
                    if step.length > 0 and step.intersects(zone.geometry):
                        st.crossed.add(zone.id)
                        self.counts[(zone.id, _minute(now), obs.label)] += 1
                        events.append(
                            self._event(
                                "line_crossing",
                                now,
                                st,
                                obs.track_id,
                                zone.id,
                                direction=_side_change(zone.geometry, prev, (obs.x, obs.y)),
                            )
                        )
                continue
            inside = zone.geometry.covers(here)
            was_inside = zone.id in st.inside
            if inside:
                st.inside.add(zone.id)
            else:
                st.inside.discard(zone.id)
                st.stopped_since.pop(zone.id, None)
                st.lane_travel.pop(zone.id, None)
            if not inside:
                continue
            if zone.kind == "forbidden" and not was_inside:
                events.extend(self._once(st, "intrusion", zone.id, now, obs.track_id))
            if zone.kind == "no_parking" and obs.label in VEHICLE_CLASSES:
                events.extend(self._stopped(st, zone, now, speed, obs.track_id))
            if zone.kind == "lane":
                if prev is not None and was_inside:
                    st.lane_travel[zone.id] = st.lane_travel.get(zone.id, 0.0) + float(
                        np.hypot(obs.x - prev[0], obs.y - prev[1])
                    )
                events.extend(self._wrong_way(st, zone, now, velocity, speed, obs.track_id))
            limit = zone.params.get("speed_limit_kmh")
            if limit is not None and speed is not None:
                events.extend(self._speeding(st, float(limit), now, speed, obs.track_id, zone.id))
        limit = self.settings.default_speed_limit_kmh
        if limit is not None and speed is not None:
            events.extend(self._speeding(st, limit, now, speed, obs.track_id, None))
        return events

    def _worth_reporting(self, st: _TrackState, obs: Observation) -> bool:
        """A track is reported once it has lived and moved enough (filters swaying leaves)."""
        if st.last_t - st.first_t < self.settings.detection_min_age_s:
            return False
        if self.settings.detection_min_travel_m <= 0:
            return True
        _, x0, y0 = st.history[0]
        return float(np.hypot(obs.x - x0, obs.y - y0)) >= self.settings.detection_min_travel_m

    def _velocity(self, st: _TrackState) -> tuple[float, float] | None:
        """Least-squares ground velocity (m/s) over the last `speed_window_s` seconds."""
        if not st.history:
            return None
        window = self.settings.speed_window_s
        latest = st.history[-1][0]
        pts = [h for h in st.history if latest - h[0] <= window + 1e-9]
        n = len(pts)
        if n < self.settings.min_speed_samples or (pts[-1][0] - pts[0][0]) < window * 0.5:
            return None
        # Plain floats: a dozen points are cheaper in Python than through numpy calls.
        mt = sum(p[0] for p in pts) / n
        mx = sum(p[1] for p in pts) / n
        my = sum(p[2] for p in pts) / n
        denom = sum((p[0] - mt) ** 2 for p in pts)
        if denom <= 0:
            return None
        vx = sum((p[0] - mt) * (p[1] - mx) for p in pts) / denom
        vy = sum((p[0] - mt) * (p[2] - my) for p in pts) / denom
        return vx, vy

    def _stopped(
        self, st: _TrackState, zone: Zone, now: float, speed: float | None, tid: int
    ) -> list[VisionEvent]:
        stop_speed = float(zone.params.get("stop_speed_mps", 0.5))
        dwell = float(zone.params.get("dwell_s", 60.0))
        if speed is None or speed > stop_speed:
            st.stopped_since.pop(zone.id, None)
            return []
        since = st.stopped_since.setdefault(zone.id, now)
        if now - since >= dwell:
            return self._once(
                st, "stopped_vehicle", zone.id, now, tid, dwell_s=round(now - since, 1)
            )
        return []

    def _wrong_way(
        self,
        st: _TrackState,
        zone: Zone,
        now: float,
        velocity: tuple[float, float] | None,
        speed: float | None,
        tid: int,
    ) -> list[VisionEvent]:
        direction = zone.params.get("direction_deg")
        if direction is None or velocity is None or speed is None:
            return []
        if speed < float(zone.params.get("min_speed_mps", 1.0)):
            return []
        if st.lane_travel.get(zone.id, 0.0) < float(zone.params.get("min_travel_m", 2.0)):
            return []
        heading = bearing_deg(*velocity)
        diff = angle_diff_deg(heading, float(direction))
        if diff >= float(zone.params.get("wrong_way_min_angle_deg", 120.0)):
            return self._once(
                st,
                "wrong_way",
                zone.id,
                now,
                tid,
                heading_deg=round(heading, 1),
                lane_direction_deg=float(direction),
            )
        return []

    def _speeding(
        self,
        st: _TrackState,
        limit_kmh: float,
        now: float,
        speed: float,
        tid: int,
        zone_id: int | None,
    ) -> list[VisionEvent]:
        kmh = speed * 3.6
        if kmh <= limit_kmh:
            st.speeding_samples = 0
            return []
        st.speeding_samples += 1
        if st.speeding_samples < self.settings.speeding_min_samples:
            return []
        return self._once(
            st,
            "speeding",
            zone_id if zone_id is not None else -1,
            now,
            tid,
            speed_kmh=round(kmh, 1),
            limit_kmh=limit_kmh,
        )

    def _once(
        self, st: _TrackState, kind: str, zone_id: int, now: float, tid: int, **attrs: Any
    ) -> list[VisionEvent]:
        if (kind, zone_id) in st.fired:
            return []
        st.fired.add((kind, zone_id))
        return [self._event(kind, now, st, tid, zone_id if zone_id >= 0 else None, **attrs)]

    def _event(
        self,
        kind: str,
        now: float,
        st: _TrackState,
        tid: int,
        zone_id: int | None = None,
        **attrs: Any,
    ) -> VisionEvent:
        speed = self._velocity(st)
        if speed is not None:
            attrs.setdefault("speed_kmh", round(float(np.hypot(*speed)) * 3.6, 1))
        attrs.setdefault("x_m", round(st.x, 2))
        attrs.setdefault("y_m", round(st.y, 2))
        return VisionEvent(
            type=kind,
            t=_to_dt(now),
            class_name=st.label,
            confidence=round(st.score, 3),
            track_id=tid,
            lon=st.lon,
            lat=st.lat,
            zone_id=zone_id,
            attributes=attrs,
            box=st.box,
        )

    # ---- zone-level rules ------------------------------------------------------------

    def present(self) -> dict[int, _TrackState]:
        """Tracks seen within the last `presence_s` seconds."""
        return {
            tid: st
            for tid, st in self.tracks.items()
            if self._now - st.last_t <= self.settings.presence_s
        }

    def _zone_rules(self, now: float) -> list[VisionEvent]:
        events: list[VisionEvent] = []
        present = self.present()
        for zone in self.zones:
            if zone.kind == "counting_line":
                continue
            crowd_min = zone.params.get("crowd_min")
            cong_count = zone.params.get("congestion_count")
            cong_occ = zone.params.get("congestion_occupancy")
            if crowd_min is None and cong_count is None and cong_occ is None:
                continue
            inside = [st for st in present.values() if zone.id in st.inside]
            if crowd_min is not None:
                people = sum(1 for st in inside if st.label in PERSON_CLASSES)
                events.extend(self._crowd(zone, now, people, int(crowd_min)))
            if cong_count is not None or cong_occ is not None:
                vehicles = [st for st in inside if st.label in VEHICLE_CLASSES]
                area = max(float(zone.geometry.area), 1e-6)
                occupancy = sum(FOOTPRINT_M2.get(st.label, 8.0) for st in vehicles) / area
                over = (cong_count is not None and len(vehicles) >= int(cong_count)) or (
                    cong_occ is not None and occupancy >= float(cong_occ)
                )
                events.extend(
                    self._sustained(
                        zone,
                        now,
                        over,
                        float(zone.params.get("congestion_for_s", 30.0)),
                        vehicle_count=len(vehicles),
                        occupancy=round(occupancy, 3),
                    )
                )
        return events

    def _crowd(self, zone: Zone, now: float, people: int, minimum: int) -> list[VisionEvent]:
        key = ("crowd", zone.id)
        if people < minimum:
            self._zone_fired.discard(key)
            return []
        last = self._crowd_last.get(zone.id)
        if key in self._zone_fired or (
            last is not None and now - last < self.settings.crowd_rearm_s
        ):
            return []
        self._zone_fired.add(key)
        self._crowd_last[zone.id] = now
        return [self._zone_event("crowd", zone, now, "person", people=people, minimum=minimum)]

    def _sustained(
        self, zone: Zone, now: float, over: bool, for_s: float, **attrs: Any
    ) -> list[VisionEvent]:
        key = ("congestion", zone.id)
        if not over:
            self._zone_since.pop(key, None)
            self._zone_fired.discard(key)
            return []
        since = self._zone_since.setdefault(key, now)
        if now - since < for_s or key in self._zone_fired:
            return []
        self._zone_fired.add(key)
        return [
            self._zone_event(
                "congestion", zone, now, "vehicle", duration_s=round(now - since, 1), **attrs
            )
        ]

    def _zone_event(self, kind: str, zone: Zone, now: float, cls: str, **attrs: Any) -> VisionEvent:
        c = zone.geometry.representative_point()
        lonlat = self.frame.to_wgs84([[c.x, c.y]])[0]
        return VisionEvent(
            type=kind,
            t=_to_dt(now),
            class_name=cls,
            lon=float(lonlat[0]),
            lat=float(lonlat[1]),
            zone_id=zone.id,
            attributes=attrs,
        )

    # ---- housekeeping ----------------------------------------------------------------

    def _expire(self, now: float) -> None:
        ttl = self.settings.track_ttl_s
        for tid in [tid for tid, st in self.tracks.items() if now - st.last_t > ttl]:
            del self.tracks[tid]

    def flush_counts(self, now: datetime | None = None) -> list[LineCount]:
        """Line counts of finished minutes (all minutes when `now` is None), removed from state."""
        cutoff = None if now is None else now.replace(second=0, microsecond=0)
        done = [k for k in self.counts if cutoff is None or k[1] < cutoff]
        out = [LineCount(z, m, c, self.counts.pop((z, m, c))) for z, m, c in sorted(done)]
        return out

    def minute_counts(self) -> dict[tuple[int, datetime, str], int]:
        """Current per-line, per-minute, per-class counts (not removed)."""
        return dict(self.counts)


def _side_change(line: BaseGeometry, a: tuple[float, float], b: tuple[float, float]) -> str:
    """'left_to_right' or 'right_to_left' of the line's drawing direction."""
    coords = list(line.coords) if hasattr(line, "coords") else []
    if len(coords) < 2:
        return "unknown"
    (x1, y1), (x2, y2) = coords[0][:2], coords[-1][:2]
    side = (x2 - x1) * (a[1] - y1) - (y2 - y1) * (a[0] - x1)
    return "left_to_right" if side > 0 else "right_to_left"


def speed_kmh(history: Sequence[tuple[float, float, float]]) -> float:
    """Mean ground speed of a (t, x, y) history, km/h (helper for analysis and tests)."""
    if len(history) < 2:
        return 0.0
    a = np.asarray(history)
    dist = float(np.sum(np.hypot(np.diff(a[:, 1]), np.diff(a[:, 2]))))
    dt = float(a[-1, 0] - a[0, 0])
    return dist / dt * 3.6 if dt > 0 else 0.0


__all__ = [
    "FOOTPRINT_M2",
    "ZONE_KINDS",
    "RuleEngine",
    "RuleSettings",
    "Zone",
    "zone_from_wgs84",
]
