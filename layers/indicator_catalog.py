"""The indicator catalog of issue 9: sectors and indicator definitions (the source of truth).

`layers.indicators` syncs these rows into the `indicator` table on first use, so SQL users
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
