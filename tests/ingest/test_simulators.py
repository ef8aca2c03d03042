"""The sector simulators: the province's own figures, determinism, and the HTTP shape."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from ingest.simulators.app import create_simulator_app, serve_in_thread
from ingest.simulators.systems import (
    NEWS_SPIKE_COMMUNE,
    SYSTEMS,
    Units,
    demo_units,
    strip_diacritics,
)

TODAY = date(2026, 11, 22)


@pytest.fixture(scope="module")
def units() -> Units:
    return demo_units()


def test_documents_2024_match_the_province(units: Units) -> None:
    rows = [
        r for r in SYSTEMS["ioffice"].generate(units, 40, TODAY) if r["ky_bao_cao"][3:] == "2024"
    ]
    assert len(rows) == len(units.agencies) * 12
    incoming = sum(r["van_ban_den"] for r in rows)
    outgoing = sum(r["van_ban_di"] for r in rows)
    signed = sum(r["van_ban_di_ky_so"] for r in rows)
    assert (incoming, outgoing) == (272_868, 141_686)
    assert round(signed / outgoing, 3) == 0.97
    assert all(r["van_ban_di_ky_so"] <= r["van_ban_di"] for r in rows)


def test_health_june_2024_matches_the_province(units: Units) -> None:
    rows = [r for r in SYSTEMS["yte"].generate(units, 40, TODAY) if r["ngay"].startswith("2024-06")]
    assert len(rows) == 151 * 30  # every facility, commune health stations included
    assert sum(r["tong_luot_kcb"] for r in rows) == 41_285
    assert sum(r["luot_co_bhyt"] for r in rows) == 39_868
    assert sum(r["cap_cuu"] for r in rows) == 146
    assert all(r["luot_co_bhyt"] + r["luot_khong_bhyt"] == r["tong_luot_kcb"] for r in rows)


def test_schools_and_agencies(units: Units) -> None:
    rows = SYSTEMS["vnedu"].generate(units, 40, TODAY)
    years = {r["nam_hoc"] for r in rows}
    assert years == {"2023-2024", "2024-2025", "2025-2026", "2026-2027"}
    assert sum(r["nam_hoc"] == "2025-2026" for r in rows) == 1800
    kinds = [u.kind for u in units.agencies]
    assert kinds.count("ubnd_xa") == 130 and kinds.count("so_nganh") >= 15


def test_closed_periods_do_not_change_when_time_moves(units: Units) -> None:
    for name in ("igate", "soc", "dulich"):
        early = SYSTEMS[name].generate(units, 40, date(2025, 3, 5))
        late = SYSTEMS[name].generate(units, 40, date(2025, 9, 20))
        key = SYSTEMS[name].key
        late_by_key = {tuple(r[k] for k in key): r for r in late}
        closed = [r for r in early if r["thang"] < "2025-03"]
        assert closed and all(late_by_key[tuple(r[k] for k in key)] == r for r in closed)
    assert SYSTEMS["igate"].generate(units, 40, TODAY) == SYSTEMS["igate"].generate(
        units, 40, TODAY
    )
    assert SYSTEMS["igate"].generate(units, 41, TODAY) != SYSTEMS["igate"].generate(
        units, 40, TODAY
    )


def test_news_feed_has_a_negative_spike_and_hard_names(units: Units) -> None:
    rows = SYSTEMS["tintuc"].generate(units, 40, TODAY)
    spike = next(u for u in units.communes if u.code == NEWS_SPIKE_COMMUNE)
    recent = {(TODAY - timedelta(days=k)).isoformat() for k in (1, 2, 3)}
    older = {(TODAY - timedelta(days=k)).isoformat() for k in range(10, 40)}

    def negatives(days: set[str]) -> int:
        return sum(
            r["sac_thai"] == "tieu_cuc"
            and r["thoi_gian_dang"][:10] in days
            and strip_diacritics(spike.name).lower() in strip_diacritics(r["tieu_de"]).lower()
            for r in rows
        )

    assert negatives(recent) / 3 > 5 * max(negatives(older) / 30, 0.1)
    titles = [r["tieu_de"] for r in rows]
    assert any(t == strip_diacritics(t) and "xa " in t.lower() for t in titles)  # no diacritics
    assert any("TP Vinh" in t for t in titles)  # ambiguous: five wards carry Vinh's name
    assert any(not any(u.name in t for u in units.communes) and "Nghệ An" in t for t in titles)
    assert {r["sac_thai"] for r in rows} == {"tich_cuc", "trung_tinh", "tieu_cuc"}


def test_every_system_has_one_malformed_record(units: Units) -> None:
    small = replace(
        units,
        agencies=units.agencies[:3],
        hospitals=units.hospitals[:2],
        schools=units.schools[:3],
        sites=units.sites[:2],
    )
    day = date(2025, 2, 10)
    igate = SYSTEMS["igate"].generate(small, 40, day)
    assert sum(r["ma_don_vi"] == "000.00.99.H40" for r in igate) == 1
    assert (
        sum(r["van_ban_den"] == "1.2O4" for r in SYSTEMS["ioffice"].generate(small, 40, day)) == 1
    )
    assert sum(r["ngay"].endswith("-32") for r in SYSTEMS["yte"].generate(small, 40, day)) == 1
    assert sum(r["so_hoc_sinh"] == "N/A" for r in SYSTEMS["vnedu"].generate(small, 40, day)) == 1
    assert sum(r["ma_don_vi"] is None for r in SYSTEMS["soc"].generate(small, 40, day)) == 1


@pytest.fixture(scope="module")
def served(units: Units) -> Iterator[tuple[str, Any]]:
    small = replace(units, agencies=units.agencies[:4], hospitals=units.hospitals[:3])
    app = create_simulator_app(seed=40, today=date(2024, 3, 10), units=small, token="bi-mat")
    with serve_in_thread(app) as url:
        yield url, app.state.sim


def test_http_paging_incremental_and_auth(served: tuple[str, Any]) -> None:
    url, sim = served
    auth = {"Authorization": "Bearer bi-mat"}
    path = url + SYSTEMS["igate"].path
    assert httpx.get(path).status_code == 401
    doc = httpx.get(path, params={"page": 2, "page_size": 5}, headers=auth).json()
    assert doc["tong_so_ban_ghi"] == 4 * 3 + 1 and doc["page"] == 2 and len(doc["du_lieu"]) == 5
    newer = httpx.get(
        path, params={"cap_nhat_tu": "2024-02-01T08:00:00+07:00"}, headers=auth
    ).json()
    assert {r["thang"] for r in newer["du_lieu"]} == {"2024-02", "2024-03"}
    period = httpx.get(path, params={"tu_ngay": "2024-03-01"}, headers=auth).json()
    assert {r["thang"] for r in period["du_lieu"]} == {"2024-03"}
    # The health portal pages with `next` links.
    yte = url + SYSTEMS["yte"].path
    first = httpx.get(yte, params={"page_size": 100}, headers=auth).json()
    assert len(first["data"]) == 100 and first["next"]
    second = httpx.get(first["next"], headers=auth).json()
    assert second["data"][0] != first["data"][0] and second["total"] == first["total"]
    # A late correction carries a new update time, so it passes the incremental filter.
    fixed = sim.correct("igate", (sim.units.agencies[0].code, "2024-01"), {"so_ho_so_tre_han": 7})
    latest = httpx.get(path, params={"cap_nhat_tu": "2024-03-10T00:00:00+07:00"}, headers=auth)
    assert fixed in latest.json()["du_lieu"]
