"""The indicator catalog of issue 9: sectors and indicator definitions (the source of truth).

`layers.indicators.store` syncs these rows into the `indicator` table on first use, so SQL users
and foreign keys see the same definitions.
"""

from __future__ import annotations

from typing import Any

# (code, name_vi, name_en)
SECTORS: tuple[tuple[str, str, str], ...] = (
    ("ktxh", "Kinh tế - xã hội", "Economy and society"),
    ("hcc", "Hành chính công", "Public administration"),
    ("vanban", "Văn bản điện tử", "Electronic documents"),
    ("yte", "Y tế", "Health operations"),
    ("giaoduc", "Giáo dục", "Education"),
    ("phananh", "Phản ánh hiện trường", "Citizen feedback"),
    ("dulich", "Du lịch", "Tourism"),
    ("attt", "An toàn thông tin", "Information security"),
    ("giaothong", "Trật tự, an toàn giao thông", "Public order and traffic"),
    ("suco", "Xử lý sự cố", "Incident response"),
    ("suco_loai", "Xử lý sự cố theo loại", "Incident response by type"),
)

# Stock-like indicators: a coarser period takes the subject's last value, not the sum.
STOCK_CODES: frozenset[str] = frozenset({"vb_pending"})

# Computed from our own layers by analytics.kpi_jobs, not pushed by a connector.
DERIVED_CODES: frozenset[str] = frozenset(
    {"pa_received", "pa_resolved", "pa_on_time", "tt_news", "tt_news_negative", "gt_vehicles"}
)

IGATE = "iGate (Cổng dịch vụ công)"
IOFFICE = "iOffice (Quản lý văn bản)"
HEALTH = "Cổng dữ liệu y tế"
VNEDU = "vnEdu"
TOURISM = "Sở Du lịch"
SOC = "SOC tỉnh"
KTXH = "Cục Thống kê / Sở Tài chính"
FEEDBACK = "IOC Map: phản ánh hiện trường"
NEWS = "Giám sát thông tin trên mạng"
TRAFFIC = "IOC Map: camera giao thông"


def _d(
    code: str,
    name_vi: str,
    name_en: str,
    unit: str,
    sector: str,
    source: str,
    frequency: str,
    subject_layer: str | None,
    *,
    rollup: str = "sum",
    numerator: str | None = None,
    denominator: str | None = None,
    scale: float = 1.0,
    higher: bool | None = True,
) -> dict[str, Any]:
    return {
        "code": code,
        "name_vi": name_vi,
        "name_en": name_en,
        "unit": unit,
        "sector": sector,
        "source_system": source,
        "frequency": frequency,
        "rollup": rollup,
        "numerator": numerator,
        "denominator": denominator,
        "scale": scale,
        "higher_is_better": higher,
        "subject_layer": subject_layer,
    }


def _rate(
    code: str,
    name_vi: str,
    name_en: str,
    sector: str,
    source: str,
    frequency: str,
    subject_layer: str | None,
    num: str,
    den: str,
    *,
    scale: float = 100.0,
    unit: str = "%",
    higher: bool | None = True,
) -> dict[str, Any]:
    return _d(
        code,
        name_vi,
        name_en,
        unit,
        sector,
        source,
        frequency,
        subject_layer,
        rollup="rate",
        numerator=num,
        denominator=den,
        scale=scale,
        higher=higher,
    )


AG = "agencies"
HO = "hospitals"
SC = "schools"
TS = "tourism_sites"

INDICATORS: tuple[dict[str, Any], ...] = (
    # public administration (iGate)
    _d("hcc_received", "Hồ sơ tiếp nhận", "Dossiers received", "hồ sơ", "hcc", IGATE, "month", AG),
    _d("hcc_resolved", "Hồ sơ đã giải quyết", "Dossiers resolved", "hồ sơ", "hcc", IGATE, "month", AG),
    _d("hcc_on_time", "Hồ sơ giải quyết đúng hạn", "Dossiers resolved on time", "hồ sơ", "hcc", IGATE, "month", AG),
    _d("hcc_late", "Hồ sơ trễ hạn", "Late dossiers", "hồ sơ", "hcc", IGATE, "month", AG, higher=False),
    _d("hcc_online", "Hồ sơ trực tuyến (mức độ 3, 4)", "Online dossiers (level 3, 4)", "hồ sơ", "hcc", IGATE, "month", AG),
    _rate("hcc_late_rate", "Tỷ lệ hồ sơ trễ hạn", "Late dossier rate", "hcc", IGATE, "month", AG, "hcc_late", "hcc_resolved", higher=False),
    _rate("hcc_online_rate", "Tỷ lệ hồ sơ trực tuyến", "Online dossier rate", "hcc", IGATE, "month", AG, "hcc_online", "hcc_received"),
    # electronic documents (iOffice)
    _d("vb_incoming", "Văn bản đến", "Incoming documents", "văn bản", "vanban", IOFFICE, "month", AG),
    _d("vb_outgoing", "Văn bản đi", "Outgoing documents", "văn bản", "vanban", IOFFICE, "month", AG),
    _d("vb_signed", "Văn bản đi ký số", "Digitally signed outgoing documents", "văn bản", "vanban", IOFFICE, "month", AG),
    _d("vb_pending", "Văn bản chưa xử lý", "Pending documents (end of month)", "văn bản", "vanban", IOFFICE, "month", AG, higher=False),
    _rate("vb_signed_rate", "Tỷ lệ văn bản ký số", "Digitally signed rate", "vanban", IOFFICE, "month", AG, "vb_signed", "vb_outgoing"),
    # health operations
    _d("yt_records", "Lượt khám chữa bệnh", "Medical records", "lượt", "yte", HEALTH, "day", HO),
    _d("yt_insured", "Lượt có BHYT", "Insured visits", "lượt", "yte", HEALTH, "day", HO),
    _d("yt_uninsured", "Lượt không BHYT", "Uninsured visits", "lượt", "yte", HEALTH, "day", HO, higher=None),
    _d("yt_emergencies", "Cấp cứu", "Emergencies", "ca", "yte", HEALTH, "day", HO, higher=None),
    _d("yt_deaths", "Tử vong", "Deaths", "ca", "yte", HEALTH, "day", HO, higher=False),
    _d("yt_inpatients", "Điều trị nội trú", "Inpatients", "lượt", "yte", HEALTH, "day", HO, higher=None),
    _d("yt_outpatients", "Điều trị ngoại trú", "Outpatients", "lượt", "yte", HEALTH, "day", HO, higher=None),
    _rate("yt_insured_rate", "Tỷ lệ có BHYT", "Insured rate", "yte", HEALTH, "day", HO, "yt_insured", "yt_records"),
    # education (vnEdu)
    _d("gd_classes", "Số lớp", "Classes", "lớp", "giaoduc", VNEDU, "school_year", SC, higher=None),
    _d("gd_teachers", "Số giáo viên", "Teachers", "người", "giaoduc", VNEDU, "school_year", SC),
    _d("gd_pupils", "Số học sinh", "Pupils", "học sinh", "giaoduc", VNEDU, "school_year", SC, higher=None),
    _d("gd_pupils_good", "Học sinh khá, giỏi", "Good and excellent pupils", "học sinh", "giaoduc", VNEDU, "school_year", SC),
    _rate("gd_good_rate", "Tỷ lệ học sinh khá, giỏi", "Good and excellent rate", "giaoduc", VNEDU, "school_year", SC, "gd_pupils_good", "gd_pupils"),
    _rate("gd_pupils_per_teacher", "Số học sinh / giáo viên", "Pupils per teacher", "giaoduc", VNEDU, "school_year", SC, "gd_pupils", "gd_teachers", scale=1.0, unit="học sinh", higher=False),
    # tourism
    _d("dl_visitors", "Lượt khách", "Visitors", "lượt", "dulich", TOURISM, "month", TS),
    _d("dl_international", "Lượt khách quốc tế", "International visitors", "lượt", "dulich", TOURISM, "month", TS),
    _d("dl_revenue", "Doanh thu", "Revenue", "triệu đồng", "dulich", TOURISM, "month", TS),
    # information security (SOC)
    _d("attt_incidents", "Sự cố ATTT phát hiện", "Security incidents detected", "sự cố", "attt", SOC, "month", AG, higher=False),
    _d("attt_resolved", "Sự cố đã xử lý", "Incidents resolved", "sự cố", "attt", SOC, "month", AG),
    _d("attt_critical", "Sự cố nghiêm trọng", "Critical incidents", "sự cố", "attt", SOC, "month", AG, higher=False),
    _rate("attt_resolved_rate", "Tỷ lệ sự cố đã xử lý", "Incident resolution rate", "attt", SOC, "month", AG, "attt_resolved", "attt_incidents"),
    # economy and society (per commune)
    _d("kt_budget_revenue", "Thu ngân sách", "Budget revenue", "triệu đồng", "ktxh", KTXH, "month", None),
    _d("kt_poor_households", "Hộ nghèo", "Poor households", "hộ", "ktxh", KTXH, "year", None, higher=False),
    _d("kt_households", "Tổng số hộ", "Households", "hộ", "ktxh", KTXH, "year", None, higher=None),
    _rate("kt_poor_rate", "Tỷ lệ hộ nghèo", "Poor household rate", "ktxh", KTXH, "year", None, "kt_poor_households", "kt_households", higher=False),
    # citizen feedback (derived from field_reports)
    _d("pa_received", "Phản ánh tiếp nhận", "Feedback received", "phản ánh", "phananh", FEEDBACK, "day", None, higher=None),
    _d("pa_resolved", "Phản ánh đã xử lý", "Feedback resolved", "phản ánh", "phananh", FEEDBACK, "day", None),
    _d("pa_on_time", "Phản ánh xử lý đúng hạn", "Feedback resolved on time", "phản ánh", "phananh", FEEDBACK, "day", None),
    _rate("pa_on_time_rate", "Tỷ lệ xử lý đúng hạn", "On-time resolution rate", "phananh", FEEDBACK, "day", None, "pa_on_time", "pa_resolved"),
    # online information monitoring (derived from news_items)
    _d("tt_news", "Tin bài, mạng xã hội", "News and social posts", "tin", "phananh", NEWS, "day", None, higher=None),
    _d("tt_news_negative", "Tin tiêu cực", "Negative posts", "tin", "phananh", NEWS, "day", None, higher=False),
    _rate("tt_negative_rate", "Tỷ lệ tin tiêu cực", "Negative post rate", "phananh", NEWS, "day", None, "tt_news_negative", "tt_news", higher=False),
    # traffic (derived from traffic_counts)
    _d("gt_vehicles", "Lượt phương tiện", "Vehicles counted", "lượt", "giaothong", TRAFFIC, "day", "cameras", higher=None),
)  # fmt: skip


# --- incident response KPIs (issue 21), derived by analytics.incident_ops.refresh_kpis -------
INCIDENTS = "IOC Map: chỉ huy xử lý sự cố"
INCIDENT_TYPES_VI: dict[str, tuple[str, str]] = {
    "flood": ("ngập lụt", "flood"),
    "fire": ("cháy nổ", "fire"),
    "traffic_accident": ("tai nạn giao thông", "traffic accident"),
    "crowd": ("tụ tập đông người, ANTT", "crowd, public order"),
    "infrastructure": ("hạ tầng", "infrastructure"),
    "health": ("y tế khẩn cấp", "health emergency"),
    "environment": ("môi trường", "environment"),
    "other": ("khác", "other"),
}
# (measure, name_vi, name_en, unit, higher_is_better)
INCIDENT_PARTS: tuple[tuple[str, str, str, str, bool | None], ...] = (
    ("opened", "Sự cố tiếp nhận", "Incidents opened", "sự cố", None),
    ("confirmed", "Sự cố đã xác nhận", "Incidents confirmed", "sự cố", None),
    ("confirm_min", "Tổng phút đến khi xác nhận", "Minutes to confirm (sum)", "phút", False),
    ("responded", "Sự cố có phản ứng đầu tiên", "Incidents with a first response", "sự cố", None),
    ("response_min", "Tổng phút đến phản ứng đầu tiên", "Minutes to first response (sum)", "phút", False),
    ("closed", "Sự cố đã kết thúc", "Incidents closed", "sự cố", True),
    ("close_min", "Tổng phút đến khi kết thúc", "Minutes to close (sum)", "phút", False),
    ("tasks_done", "Nhiệm vụ hoàn thành", "Tasks completed", "nhiệm vụ", True),
    ("tasks_on_time", "Nhiệm vụ hoàn thành đúng hạn", "Tasks completed on time", "nhiệm vụ", True),
)  # fmt: skip
# (measure, name_vi, name_en, numerator, denominator, unit, scale, higher_is_better)
INCIDENT_RATES: tuple[tuple[str, str, str, str, str, str, float, bool], ...] = (
    ("confirm_time", "Thời gian xác nhận trung bình", "Mean time to confirm", "confirm_min", "confirmed", "phút", 1.0, False),
    ("response_time", "Thời gian phản ứng trung bình", "Mean time to first response", "response_min", "responded", "phút", 1.0, False),
    ("close_time", "Thời gian xử lý trung bình", "Mean time to close", "close_min", "closed", "phút", 1.0, False),
    ("tasks_on_time_rate", "Tỷ lệ nhiệm vụ đúng hạn", "Tasks on time", "tasks_on_time", "tasks_done", "%", 100.0, True),
)  # fmt: skip


def incident_kpi_code(measure: str, incident_type: str | None = None) -> str:
    """Indicator code of an incident KPI, overall or for one incident type."""
    return f"sc_{measure}" if incident_type is None else f"sc_{incident_type}_{measure}"


def _incident_indicators() -> tuple[dict[str, Any], ...]:
    out: list[dict[str, Any]] = []
    for t in (None, *INCIDENT_TYPES_VI):
        sector = "suco" if t is None else "suco_loai"
        vi, en = (
            ("", "")
            if t is None
            else (f" — {INCIDENT_TYPES_VI[t][0]}", f" — {INCIDENT_TYPES_VI[t][1]}")
        )
        for m, nvi, nen, unit, hib in INCIDENT_PARTS:
            out.append(
                _d(
                    incident_kpi_code(m, t),
                    nvi + vi,
                    nen + en,
                    unit,
                    sector,
                    INCIDENTS,
                    "day",
                    None,
                    higher=hib,
                )
            )
        for m, nvi, nen, num, den, unit, scale, hib in INCIDENT_RATES:
            out.append(
                _rate(
                    incident_kpi_code(m, t),
                    nvi + vi,
                    nen + en,
                    sector,
                    INCIDENTS,
                    "day",
                    None,
                    incident_kpi_code(num, t),
                    incident_kpi_code(den, t),
                    scale=scale,
                    unit=unit,
                    higher=hib,
                )
            )
    return tuple(out)  # fmt: skip


INDICATORS = INDICATORS + _incident_indicators()
INCIDENT_KPI_CODES: frozenset[str] = frozenset(
    d["code"] for d in INDICATORS if d["sector"] in ("suco", "suco_loai") and d["rollup"] != "rate"
)
