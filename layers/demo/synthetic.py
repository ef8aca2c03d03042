"""Deterministic synthetic sector data placed inside the real ward polygons.

Every generator takes the wards and returns plain records (WGS84 geometry + properties + a
stable source key); the same inputs always give the same output, so seeding is idempotent.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import Point

from layers.demo.boundaries import Ward

METRIC_SRID = 9208  # VN-2000 / TM-3 104°45', Nghệ An's official cadastral CRS
VINH_WARD_NAMES = ("Thành Vinh", "Trường Vinh", "Vinh Phú", "Vinh Lộc", "Vinh Hưng")


@dataclass(frozen=True)
class SyntheticFeature:
    """One generated feature."""

    source_key: str
    geometry: shapely.Geometry
    properties: dict[str, Any]
    observed_at: datetime | None = None


def rng_for(*parts: object) -> np.random.Generator:
    """A random generator seeded from a stable hash of the parts (not Python's salted hash)."""
    key = ":".join(str(p) for p in parts).encode()
    return np.random.default_rng(zlib.crc32(key))


def _to_metric() -> Transformer:
    return Transformer.from_crs(4326, METRIC_SRID, always_xy=True)


def _to_wgs84() -> Transformer:
    return Transformer.from_crs(METRIC_SRID, 4326, always_xy=True)


def points_in_ward(
    ward: Ward, count: int, rng: np.random.Generator, spread: float = 0.35
) -> list[Point]:
    """Sample points inside the ward, clustered around its centre like settlements are.

    Gaussian around the centre with sigma = spread × the ward's bbox size, rejecting points
    outside the polygon; falls back to uniform sampling for odd shapes.
    """
    if count <= 0:
        return []
    geom = ward.geometry
    shapely.prepare(geom)
    minx, miny, maxx, maxy = geom.bounds
    cx, cy = ward.center
    if not geom.contains(Point(cx, cy)):
        rep = geom.representative_point()
        cx, cy = rep.x, rep.y
    sx, sy = (maxx - minx) * spread, (maxy - miny) * spread
    out: list[Point] = []
    for attempt in range(60):
        n = max(count * 4, 64)
        if attempt < 40:
            xs = rng.normal(cx, sx, n)
            ys = rng.normal(cy, sy, n)
        else:
            xs = rng.uniform(minx, maxx, n)
            ys = rng.uniform(miny, maxy, n)
        # Round before the containment test, so rounding cannot push a point out of its ward.
        pts = shapely.points(np.round(xs, 6), np.round(ys, 6))
        inside = pts[shapely.contains(geom, pts)]
        out.extend(inside[: count - len(out)].tolist())
        if len(out) >= count:
            break
    if len(out) < count:
        raise RuntimeError(f"could not place {count} points inside ward {ward.code} {ward.name}")
    return out


def allocate(total: int, weights: Sequence[float], minimum: int = 0) -> list[int]:
    """Split `total` into integers proportional to weights (largest remainder), each ≥ minimum."""
    w = np.asarray(weights, dtype=float)
    base = np.full(len(w), minimum, dtype=int)
    rest = total - int(base.sum())
    if rest <= 0:
        return base.tolist()
    raw = w / w.sum() * rest
    floor = np.floor(raw).astype(int)
    remainder = rest - int(floor.sum())
    order = np.argsort(-(raw - floor), kind="stable")
    floor[order[:remainder]] += 1
    return [int(v) for v in base + floor]


def _commune_props(ward: Ward) -> dict[str, Any]:
    return {"commune_code": ward.code, "commune_name": ward.name}


# ---------------------------------------------------------------- health

HOSPITAL_TYPES_VI = {
    "provincial_hospital": "Bệnh viện tuyến tỉnh",
    "regional_hospital": "Bệnh viện đa khoa khu vực / TTYT",
    "health_station": "Trạm y tế xã, phường",
}
PROVINCIAL_HOSPITALS = (
    "Bệnh viện Hữu nghị Đa khoa Nghệ An",
    "Bệnh viện Sản Nhi Nghệ An",
    "Bệnh viện Ung bướu Nghệ An",
    "Bệnh viện Y học cổ truyền Nghệ An",
    "Bệnh viện Nội tiết Nghệ An",
    "Bệnh viện Tâm thần Nghệ An",
    "Bệnh viện Phục hồi chức năng Nghệ An",
    "Bệnh viện Chấn thương Chỉnh hình Nghệ An",
)


def hospitals(wards: Sequence[Ward]) -> list[SyntheticFeature]:
    """About 150: a health station per commune, 13 regional hospitals, 8 provincial ones in Vinh."""
    out: list[SyntheticFeature] = []
    vinh = [w for w in wards if w.name in VINH_WARD_NAMES]
    for ward in wards:
        rng = rng_for("hospitals", "station", ward.code)
        (pt,) = points_in_ward(ward, 1, rng, spread=0.15)
        prefix = "Trạm y tế phường" if ward.is_urban else "Trạm y tế xã"
        out.append(
            SyntheticFeature(
                f"station-{ward.code}",
                pt,
                {
                    "name": f"{prefix} {ward.name}",
                    "type": "health_station",
                    "type_vi": HOSPITAL_TYPES_VI["health_station"],
                    "beds": int(rng.integers(5, 16)),
                    **_commune_props(ward),
                },
            )
        )
    # Regional hospitals go to the most populous communes outside Vinh, one each.
    regional = sorted(
        (w for w in wards if w.name not in VINH_WARD_NAMES), key=lambda w: (-w.population, w.code)
    )[:13]
    for ward in regional:
        rng = rng_for("hospitals", "regional", ward.code)
        (pt,) = points_in_ward(ward, 1, rng, spread=0.1)
        out.append(
            SyntheticFeature(
                f"regional-{ward.code}",
                pt,
                {
                    "name": f"Bệnh viện đa khoa khu vực {ward.name}",
                    "type": "regional_hospital",
                    "type_vi": HOSPITAL_TYPES_VI["regional_hospital"],
                    "beds": int(rng.integers(15, 50)) * 10,
                    **_commune_props(ward),
                },
            )
        )
    for i, name in enumerate(PROVINCIAL_HOSPITALS):
        ward = vinh[i % len(vinh)]
        rng = rng_for("hospitals", "provincial", i)
        (pt,) = points_in_ward(ward, 1, rng, spread=0.12)
        out.append(
            SyntheticFeature(
                f"provincial-{i + 1:02d}",
                pt,
                {
                    "name": name,
                    "type": "provincial_hospital",
                    "type_vi": HOSPITAL_TYPES_VI["provincial_hospital"],
                    "beds": int(rng.integers(30, 150)) * 10,
                    **_commune_props(ward),
                },
            )
        )
    return out


# ---------------------------------------------------------------- education

SCHOOL_LEVELS = {
    # level: (Vietnamese name, share of schools, pupils range)
    "mam_non": ("Trường Mầm non", 0.36, (120, 420)),
    "tieu_hoc": ("Trường Tiểu học", 0.33, (250, 950)),
    "thcs": ("Trường THCS", 0.24, (250, 850)),
    "thpt": ("Trường THPT", 0.07, (600, 1600)),
}


def schools(wards: Sequence[Ward], total: int = 1800) -> list[SyntheticFeature]:
    """About 1,800 schools by level, in proportion to commune population (at least 3 each)."""
    per_ward = allocate(total, [w.population for w in wards], minimum=3)
    out: list[SyntheticFeature] = []
    levels = list(SCHOOL_LEVELS)
    shares = [SCHOOL_LEVELS[k][1] for k in levels]
    for ward, n in zip(wards, per_ward, strict=True):
        rng = rng_for("schools", ward.code)
        counts = allocate(n, shares)
        pts = points_in_ward(ward, n, rng)
        k = 0
        for level, count in zip(levels, counts, strict=True):
            name_vi, _, (lo, hi) = SCHOOL_LEVELS[level]
            for j in range(count):
                pupils = int(rng.integers(lo, hi))
                suffix = f" số {j + 1}" if count > 1 else ""
                out.append(
                    SyntheticFeature(
                        f"{ward.code}-{level}-{j + 1}",
                        pts[k],
                        {
                            "name": f"{name_vi} {ward.name}{suffix}",
                            "level": level,
                            "level_vi": name_vi.replace("Trường ", ""),
                            "pupils": pupils,
                            "teachers": max(8, pupils // int(rng.integers(17, 24))),
                            **_commune_props(ward),
                        },
                    )
                )
                k += 1
    return out


# ---------------------------------------------------------------- tourism

TOURISM_KINDS = {
    "beach": "Bãi biển",
    "relic": "Khu di tích",
    "temple": "Đền, chùa",
    "nature": "Khu sinh thái",
    "village": "Làng văn hoá",
    "park": "Công viên, quảng trường",
}
COASTAL_HINTS = ("Cửa Lò", "Quỳnh", "Diễn", "Nghi", "Hoàng Mai", "Tân Mai", "Quỳnh Mai")


def tourism_sites(wards: Sequence[Ward], total: int = 120) -> list[SyntheticFeature]:
    """About 120 sites: beaches on the coast, relics and temples everywhere, nature in the west."""
    rng = rng_for("tourism", "pick")
    weights = np.array([math.sqrt(w.population) for w in wards])
    picks = rng.choice(len(wards), size=total, replace=True, p=weights / weights.sum())
    out: list[SyntheticFeature] = []
    seen: dict[str, int] = {}
    for i, idx in enumerate(sorted(picks.tolist())):
        ward = wards[idx]
        r = rng_for("tourism", ward.code, i)
        coastal = any(h in ward.name for h in COASTAL_HINTS)
        west = ward.center[0] < 105.2
        if coastal and r.random() < 0.5:
            kind = "beach"
        elif west and r.random() < 0.5:
            kind = "nature"
        elif ward.is_urban and r.random() < 0.3:
            kind = "park"
        else:
            kind = str(r.choice(["relic", "temple", "village"]))
        seen[ward.code] = seen.get(ward.code, 0) + 1
        (pt,) = points_in_ward(ward, 1, r)
        visitors = int(r.lognormal(10.5 if kind == "beach" else 9.5, 0.8))
        out.append(
            SyntheticFeature(
                f"{ward.code}-{seen[ward.code]}",
                pt,
                {
                    "name": f"{TOURISM_KINDS[kind]} {ward.name}"
                    + (f" {seen[ward.code]}" if seen[ward.code] > 1 else ""),
                    "kind": kind,
                    "kind_vi": TOURISM_KINDS[kind],
                    "visitors_per_year": visitors,
                    **_commune_props(ward),
                },
            )
        )
    return out


# ---------------------------------------------------------------- cameras


def cameras(wards: Sequence[Ward], stream_url: str) -> list[SyntheticFeature]:
    """51 cameras: 19 provincial security cameras at commune centres, 32 Vinh VMS cameras."""
    out: list[SyntheticFeature] = []
    vinh = [w for w in wards if w.name in VINH_WARD_NAMES]
    others = sorted(
        (w for w in wards if w.name not in VINH_WARD_NAMES), key=lambda w: (-w.population, w.code)
    )[:19]
    for i, ward in enumerate(others):
        out.append(_camera(f"CA-{i + 1:02d}", "cong_an_tinh", "Công an tỉnh", ward, stream_url, i))
    for i in range(32):
        ward = vinh[i % len(vinh)]
        out.append(_camera(f"VMS-{i + 1:02d}", "vms_vinh", "VMS Vinh", ward, stream_url, 100 + i))
    return out


def _camera(
    cid: str, owner: str, owner_vi: str, ward: Ward, url: str, salt: int
) -> SyntheticFeature:
    rng = rng_for("camera", cid, salt)
    (pt,) = points_in_ward(ward, 1, rng, spread=0.08)
    return SyntheticFeature(
        cid,
        pt,
        {
            "camera_id": cid,
            "name": f"Camera {cid} — {ward.name}",
            "owner": owner,
            "owner_vi": owner_vi,
            "heading_deg": float(rng.integers(0, 72) * 5),
            "fov_deg": float(rng.choice([60.0, 70.0, 80.0, 90.0])),
            "range_m": float(rng.choice([40.0, 60.0, 80.0])),
            "mount_height_m": float(rng.choice([6.0, 7.0, 8.0])),
            "stream_url": url,
            "enabled": True,
            "status": "unknown",
            **_commune_props(ward),
        },
    )


# ---------------------------------------------------------------- field reports

REPORT_CATEGORIES = {
    # category: (Vietnamese, weight, SLA days)
    "traffic": ("Giao thông", 0.22, 3),
    "environment": ("Môi trường", 0.22, 5),
    "urban_order": ("Trật tự đô thị", 0.24, 5),
    "infrastructure": ("Hạ tầng", 0.17, 10),
    "security": ("An ninh trật tự", 0.08, 2),
    "other": ("Khác", 0.07, 7),
}
REPORT_STATUSES_VI = {
    "received": "Đã tiếp nhận",
    "assigned": "Đã giao xử lý",
    "in_progress": "Đang xử lý",
    "resolved": "Đã xử lý",
    "rejected": "Từ chối",
}
RATINGS = ("hai_long", "chap_nhan", "khong_hai_long")
REPORT_TITLES = {
    "traffic": (
        "Đèn tín hiệu hỏng",
        "Ùn tắc giờ cao điểm",
        "Ổ gà trên đường",
        "Đỗ xe sai quy định",
    ),
    "environment": ("Rác thải tồn đọng", "Khói bụi công trình", "Nước thải ra đường", "Đốt rác"),
    "urban_order": (
        "Lấn chiếm vỉa hè",
        "Quảng cáo sai phép",
        "Xây dựng trái phép",
        "Họp chợ tự phát",
    ),
    "infrastructure": ("Cống thoát nước tắc", "Đèn chiếu sáng hỏng", "Nắp hố ga mất", "Cây đổ"),
    "security": ("Tụ tập gây rối", "Trộm cắp vặt", "Đua xe trái phép"),
    "other": ("Góp ý thủ tục", "Tiếng ồn", "Khác"),
}


def field_reports(
    wards: Sequence[Ward], anchor: datetime, total: int = 600
) -> list[SyntheticFeature]:
    """About 600 reports over the 12 months before `anchor`, weighted to urban wards.

    About 90% of those older than their SLA are processed; ratings split 76/12/12 as in VinhSmart.
    """
    weights = [w.population * (4.0 if w.is_urban else 1.0) for w in wards]
    per_ward = allocate(total, weights)
    cats = list(REPORT_CATEGORIES)
    cat_p = np.array([REPORT_CATEGORIES[c][1] for c in cats])
    out: list[SyntheticFeature] = []
    for ward, n in zip(wards, per_ward, strict=True):
        if n == 0:
            continue
        rng = rng_for("reports", ward.code)
        pts = points_in_ward(ward, n, rng, spread=0.2)
        for j in range(n):
            cat = str(rng.choice(cats, p=cat_p / cat_p.sum()))
            cat_vi, _, sla_days = REPORT_CATEGORIES[cat]
            age_h = float(rng.uniform(0, 365 * 24))
            received = (anchor - timedelta(hours=age_h)).replace(microsecond=0)
            due = received + timedelta(days=sla_days)
            status, resolved_at, on_time, rating = _report_outcome(rng, received, due, anchor)
            title = str(rng.choice(REPORT_TITLES[cat]))
            code = f"PA-{ward.code}-{j + 1:04d}"
            out.append(
                SyntheticFeature(
                    code,
                    pts[j],
                    {
                        "report_code": code,
                        "category": cat,
                        "category_vi": cat_vi,
                        "status": status,
                        "status_vi": REPORT_STATUSES_VI[status],
                        "title": title,
                        "received_at": received.isoformat(),
                        "due_at": due.isoformat(),
                        "resolved_at": resolved_at.isoformat() if resolved_at else None,
                        "on_time": on_time,
                        "rating": rating,
                        **_commune_props(ward),
                    },
                    observed_at=received,
                )
            )
    return out


def _report_outcome(
    rng: np.random.Generator, received: datetime, due: datetime, anchor: datetime
) -> tuple[str, datetime | None, bool | None, str | None]:
    age_days = (anchor - received).total_seconds() / 86400
    if age_days < 2:
        status = str(rng.choice(["received", "assigned", "in_progress"], p=[0.5, 0.3, 0.2]))
        return status, None, None, None
    if rng.random() < 0.03:
        return "rejected", None, None, None
    if rng.random() > 0.93 and age_days < 30:
        return str(rng.choice(["assigned", "in_progress"])), None, None, None
    sla_h = (due - received).total_seconds() / 3600
    took_h = float(rng.gamma(2.0, sla_h * 0.4))
    resolved_at = min(received + timedelta(hours=took_h), anchor).replace(microsecond=0)
    on_time = resolved_at <= due
    rating = str(rng.choice(RATINGS, p=[0.76, 0.12, 0.12]))
    return "resolved", resolved_at, on_time, rating


# ---------------------------------------------------------------- land parcels

LAND_USE_URBAN = (
    ("ODT", 0.70),
    ("TMD", 0.10),
    ("SKC", 0.04),
    ("DGD", 0.03),
    ("CLN", 0.05),
    ("DGT", 0.08),
)
LAND_USE_RURAL = (
    ("ONT", 0.40),
    ("LUC", 0.30),
    ("CLN", 0.17),
    ("TMD", 0.03),
    ("DGT", 0.05),
    ("SKC", 0.05),
)
SHEET_SIZE_M = 500.0


def parcel_wards(wards: Sequence[Ward]) -> list[Ward]:
    """Vinh's five wards first, then the communes and wards around them, nearest first."""
    vinh = [w for w in wards if w.name in VINH_WARD_NAMES]
    core = shapely.union_all([w.geometry for w in vinh])
    to_m = _to_metric()
    core_m = shapely.transform(core, lambda xy: np.column_stack(to_m.transform(xy[:, 0], xy[:, 1])))
    rest = []
    for w in wards:
        if w in vinh:
            continue
        c = shapely.transform(
            w.geometry, lambda xy: np.column_stack(to_m.transform(xy[:, 0], xy[:, 1]))
        )
        rest.append((core_m.distance(c), w.code, w))
    rest.sort(key=lambda t: (t[0], t[1]))
    return vinh + [w for _, _, w in rest]


def land_parcels(wards: Sequence[Ward], total: int) -> list[SyntheticFeature]:
    """`total` non-overlapping cadastral lots in Vinh and its neighbours.

    Each ward gets a rotated street grid in VN-2000 metres; blocks are split into two rows of
    lots of varying frontage (narrow townhouse lots in wards, wider ones in communes). Lots are
    taken from the ward centre outwards and kept only when wholly inside the ward, so none
    overlap and none cross a ward boundary.
    """
    if total <= 0:
        return []
    ordered = parcel_wards(wards)
    # Use Vinh plus as many neighbours as needed for room, then share lots by capacity.
    chosen: list[Ward] = []
    capacity = 0
    for ward in ordered:
        chosen.append(ward)
        capacity += _ward_capacity(ward)
        if len(chosen) >= 8 and capacity >= total * 1.5:
            break
    shares = allocate(total, [_ward_capacity(w) for w in chosen])
    out: list[SyntheticFeature] = []
    to_wgs = _to_wgs84()

    def to_wgs_xy(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(to_wgs.transform(xy[:, 0], xy[:, 1]))

    for ward, want in zip(chosen, shares, strict=True):
        lots, props = _ward_lots(ward, min(want, _ward_capacity(ward)))
        if not lots:
            continue
        wgs = shapely.transform(np.asarray(lots, dtype=object), to_wgs_xy)
        for geom, p in zip(wgs.tolist(), props, strict=True):
            key = f"{p['MaXa']}-{p['SoHieuToBanDo']}-{p['SoThuTuThua']}"
            out.append(SyntheticFeature(key, geom, p))
    return out


def _ward_capacity(ward: Ward) -> int:
    # Leave room for roads, water and fields between the built-up lots.
    mean_lot = 150.0 if ward.is_urban else 700.0
    return int(ward.area_km2 * 1e6 * 0.4 / mean_lot)


def _grid_lots(rng: np.random.Generator, radius: float, urban: bool) -> np.ndarray:
    """Lot rectangles (x0, y0, x1, y1) of a street grid covering [-radius, radius]², unrotated."""
    depth = 18.0 if urban else 35.0
    block_len = 110.0 if urban else 220.0
    street = 10.0 if urban else 14.0
    lo, hi = (5.0, 12.0) if urban else (12.0, 30.0)
    pitch_x, pitch_y = block_len + street, 2 * depth + street
    nx, ny = int(radius // pitch_x) + 1, int(radius // pitch_y) + 1
    grid_x, grid_y = np.meshgrid(np.arange(-nx, nx + 1), np.arange(-ny, ny + 1))
    bx, by = grid_x.ravel(), grid_y.ravel()
    # Two rows of lots per block; every lot in a row shares the row's depth, so neighbours
    # share whole edges and never overlap after reprojection.
    row_x0 = np.repeat(bx * pitch_x, 2).astype(float)
    row_y0 = (np.repeat(by * pitch_y, 2) + np.tile([0.0, depth], len(bx))).astype(float)
    row_depth = depth * rng.uniform(0.85, 1.0, len(row_x0))
    per_row = int(np.ceil(block_len / lo)) + 1
    widths = rng.uniform(lo, hi, (len(row_x0), per_row))
    ends = np.cumsum(widths, axis=1)
    starts = ends - widths
    valid = starts < block_len - 4
    ends = np.minimum(ends, block_len)
    r_idx, c_idx = np.nonzero(valid)
    x0 = row_x0[r_idx] + starts[r_idx, c_idx]
    x1 = row_x0[r_idx] + ends[r_idx, c_idx]
    y0 = row_y0[r_idx]
    y1 = y0 + row_depth[r_idx]
    return np.column_stack((x0, y0, x1, y1))


def _ward_lots(ward: Ward, want: int) -> tuple[list[shapely.Geometry], list[dict[str, Any]]]:
    rng = rng_for("parcels", ward.code)
    to_m = _to_metric()
    geom_m = shapely.transform(
        ward.geometry, lambda xy: np.column_stack(to_m.transform(xy[:, 0], xy[:, 1]))
    )
    shapely.prepare(geom_m)
    cx, cy = to_m.transform(*ward.center)
    if not geom_m.contains(Point(cx, cy)):
        rep = geom_m.representative_point()
        cx, cy = rep.x, rep.y
    urban = ward.is_urban
    angle = math.radians(float(rng.uniform(-25, 25)))
    cos, sin = math.cos(angle), math.sin(angle)

    def place(xy: np.ndarray) -> np.ndarray:
        x, y = xy[:, 0], xy[:, 1]
        return np.column_stack((cx + x * cos - y * sin, cy + x * sin + y * cos))

    minx, miny, maxx, maxy = geom_m.bounds
    max_radius = max(maxx - cx, cx - minx, maxy - cy, cy - miny) + 200
    area_per_lot = 260.0 if urban else 1100.0
    radius = min(math.sqrt(want * area_per_lot / math.pi) * 1.4 + 200, max_radius)
    while True:
        arr = _grid_lots(rng_for("parcels-grid", ward.code), radius, urban)
        dist = np.hypot((arr[:, 0] + arr[:, 2]) / 2, (arr[:, 1] + arr[:, 3]) / 2)
        arr = arr[np.argsort(dist, kind="stable")]
        placed = shapely.transform(shapely.box(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3]), place)
        keep = placed[shapely.contains(geom_m, placed)]
        if len(keep) >= want or radius >= max_radius:
            keep = keep[:want]
            break
        radius = min(radius * 1.6, max_radius)
    ranks = np.linspace(0.0, 1.0, num=max(len(keep), 1))
    uses = LAND_USE_URBAN if urban else LAND_USE_RURAL
    codes = [u for u, _ in uses]
    probs = np.array([p for _, p in uses])
    areas = shapely.area(keep)
    centroids = shapely.get_coordinates(shapely.centroid(keep))
    sheets_x = (centroids[:, 0] // SHEET_SIZE_M).astype(int)
    sheets_y = (centroids[:, 1] // SHEET_SIZE_M).astype(int)
    props: list[dict[str, Any]] = []
    sheet_seq: dict[tuple[int, int], int] = {}
    sheet_no: dict[tuple[int, int], int] = {}
    draws = rng.random(len(keep))
    for i in range(len(keep)):
        sheet = (int(sheets_x[i]), int(sheets_y[i]))
        if sheet not in sheet_no:
            sheet_no[sheet] = len(sheet_no) + 1
        sheet_seq[sheet] = sheet_seq.get(sheet, 0) + 1
        # Farther from the centre, more farmland in communes and fewer shops in wards.
        p = probs.copy()
        p[1] *= (0.5 + 1.5 * ranks[i]) if not urban else (1.8 - 1.5 * ranks[i])
        cum = np.cumsum(p / p.sum())
        code = codes[min(int(np.searchsorted(cum, draws[i])), len(codes) - 1)]
        props.append(
            {
                "MaXa": ward.code,
                "SoHieuToBanDo": sheet_no[sheet],
                "SoThuTuThua": sheet_seq[sheet],
                "DienTich": round(float(areas[i]), 1),
                "KyHieuMucDichSuDung": code,
                "commune_code": ward.code,
            }
        )
    return keep.tolist(), props


def utc_day(dt: datetime) -> datetime:
    """Midnight UTC of the given instant's day."""
    return dt.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


# ---------------------------------------------------------------- agencies

PROVINCIAL_AGENCIES = (
    "Văn phòng UBND tỉnh",
    "Sở Nội vụ",
    "Sở Tài chính",
    "Sở Tư pháp",
    "Sở Công Thương",
    "Sở Xây dựng",
    "Sở Nông nghiệp và Môi trường",
    "Sở Khoa học và Công nghệ",
    "Sở Giáo dục và Đào tạo",
    "Sở Y tế",
    "Sở Văn hóa và Thể thao",
    "Sở Du lịch",
    "Sở Dân tộc và Tôn giáo",
    "Sở Ngoại vụ",
    "Thanh tra tỉnh",
    "Ban Quản lý Khu kinh tế Đông Nam",
    "Văn phòng Đoàn ĐBQH và HĐND tỉnh",
    "Bảo hiểm xã hội tỉnh",
)
AGENCY_KINDS_VI = {
    "so_nganh": "Sở, ban, ngành",
    "ubnd_xa": "UBND xã, phường",
    # issue 21: synthetic emergency posts for incident tasks
    "cong_an_tinh": "Công an tỉnh",
    "cong_an_xa": "Công an xã, phường",
    "pccc": "Cảnh sát PCCC và CNCH",
    "cap_cuu_115": "Trung tâm cấp cứu 115",
}
# Where the synthetic fire-and-rescue teams and 115 stations stand outside Vinh: the most
# populous communes, like the real posts along National Roads 1, 7, 46 and 48.
FIRE_POSTS_OUTSIDE_VINH = 9
AMBULANCE_POSTS_OUTSIDE_VINH = 6


def agency_code(kind: str, index: int, ward_code: str = "") -> str:
    """The agency code (ma_don_vi) shared by iGate, iOffice and SOC, in the QCVN 102 shape."""
    if kind == "so_nganh":
        return f"000.00.{index:02d}.H40"
    return f"000.{ward_code}.00.H40"


def agencies(wards: Sequence[Ward]) -> list[SyntheticFeature]:
    """The provincial departments (in Vinh) and one People's Committee per commune or ward."""
    out: list[SyntheticFeature] = []
    vinh = [w for w in wards if w.name in VINH_WARD_NAMES]
    for i, name in enumerate(PROVINCIAL_AGENCIES, start=1):
        ward = vinh[i % len(vinh)]
        rng = rng_for("agencies", "so", i)
        (pt,) = points_in_ward(ward, 1, rng, spread=0.1)
        code = agency_code("so_nganh", i)
        out.append(
            SyntheticFeature(
                code,
                pt,
                {
                    "name": name,
                    "kind": "so_nganh",
                    "kind_vi": AGENCY_KINDS_VI["so_nganh"],
                    "ma_don_vi": code,
                    **_commune_props(ward),
                },
            )
        )
    out += emergency_posts(wards)
    for ward in wards:
        rng = rng_for("agencies", "ubnd", ward.code)
        (pt,) = points_in_ward(ward, 1, rng, spread=0.05)
        code = agency_code("ubnd_xa", 0, ward.code)
        prefix = "UBND phường" if ward.is_urban else "UBND xã"
        out.append(
            SyntheticFeature(
                code,
                pt,
                {
                    "name": f"{prefix} {ward.name}",
                    "kind": "ubnd_xa",
                    "kind_vi": AGENCY_KINDS_VI["ubnd_xa"],
                    "ma_don_vi": code,
                    **_commune_props(ward),
                },
            )
        )
    return out


def _post(kind: str, code: str, name: str, ward: Ward, salt: object) -> SyntheticFeature:
    (pt,) = points_in_ward(ward, 1, rng_for("agencies", kind, salt), spread=0.08)
    props = {"name": name, "kind": kind, "kind_vi": AGENCY_KINDS_VI[kind], "ma_don_vi": code}
    return SyntheticFeature(code, pt, {**props, **_commune_props(ward), "synthetic": True})


def emergency_posts(wards: Sequence[Ward]) -> list[SyntheticFeature]:
    """Synthetic police (province HQ, one post per commune), fire-and-rescue and 115 posts."""
    vinh = [w for w in wards if w.name in VINH_WARD_NAMES]
    others = sorted(
        (w for w in wards if w.name not in VINH_WARD_NAMES), key=lambda w: (-w.population, w.code)
    )
    # Codes 000.00.50-77.H40 stay clear of the departments (01-18) and of the dissolved unit
    # 000.00.99.H40 the iGate simulator exports on purpose.
    out = [_post("cong_an_tinh", "000.00.50.H40", "Công an tỉnh Nghệ An", vinh[0], 0)]
    for ward in wards:
        prefix = "Công an phường" if ward.is_urban else "Công an xã"
        code = f"000.{ward.code}.90.H40"
        out.append(_post("cong_an_xa", code, f"{prefix} {ward.name}", ward, ward.code))
    fire = [vinh[0], vinh[2 % len(vinh)], *others[:FIRE_POSTS_OUTSIDE_VINH]]
    for i, ward in enumerate(fire, start=1):
        name = f"Đội Cảnh sát PCCC và CNCH khu vực {ward.name}"
        out.append(_post("pccc", f"000.00.{50 + i:02d}.H40", name, ward, i))
    amb = [vinh[1 % len(vinh)], *others[:AMBULANCE_POSTS_OUTSIDE_VINH]]
    for i, ward in enumerate(amb, start=1):
        name = "Trung tâm cấp cứu 115 Nghệ An" if i == 1 else f"Trạm cấp cứu 115 {ward.name}"
        out.append(_post("cap_cuu_115", f"000.00.{70 + i:02d}.H40", name, ward, i))
    return out
