"""KT-XH (economy and society) exports as the statistics office sends them: XLSX and CSV files.

Budget revenue per commune per month comes as a workbook; poor households per commune per
year as a `;`-separated CSV with a BOM and decimal commas. Each carries one bad row, as
hand-kept spreadsheets do.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np

from ingest.simulators.systems import FIRST_MONTH, Units, month_starts, next_month, rng

BUDGET_HEADERS = ("Mã xã", "Tên xã, phường", "Kỳ báo cáo", "Thu ngân sách (triệu đồng)")
POVERTY_HEADERS = (
    "Mã xã",
    "Tên xã, phường",
    "Năm",
    "Tổng số hộ",
    "Số hộ nghèo",
    "Tỷ lệ hộ nghèo (%)",
)


def closed_months(today: date) -> list[date]:
    """Months whose figures are final (the statistics office reports after month end)."""
    return [m for m in month_starts(FIRST_MONTH, today) if next_month(m) <= today]


def budget_rows(units: Units, seed: int, today: date) -> list[tuple[object, ...]]:
    """Budget revenue rows (commune, month), plus one row with a figure still being typed."""
    rows: list[tuple[object, ...]] = []
    comm = units.communes
    base = np.array(
        [u.size * (0.06 if u.extra.get("is_urban") else 0.015) for u in comm]
    )  # triệu đồng per month
    for m in closed_months(today):
        r = rng(seed, "ktxh", "budget", m)
        year_end = 1.6 if m.month == 12 else 1.0
        vals = base * year_end * r.lognormal(0, 0.25, len(comm))
        for u, v in zip(comm, vals, strict=True):
            rows.append((u.code, u.name, f"{m:%m/%Y}", round(float(v), 1)))
    if rows:
        rows[1] = (*rows[1][:3], "đang cập nhật")
    return rows


def poverty_rows(units: Units, seed: int, today: date) -> list[tuple[object, ...]]:
    """Households and poor households per commune per year (the year's survey, from December)."""
    rows: list[tuple[object, ...]] = []
    comm = units.communes
    for year in range(FIRST_MONTH.year, today.year + 1):
        if date(year, 12, 15) > today:
            continue
        r = rng(seed, "ktxh", "poverty", year)
        households = np.rint(np.array([u.size for u in comm]) / 3.8).astype(int)
        urban = np.array([bool(u.extra.get("is_urban")) for u in comm])
        rate = np.where(urban, r.uniform(0.003, 0.02, len(comm)), r.lognormal(-2.7, 0.7, len(comm)))
        rate = np.clip(rate * (0.9 ** (year - 2024)), 0.001, 0.45)
        poor = np.rint(households * rate).astype(int)
        for u, h, p in zip(comm, households, poor, strict=True):
            pct = f"{100 * p / h:.2f}".replace(".", ",")
            rows.append((u.code, u.name, year, int(h), int(p), pct))
    if rows:
        rows.append(("99999", "Xã đã sáp nhập", rows[0][2], 1200, 35, "2,92"))
    return rows


def write_exports(
    folder: Path,
    units: Units,
    seed: int,
    today: date,
    landed: Callable[[str], bool] | None = None,
) -> list[Path]:
    """Write the current exports into the drop folder; returns the files written.

    Names carry the last period they cover, so a new month brings a new file. A file is not
    written again once `landed(name)` says so (default: it is in the folder, done/ or failed/).
    """
    seen = landed or (lambda name: _seen(folder, name))
    import openpyxl

    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    months = closed_months(today)
    if months:
        name = f"ktxh_thu_ngan_sach_{months[-1]:%Y%m}.xlsx"
        if not seen(name):
            wb = openpyxl.Workbook()
            ws = wb.active
            assert ws is not None
            ws.title = "Thu ngan sach"
            ws.append(list(BUDGET_HEADERS))
            for row in budget_rows(units, seed, today):
                ws.append(list(row))
            tmp = folder / f".{name}.part"
            wb.save(tmp)
            tmp.rename(folder / name)
            written.append(folder / name)
    rows = poverty_rows(units, seed, today)
    if rows:
        name = f"ktxh_ho_ngheo_{max(int(str(r[2])) for r in rows)}.csv"
        if not seen(name):
            buf = io.StringIO()
            w = csv.writer(buf, delimiter=";", lineterminator="\r\n")
            w.writerow(POVERTY_HEADERS)
            w.writerows(rows)
            tmp = folder / f".{name}.part"
            tmp.write_bytes(b"\xef\xbb\xbf" + buf.getvalue().encode("utf-8"))
            tmp.rename(folder / name)
            written.append(folder / name)
    return written


def _seen(folder: Path, name: str) -> bool:
    return any((folder / sub / name).exists() for sub in ("", "done", "failed"))
