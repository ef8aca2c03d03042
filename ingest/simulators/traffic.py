"""Synthetic vehicle-counter history at the demo cameras, for the traffic KPI (gt_vehicles).

The demo's cameras only count vehicles once an operator draws a counting line
(`iocmap vision add-zone`), so a fresh demo has no `traffic_counts` and the traffic dashboard
would be empty. The demo seed therefore writes a deterministic, clearly synthetic history
of 15-minute counts per camera and vehicle class (rows carry `synthetic: true` and
`source: "bộ đếm mô phỏng"`), as a roadside counter feeding the same layer would.
Live counts from the vision workers add to the same layer and the same indicator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import numpy as np
from sqlalchemy import Connection

from ingest.simulators.systems import ICT, rng
from layers.features.registry import mark_layer_changed
from layers.vision.events import camera_points, ensure_traffic_layer, insert_counter_counts

INTERVAL_MIN = 15
SLOTS_PER_DAY = 24 * 60 // INTERVAL_MIN
# Share of the traffic per class: motorbikes dominate Vietnamese roads.
CLASSES = (("motorbike", 0.8), ("car", 0.2))
SOURCE = "bộ đếm mô phỏng"


@dataclass(frozen=True)
class CounterSite:
    """A camera that counts: its id (the cameras feature's source_key), position and owner."""

    camera_id: str
    lon: float
    lat: float
    urban: bool  # Vinh's VMS cameras see busier streets than commune-centre cameras


def _daily_profile() -> np.ndarray:
    """Relative traffic per 15-minute slot: morning and evening peaks, a quiet night."""
    h = (np.arange(SLOTS_PER_DAY) + 0.5) * INTERVAL_MIN / 60.0
    peaks = 1.0 * np.exp(-((h - 7.25) ** 2) / 1.2) + 1.1 * np.exp(-((h - 17.5) ** 2) / 1.8)
    day = 0.45 * np.exp(-((h - 12.5) ** 2) / 12.0)
    prof = 0.04 + peaks + day
    return np.asarray(prof / prof.max(), dtype=np.float64)


PROFILE = _daily_profile()


def counts_for_day(site: CounterSite, day: date, seed: int) -> np.ndarray:
    """Vehicles per (class, slot) at one site on one local day; the same for the same inputs."""
    gen = rng(seed, "traffic", site.camera_id, day.isoformat())
    site_gen = rng(seed, "traffic-site", site.camera_id)
    peak = (380.0 if site.urban else 110.0) * float(site_gen.uniform(0.6, 1.4))
    weekend = 0.85 if day.weekday() >= 5 else 1.0
    mean = PROFILE * peak * weekend
    return np.stack([gen.poisson(mean * share) for _, share in CLASSES]).astype(np.int64)


def counter_sites(conn: Connection) -> list[CounterSite]:
    """The demo's cameras (layer `cameras`), in id order."""
    rows = camera_points(conn)
    return [CounterSite(str(k), float(x), float(y), owner == "vms_vinh") for k, x, y, owner in rows]


def write_counter_history(
    conn: Connection,
    today: date,
    *,
    days: int,
    seed: int,
    now: datetime | None = None,
    sites: Sequence[CounterSite] | None = None,
) -> int:
    """Write `days` local days of synthetic counts up to `today` (today: until `now`).

    Existing rows are left alone, so a second run writes only what is new; returns rows added.
    """
    sites = list(sites) if sites is not None else counter_sites(conn)
    if days <= 0 or not sites:
        return 0
    lid = ensure_traffic_layer(conn)
    now_local = (now or datetime.now(ICT)).astimezone(ICT)
    added = 0
    for offset in range(days - 1, -1, -1):
        day = today - timedelta(days=offset)
        start = datetime.combine(day, time(0, 0), tzinfo=ICT)
        slots = [start + timedelta(minutes=INTERVAL_MIN * s) for s in range(SLOTS_PER_DAY)]
        # Only slots that are over: a counter does not report the future.
        done = [s for s, t in enumerate(slots) if t + timedelta(minutes=INTERVAL_MIN) <= now_local]
        if not done:
            continue
        cols: dict[str, list[object]] = {
            k: [] for k in ("cams", "classes", "ns", "minutes", "keys", "lons", "lats")
        }
        for site in sites:
            counts = counts_for_day(site, day, seed)
            for ci, (cls, _) in enumerate(CLASSES):
                for s in done:
                    minute = slots[s].isoformat()
                    cols["cams"].append(site.camera_id)
                    cols["classes"].append(cls)
                    cols["ns"].append(int(counts[ci, s]))
                    cols["minutes"].append(minute)
                    cols["keys"].append(f"{site.camera_id}|sim|{cls}|{minute}")
                    cols["lons"].append(site.lon)
                    cols["lats"].append(site.lat)
        added += insert_counter_counts(conn, lid, INTERVAL_MIN, SOURCE, cols)
    if added:
        mark_layer_changed(conn, lid)
    return added
