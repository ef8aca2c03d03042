"""What each simulated sector system holds: deterministic records in its own Vietnamese shape.

A period's figures depend only on the seed and the period (never on the day they are read),
so a later read returns the same values; only the current, still open month grows day by day.
Each system also carries one fixed malformed record, as real exports do, so the connectors'
quarantine is exercised by the demo and the tests.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Any

import numpy as np

from layers.demo import synthetic
from layers.demo.boundaries import Ward, load_wards
from layers.features.placenames import strip_marks as strip_diacritics

ICT = timezone(timedelta(hours=7))  # Asia/Ho_Chi_Minh has had no DST since 1975
FIRST_MONTH = date(2024, 1, 1)
HEALTH_RECENT_DAYS = 120
NEWS_DAYS = 60
# Figures the province publishes, reproduced exactly by the simulators.
VB_2024_INCOMING = 272_868
VB_2024_OUTGOING = 141_686
VB_2024_SIGNED_RATE = 0.97
YT_JUNE_2024 = {"records": 41_285, "insured": 39_868, "emergencies": 146}
LATE_SPIKE_COMMUNE = "17662"  # Đô Lương: late dossiers climb past 5% month by month
NEWS_SPIKE_COMMUNE = "17464"  # Diễn Châu: a burst of negative items on the last three days

Record = dict[str, Any]


@dataclass(frozen=True)
class Unit:
    """A reporting unit of a sector system (an agency, hospital, school, site or commune)."""

    code: str
    name: str
    kind: str
    commune_code: str
    size: float  # beds, pupils, visitors per year or population: what the figures scale with
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Units:
    """Every unit the simulators report on (the demo's synthetic layers)."""

    agencies: list[Unit]
    hospitals: list[Unit]
    schools: list[Unit]
    sites: list[Unit]
    communes: list[Unit]


@lru_cache(maxsize=1)
def demo_units() -> Units:
    """The units of the Nghệ An demo, built by the same generators as the seed."""
    wards = list(load_wards())
    return units_from_wards(wards)


def units_from_wards(wards: Sequence[Ward]) -> Units:
    """Units from the synthetic generators (so codes equal the demo features' source keys)."""
    pop = {w.code: w.population for w in wards}

    def conv(
        rows: list[synthetic.SyntheticFeature], size: Callable[[dict[str, Any]], float]
    ) -> list[Unit]:
        return [
            Unit(
                r.source_key,
                str(r.properties["name"]),
                str(
                    r.properties.get("kind")
                    or r.properties.get("type")
                    or r.properties.get("level")
                ),
                str(r.properties["commune_code"]),
                float(size(r.properties)),
                dict(r.properties),
            )
            for r in rows
        ]

    return Units(
        agencies=conv(
            # the administrative agencies only: the emergency posts (issue 21) file no dossiers
            [
                a
                for a in synthetic.agencies(wards)
                if a.properties["kind"] in ("so_nganh", "ubnd_xa")
            ],
            lambda p: 60_000.0 if p["kind"] == "so_nganh" else float(pop[p["commune_code"]]),
        ),
        hospitals=conv(synthetic.hospitals(wards), lambda p: float(p["beds"])),
        schools=conv(synthetic.schools(wards), lambda p: float(p["pupils"])),
        sites=conv(synthetic.tourism_sites(wards), lambda p: float(p["visitors_per_year"])),
        communes=[
            Unit(w.code, w.name, w.kind, w.code, float(w.population), {"is_urban": w.is_urban})
            for w in wards
        ],
    )


# ---------------------------------------------------------------- time helpers


def month_starts(first: date, last: date) -> list[date]:
    """First days of every month from `first`'s month to `last`'s month."""
    out, m = [], date(first.year, first.month, 1)
    while m <= last:
        out.append(m)
        m = next_month(m)
    return out


def next_month(m: date) -> date:
    """First day of the following month."""
    return date(m.year + (m.month == 12), m.month % 12 + 1, 1)


def stamp(d: date, hour: int = 8, minute: int = 0, second: int = 0) -> str:
    """An ICT timestamp in the one format every system uses (so strings sort by time)."""
    return datetime.combine(d, time(hour, minute, second), ICT).isoformat()


def stamp_dt(dt: datetime) -> str:
    """Any instant as an ICT timestamp string in the systems' format."""
    return dt.astimezone(ICT).replace(microsecond=0).isoformat()


def today_ict() -> date:
    """Today in Vietnam."""
    return datetime.now(UTC).astimezone(ICT).date()


def month_release(m: date, today: date) -> tuple[str, float] | None:
    """When a month's figures were last updated, and the share of the month they cover.

    A closed month is published on the 1st of the next one at 08:00; the open month is
    refreshed daily (its figures cover the days elapsed). Future months do not exist yet.
    """
    if m > today:
        return None
    nxt = next_month(m)
    if nxt <= today:
        return stamp(nxt), 1.0
    days = calendar.monthrange(m.year, m.month)[1]
    return stamp(today, 0), today.day / days


def rng(seed: int, *parts: object) -> np.random.Generator:
    """The deterministic generator of one system and period."""
    return synthetic.rng_for("sim", seed, *parts)


def _season(m: date) -> float:
    # Tết (Jan/Feb) slows offices down; the year-end rush speeds them up.
    return {1: 0.95, 2: 0.72, 6: 1.02, 12: 1.15}.get(m.month, 1.0)


def _released_months(
    seed: int, system: str, today: date
) -> Iterator[tuple[int, date, str, float, np.random.Generator]]:
    """(month number since FIRST_MONTH, month, updated, share, generator) of each released month."""
    for idx, m in enumerate(month_starts(FIRST_MONTH, today)):
        rel = month_release(m, today)
        if rel is None:
            continue
        updated, share = rel
        yield idx, m, updated, share, rng(seed, system, m)


def _scale(values: np.ndarray, share: float) -> np.ndarray:
    return np.rint(values * share).astype(np.int64) if share < 1.0 else values


# ---------------------------------------------------------------- systems


@dataclass(frozen=True)
class System:
    """One simulated API: its records, key fields, cursor field and paging style."""

    name: str
    title: str
    path: str
    key: tuple[str, ...]
    generate: Callable[[Units, int, date], list[Record]]
    period_field: str
    page_param: str = "page"
    size_param: str = "page_size"
    since_param: str = "cap_nhat_tu"
    records_key: str = "du_lieu"
    next_link: bool = False
    cursor_field: str = "ngay_cap_nhat"


def igate(units: Units, seed: int, today: date) -> list[Record]:
    """Dossiers per agency per month (iGate / Cổng dịch vụ công)."""
    out: list[Record] = []
    ags = units.agencies
    sizes = np.array([u.size for u in ags])
    base = np.where(np.array([u.kind == "so_nganh" for u in ags]), 900.0, sizes / 30_000.0 * 420.0)
    spike = np.array([u.commune_code == LATE_SPIKE_COMMUNE and u.kind == "ubnd_xa" for u in ags])
    for idx, m, updated, share, r in _released_months(seed, "igate", today):
        trend = 1.0 + 0.04 * idx / 12
        received = _scale(r.poisson(base * _season(m) * trend), share)
        resolved = r.binomial(received, 0.955)
        late_rate = np.clip(r.normal(0.025, 0.01, len(ags)), 0.002, 0.06)
        # One commune drifts into lateness (a function of the month only, never of today).
        late_rate = np.where(spike, 0.02 + 0.0025 * idx, late_rate)
        late = r.binomial(resolved, late_rate)
        online_rate = np.clip(0.55 + 0.3 * idx / 36 + r.normal(0, 0.05, len(ags)), 0.2, 0.97)
        online = r.binomial(received, online_rate)
        for i, u in enumerate(ags):
            out.append(
                {
                    "ma_don_vi": u.code,
                    "ten_don_vi": u.name,
                    "thang": f"{m:%Y-%m}",
                    "so_ho_so_tiep_nhan": int(received[i]),
                    "so_ho_so_da_giai_quyet": int(resolved[i]),
                    "so_ho_so_dung_han": int(resolved[i] - late[i]),
                    "so_ho_so_tre_han": int(late[i]),
                    "so_ho_so_truc_tuyen": int(online[i]),
                    "ngay_cap_nhat": updated,
                }
            )
    # An agency dissolved in the 2025 reform still appears in the export: unknown unit code.
    if out:
        out.append({**out[0], "ma_don_vi": "000.00.99.H40", "ten_don_vi": "Đơn vị đã giải thể"})
    return out


def ioffice(units: Units, seed: int, today: date) -> list[Record]:
    """Documents per agency per month (iOffice): 2024 totals are the province's own."""
    out: list[Record] = []
    ags = units.agencies
    n = len(ags)
    unit_w = np.array([6.0 if u.kind == "so_nganh" else 1.0 + u.size / 40_000.0 for u in ags])
    for year in range(FIRST_MONTH.year, today.year + 1):
        r = rng(seed, "ioffice", year)
        growth = 1.05 ** (year - 2024)
        months = [date(year, k, 1) for k in range(1, 13)]
        season = np.array([_season(m) for m in months])
        w_in = (unit_w[:, None] * season[None, :] * r.lognormal(0, 0.15, (n, 12))).ravel()
        w_out = (unit_w[:, None] * season[None, :] * r.lognormal(0, 0.15, (n, 12))).ravel()
        incoming = np.array(synthetic.allocate(round(VB_2024_INCOMING * growth), w_in.tolist()))
        outgoing = np.array(synthetic.allocate(round(VB_2024_OUTGOING * growth), w_out.tolist()))
        rate = min(VB_2024_SIGNED_RATE + 0.005 * (year - 2024), 0.995)
        signed = np.array(synthetic.allocate(round(outgoing.sum() * rate), outgoing.tolist()))
        pending = r.binomial(incoming, 0.03)
        incoming, outgoing, signed, pending = (
            a.reshape(n, 12) for a in (incoming, outgoing, signed, pending)
        )
        for k, m in enumerate(months):
            rel = month_release(m, today)
            if rel is None or m < FIRST_MONTH:
                continue
            updated, share = rel
            cols = [_scale(a[:, k], share) for a in (incoming, outgoing, signed, pending)]
            for i, u in enumerate(ags):
                out.append(
                    {
                        "ma_don_vi": u.code,
                        "ten_don_vi": u.name,
                        "ky_bao_cao": f"{m:%m/%Y}",
                        "van_ban_den": int(cols[0][i]),
                        "van_ban_di": int(cols[1][i]),
                        "van_ban_di_ky_so": int(cols[2][i]),
                        "van_ban_chua_xu_ly": int(cols[3][i]),
                        "ngay_cap_nhat": updated,
                    }
                )
    # A hand-edited figure, not a number (in 2025, so the 2024 totals stay the published ones).
    bad = next((i for i, r_ in enumerate(out) if r_["ky_bao_cao"] == "01/2025"), 0)
    if out:
        out[bad] = {**out[bad], "van_ban_den": "1.2O4"}
    return out


_HOSP_TYPE = {
    # type: (records per bed per day, inpatient share, emergency weight)
    "health_station": (0.42, 0.01, 0.02),
    "regional_hospital": (0.16, 0.14, 1.0),
    "provincial_hospital": (0.05, 0.22, 2.2),
}
_WEEKDAY = np.array([1.1, 1.05, 1.0, 1.0, 1.02, 0.8, 0.55])


def _health_days(today: date) -> list[date]:
    june = [date(2024, 6, d) for d in range(1, 31)]
    recent = [today - timedelta(days=k) for k in range(HEALTH_RECENT_DAYS, 0, -1)]
    return sorted({d for d in june + recent if d < today})


def health(units: Units, seed: int, today: date) -> list[Record]:
    """Visits per hospital per day (health data portal): June 2024 matches the province."""
    hs = units.hospitals
    beds = np.array([u.size for u in hs])
    kinds = [u.kind for u in hs]
    rate = np.array([_HOSP_TYPE[k][0] for k in kinds]) * beds
    rate *= YT_JUNE_2024["records"] / 30 / rate.sum()  # province mean visits per day
    inpat = np.array([_HOSP_TYPE[k][1] for k in kinds])
    emerg_w = np.array([_HOSP_TYPE[k][2] for k in kinds]) * np.sqrt(beds)
    june = _june_2024(hs, rate, emerg_w, seed)
    out: list[Record] = []
    for d in _health_days(today):
        if d.year == 2024 and d.month == 6:
            rec, ins, em = (a[:, d.day - 1] for a in june)
            r = rng(seed, "yte", d)
        else:
            r = rng(seed, "yte", d)
            rec = r.poisson(rate * _WEEKDAY[d.weekday()] * (1.0 + 0.03 * (d.year - 2024)))
            ins = r.binomial(rec, YT_JUNE_2024["insured"] / YT_JUNE_2024["records"])
            em = r.poisson(YT_JUNE_2024["emergencies"] / 30 * emerg_w / emerg_w.sum())
        inp = r.binomial(rec, inpat)
        deaths = r.binomial(em + inp, 0.004)
        updated = stamp(d + timedelta(days=1), 6)
        for i, u in enumerate(hs):
            out.append(
                {
                    "ma_co_so": u.code,
                    "ten_co_so": u.name,
                    "ngay": d.isoformat(),
                    "tong_luot_kcb": int(rec[i]),
                    "luot_co_bhyt": int(ins[i]),
                    "luot_khong_bhyt": int(rec[i] - ins[i]),
                    "cap_cuu": int(em[i]),
                    "tu_vong": int(deaths[i]),
                    "dieu_tri_noi_tru": int(inp[i]),
                    "dieu_tri_ngoai_tru": int(rec[i] - inp[i]),
                    "ngay_cap_nhat": updated,
                }
            )
    # A day that does not exist, as typed by hand (outside June 2024, whose totals are exact).
    for rec_ in out:
        if not rec_["ngay"].startswith("2024-06"):
            rec_["ngay"] = rec_["ngay"][:8] + "32"
            break
    return out


def _june_2024(
    hs: list[Unit], rate: np.ndarray, emerg_w: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """June 2024 allocated exactly to the province's published totals."""
    r = rng(seed, "yte", "2024-06")
    wd = np.array([_WEEKDAY[date(2024, 6, d).weekday()] for d in range(1, 31)])
    w = rate[:, None] * wd[None, :] * r.lognormal(0, 0.1, (len(hs), 30))
    records = np.array(synthetic.allocate(YT_JUNE_2024["records"], w.ravel().tolist()))
    insured = np.array(synthetic.allocate(YT_JUNE_2024["insured"], records.tolist()))
    ew = (emerg_w[:, None] * r.lognormal(0, 0.5, (len(hs), 30))).ravel()
    emerg = np.array(synthetic.allocate(YT_JUNE_2024["emergencies"], ew.tolist()))
    return tuple(a.reshape(len(hs), 30) for a in (records, insured, emerg))  # type: ignore[return-value]


_CLASS_SIZE = {"mam_non": 26, "tieu_hoc": 33, "thcs": 38, "thpt": 40}


def vnedu(units: Units, seed: int, today: date) -> list[Record]:
    """Classes, teachers, pupils and results per school per school year (vnEdu)."""
    out: list[Record] = []
    sc = units.schools
    pupils0 = np.array([u.size for u in sc])
    teachers0 = np.array([float(u.extra.get("teachers", 20)) for u in sc])
    class_size = np.array([_CLASS_SIZE.get(u.kind, 35) for u in sc])
    for year in range(2023, today.year + 1):
        opened = date(year, 9, 15)
        if opened > today:
            continue
        r = rng(seed, "vnedu", year)
        drift = 1.0 + 0.015 * (year - 2024)
        pupils = np.maximum(20, np.rint(pupils0 * drift * r.normal(1.0, 0.03, len(sc)))).astype(int)
        teachers = np.maximum(4, np.rint(teachers0 * r.normal(1.0, 0.04, len(sc)))).astype(int)
        classes = np.maximum(1, np.ceil(pupils / class_size)).astype(int)
        good = r.binomial(
            pupils, np.clip(r.normal(0.68 + 0.01 * (year - 2023), 0.08, len(sc)), 0.2, 0.97)
        )
        for i, u in enumerate(sc):
            out.append(
                {
                    "ma_truong": u.code,
                    "ten_truong": u.name,
                    "cap_hoc": u.kind,
                    "nam_hoc": f"{year}-{year + 1}",
                    "so_lop": int(classes[i]),
                    "so_giao_vien": int(teachers[i]),
                    "so_hoc_sinh": int(pupils[i]),
                    "so_hoc_sinh_kha_gioi": int(good[i]),
                    "ngay_cap_nhat": stamp(opened),
                }
            )
    if out:
        out[0] = {**out[0], "so_hoc_sinh": "N/A"}
    return out


_TOURISM_SEASON = {
    "beach": (0.2, 0.25, 0.5, 0.9, 1.6, 2.6, 2.9, 2.2, 0.8, 0.4, 0.2, 0.2),
    "default": (1.6, 1.9, 1.3, 1.0, 1.1, 0.9, 0.8, 0.8, 0.8, 0.8, 0.7, 0.9),
}


def tourism(units: Units, seed: int, today: date) -> list[Record]:
    """Visitors and revenue per tourism site per month."""
    out: list[Record] = []
    st = units.sites
    vpy = np.array([u.size for u in st])
    for idx, m, updated, share, r in _released_months(seed, "dulich", today):
        season = np.array(
            [_TOURISM_SEASON.get(u.kind, _TOURISM_SEASON["default"])[m.month - 1] for u in st]
        )
        visitors = _scale(r.poisson(vpy / 12 * season * (1 + 0.06 * idx / 12)), share)
        intl = r.binomial(visitors, 0.05)
        spend = r.normal(0.45, 0.08, len(st)).clip(0.15)
        for i, u in enumerate(st):
            out.append(
                {
                    "ma_diem": u.code,
                    "ten_diem": u.name,
                    "thang": f"{m:%Y-%m}",
                    "tong_luot_khach": int(visitors[i]),
                    "khach_quoc_te": int(intl[i]),
                    "doanh_thu_trieu_dong": round(float(visitors[i] * spend[i]), 1),
                    "ngay_cap_nhat": updated,
                }
            )
    if out:
        out.append({**out[0], "ma_diem": "DL-KHONG-RO", "ten_diem": "Điểm chưa đăng ký"})
    return out


def soc(units: Units, seed: int, today: date) -> list[Record]:
    """Information-security incidents per agency per month (the provincial SOC)."""
    out: list[Record] = []
    ags = units.agencies
    lam = np.array([4.0 if u.kind == "so_nganh" else 0.6 for u in ags])
    for _idx, m, updated, share, r in _released_months(seed, "soc", today):
        incidents = _scale(r.poisson(lam), share)
        resolved = r.binomial(incidents, 0.92)
        critical = r.binomial(incidents, 0.06)
        for i, u in enumerate(ags):
            out.append(
                {
                    "ma_don_vi": u.code,
                    "ten_don_vi": u.name,
                    "thang": f"{m:%Y-%m}",
                    "so_su_co": int(incidents[i]),
                    "so_su_co_da_xu_ly": int(resolved[i]),
                    "so_su_co_nghiem_trong": int(critical[i]),
                    "ngay_cap_nhat": updated,
                }
            )
    if out:
        out.append({**out[0], "ma_don_vi": None, "ten_don_vi": "(trống)"})
    return out


# ---------------------------------------------------------------- news

NEWS_SOURCES = (
    ("Báo Nghệ An", "baonghean.vn"),
    ("VnExpress", "vnexpress.net"),
    ("Dân trí", "dantri.com.vn"),
    ("Tuổi Trẻ", "tuoitre.vn"),
    ("Facebook", "facebook.com"),
    ("Zalo", "zalo.me"),
    ("TikTok", "tiktok.com"),
    ("YouTube", "youtube.com"),
)
NEWS_TEMPLATES = {
    "tich_cuc": (
        (
            "{place} ra mắt mô hình nông thôn mới kiểu mẫu",
            "Người dân {place} phấn khởi đón nhận kết quả xây dựng nông thôn mới.",
        ),
        (
            "Lễ hội truyền thống thu hút đông du khách về {place}",
            "Nhiều hoạt động văn hoá đặc sắc được tổ chức tại {place}.",
        ),
        (
            "{place} hoàn thành sớm kế hoạch giải ngân vốn đầu tư công",
            "Tiến độ giải ngân tại {place} vượt kế hoạch năm.",
        ),
        (
            "Học sinh {place} đạt giải cao trong kỳ thi cấp tỉnh",
            "Thành tích giáo dục của {place} được biểu dương.",
        ),
    ),
    "trung_tinh": (
        (
            "{place} tổ chức hội nghị triển khai nhiệm vụ quý",
            "UBND {place} họp bàn kế hoạch phát triển kinh tế - xã hội.",
        ),
        ("Tiếp xúc cử tri tại {place}", "Đại biểu HĐND tỉnh tiếp xúc cử tri {place}."),
        (
            "{place} rà soát hộ nghèo, cận nghèo năm nay",
            "Công tác rà soát được thực hiện công khai tại {place}.",
        ),
        (
            "Diễn tập phòng chống thiên tai ở {place}",
            "Lực lượng chức năng {place} diễn tập ứng phó mưa lũ.",
        ),
    ),
    "tieu_cuc": (
        (
            "Người dân {place} bức xúc vì ô nhiễm từ trại chăn nuôi",
            "Mùi hôi kéo dài nhiều ngày khiến người dân {place} phản ánh.",
        ),
        (
            "Ngập úng cục bộ sau mưa lớn tại {place}",
            "Nhiều tuyến đường ở {place} ngập sâu, giao thông ách tắc.",
        ),
        (
            "Phản ánh chậm giải quyết hồ sơ đất đai ở {place}",
            "Người dân {place} chờ nhiều tháng chưa được cấp giấy chứng nhận.",
        ),
        (
            "Sạt lở bờ sông đe doạ nhà dân ở {place}",
            "Hàng chục hộ dân {place} phải di dời khẩn cấp.",
        ),
    ),
}
NO_PLACE = (
    (
        "Nghệ An đẩy mạnh chuyển đổi số trong cơ quan nhà nước",
        "Tỉnh đặt mục tiêu 100% hồ sơ công việc được xử lý trên môi trường mạng.",
    ),
    (
        "Giá xăng dầu tăng nhẹ từ chiều nay",
        "Liên Bộ Công Thương - Tài chính điều chỉnh giá bán lẻ xăng dầu.",
    ),
    ("Dự báo thời tiết: miền Trung có mưa rào", "Khu vực Bắc Trung Bộ có mưa rào và dông rải rác."),
)
SENTIMENT_P = (0.33, 0.47, 0.20)


def _place(u: Unit) -> str:
    return ("phường " if u.kind == "Phường" else "xã ") + u.name


def news(units: Units, seed: int, today: date) -> list[Record]:
    """News and social-media items naming communes, with sentiment, over the last 60 days."""
    out: list[Record] = []
    comm = units.communes
    weights = np.sqrt(np.array([u.size for u in comm]))
    p = weights / weights.sum()
    spike = next((u for u in comm if u.code == NEWS_SPIKE_COMMUNE), comm[0])
    sentiments = list(NEWS_TEMPLATES)
    for k in range(NEWS_DAYS, 0, -1):
        d = today - timedelta(days=k)
        r = rng(seed, "news", d)
        n = int(r.poisson(22))
        items: list[tuple[str, Unit | None, str]] = []  # (sentiment, commune, style)
        for _ in range(n):
            style = str(
                r.choice(["plain", "ascii", "none", "ambiguous"], p=[0.72, 0.14, 0.08, 0.06])
            )
            sent = str(r.choice(sentiments, p=SENTIMENT_P))
            items.append((sent, comm[int(r.choice(len(comm), p=p))], style))
        if k <= 3:
            items += [("tieu_cuc", spike, "plain" if j % 4 else "ascii") for j in range(12)]
        for j, (sent, unit, style) in enumerate(items):
            seconds = int(r.integers(6 * 3600, 23 * 3600))
            t = datetime.combine(d, time(), ICT) + timedelta(seconds=seconds)
            src, domain = NEWS_SOURCES[int(r.integers(len(NEWS_SOURCES)))]
            if style == "none":
                title, summary = NO_PLACE[int(r.integers(len(NO_PLACE)))]
            else:
                tpl = NEWS_TEMPLATES[sent][int(r.integers(len(NEWS_TEMPLATES[sent])))]
                assert unit is not None
                place = "TP Vinh cũ" if style == "ambiguous" else _place(unit)
                title, summary = tpl[0].format(place=place), tpl[1].format(place=place)
                title = title[0].upper() + title[1:]
                if style == "ascii":
                    title, summary = strip_diacritics(title), strip_diacritics(summary)
            item_id = f"TIN-{d:%Y%m%d}-{j + 1:03d}"
            out.append(
                {
                    "ma_tin": item_id,
                    "tieu_de": title,
                    "tom_tat": summary,
                    "nguon": src,
                    "duong_dan": f"https://{domain}/{item_id.lower()}.html",
                    "thoi_gian_dang": stamp_dt(t),
                    "sac_thai": sent,
                    "ngay_cap_nhat": stamp_dt(t),
                }
            )
    if out:
        out[0] = {**out[0], "thoi_gian_dang": "hôm qua"}
    return out


SYSTEMS: dict[str, System] = {
    s.name: s
    for s in (
        System("igate", "Cổng dịch vụ công (iGate)", "/igate/api/v1/thong-ke-ho-so",
               ("ma_don_vi", "thang"), igate, "thang"),
        System("ioffice", "Quản lý văn bản (iOffice)", "/ioffice/api/v1/thong-ke-van-ban",
               ("ma_don_vi", "ky_bao_cao"), ioffice, "ky_bao_cao",
               page_param="trang", size_param="so_ban_ghi"),
        System("yte", "Cổng dữ liệu y tế", "/yte/api/v1/kham-chua-benh",
               ("ma_co_so", "ngay"), health, "ngay",
               since_param="updated_since", records_key="data", next_link=True),
        System("vnedu", "vnEdu", "/vnedu/api/v1/thong-ke-truong",
               ("ma_truong", "nam_hoc"), vnedu, "nam_hoc", size_param="limit"),
        System("dulich", "Du lịch", "/dulich/api/v1/luot-khach",
               ("ma_diem", "thang"), tourism, "thang"),
        System("soc", "SOC an toàn thông tin", "/soc/api/v1/su-co",
               ("ma_don_vi", "thang"), soc, "thang"),
        System("tintuc", "Giám sát tin tức, mạng xã hội", "/tin-tuc/api/v1/bai-viet",
               ("ma_tin",), news, "thoi_gian_dang"),
    )
}  # fmt: skip
