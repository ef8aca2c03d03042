"""Field reports in layers: routing, duplicates at the 50 m / 48 h boundaries, workflow, SLA."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pyproj import Geod
from sqlalchemy import Connection, Engine, func, select

from analytics import report_workflow as wf
from layers.auth import users
from layers.errors import ConflictError, InvalidInputError, NotFoundError
from layers.models.analytics import alert
from layers.models.core import admin_unit, feature, layer
from layers.models.reports import field_report_event
from layers.reports import store as rep
from layers.testing import remove_workflow_reports

GEOD = Geod(ellps="WGS84")


@pytest.fixture(scope="module", autouse=True)
def _remove_workflow_reports(seeded: Engine) -> Iterator[None]:
    """Leave the shared test database as the demo seeded it (other tests read field_reports)."""
    yield
    remove_workflow_reports(seeded)


def _communes(conn: Connection, n: int = 2) -> list[tuple[str, float, float]]:
    """(code, lon, lat) of a point well inside each of the n most populous communes."""
    pt = func.ST_PointOnSurface(admin_unit.c.geom)
    rows = conn.execute(
        select(admin_unit.c.code, func.ST_X(pt), func.ST_Y(pt))
        .where(admin_unit.c.level == "commune")
        .order_by(admin_unit.c.population.desc(), admin_unit.c.code)
        .limit(n)
    ).all()
    return [(str(c), float(x), float(y)) for c, x, y in rows]


def _offset(lon: float, lat: float, metres: float, azimuth: float = 90.0) -> tuple[float, float]:
    x, y, _ = GEOD.fwd(lon, lat, azimuth, metres)
    return float(x), float(y)


def _sub(
    category: str, lon: float, lat: float, text: str = "Ổ gà lớn giữa đường"
) -> rep.Submission:
    return rep.Submission(category=category, description=text, lon=lon, lat=lat)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def people(seeded: Engine) -> dict[str, users.User]:
    with seeded.begin() as conn:
        a, b = (c for c, _, _ in _communes(conn))
        return {
            "op": users.create_user(conn, "rl_op", "a long password", "operator"),
            "cs_a": users.create_user(conn, "rl_cs_a", "a long password", "commune_staff", [a]),
            "cs_b": users.create_user(conn, "rl_cs_b", "a long password", "commune_staff", [b]),
            "cit": users.create_user(conn, "rl_cit", "a long password", "citizen"),
            "cit2": users.create_user(conn, "rl_cit2", "a long password", "citizen"),
            "gis": users.create_user(conn, "rl_gis", "a long password", "gis_staff"),
        }


def test_routing_to_commune_and_department_with_sla(
    seeded: Engine, people: dict[str, users.User], tmp_path: Path
) -> None:
    t0 = datetime(2031, 1, 1, 8, tzinfo=UTC)
    with seeded.begin() as conn:
        code, lon, lat = _communes(conn)[0]
        out = wf.submit(conn, _sub("traffic", lon, lat), [], people["cit"], t0, tmp_path)
        assert out["commune_code"] == code and out["duplicate_of"] is None
        assert out["status"] == "received" and out["location_source"] == "point"
        assert datetime.fromisoformat(out["due_at"]) == t0 + timedelta(days=3)
        full = rep.get_report(conn, out["code"], people["op"], t0)
        assert full["department"] == wf.CATEGORIES["traffic"].department
        with pytest.raises(InvalidInputError, match="not inside"):
            wf.submit(conn, _sub("traffic", 100.0, 10.0), [], None, t0, tmp_path)
        with pytest.raises(InvalidInputError, match="no location"):
            wf.submit(
                conn,
                rep.Submission(category="traffic", description="no place"),
                [],
                None,
                t0,
                tmp_path,
            )


DUPLICATE_CASES = [
    (49.0, timedelta(hours=47, minutes=59), "environment", True),
    (0.0, timedelta(hours=48), "environment", True),
    (51.0, timedelta(hours=1), "environment", False),
    (10.0, timedelta(hours=48, seconds=1), "environment", False),
    (0.0, timedelta(hours=1), "traffic", False),
]


@pytest.mark.parametrize(("metres", "later", "category", "linked"), DUPLICATE_CASES)
def test_duplicates_at_the_50m_48h_boundaries(
    seeded: Engine,
    people: dict[str, users.User],
    tmp_path: Path,
    metres: float,
    later: timedelta,
    category: str,
    linked: bool,
) -> None:
    # Each case at its own time, so cases never see each other's reports.
    case = DUPLICATE_CASES.index((metres, later, category, linked))
    t0 = datetime(2032, 1, 1, tzinfo=UTC) + timedelta(days=10 * case)
    with seeded.begin() as conn:
        _, lon, lat = _communes(conn)[0]
        first = wf.submit(conn, _sub("environment", lon, lat), [], people["cit"], t0, tmp_path)
        x, y = _offset(lon, lat, metres)
        second = wf.submit(conn, _sub(category, x, y), [], people["cit2"], t0 + later, tmp_path)
        if linked:
            assert second["duplicate_of"] == first["code"] == second["code"]
            assert second["duplicate_count"] == 1
            # The second citizen now sees the (linked) report as theirs too.
            assert rep.get_report(conn, first["code"], people["cit2"])["code"] == first["code"]
        else:
            assert second["duplicate_of"] is None and second["code"] != first["code"]


def test_workflow_legal_path_records_who_and_when(
    seeded: Engine, people: dict[str, users.User], tmp_path: Path
) -> None:
    t0 = datetime(2033, 3, 1, tzinfo=UTC)
    with seeded.begin() as conn:
        _, lon, lat = _communes(conn)[0]
        code = wf.submit(conn, _sub("urban_order", lon, lat), [], people["cit"], t0, tmp_path)[
            "code"
        ]
        cs = people["cs_a"]
        wf.take_step(conn, code, "assign", cs, t0 + timedelta(hours=1), department="Đội TTĐT")
        wf.take_step(conn, code, "start", cs, t0 + timedelta(hours=2))
        done = wf.take_step(
            conn, code, "resolve", cs, t0 + timedelta(hours=3), note="Đã giải toả vỉa hè"
        )
        assert done["status"] == "resolved" and done["on_time"] is True
        assert done["assigned_to"] == cs.username and done["department"] == "Đội TTĐT"
        steps = [
            (h["action"], h["from_status"], h["to_status"], h["actor"]) for h in done["history"]
        ]
        assert steps == [
            ("submit", None, "received", "rl_cit"),
            ("assign", "received", "assigned", "rl_cs_a"),
            ("start", "assigned", "in_progress", "rl_cs_a"),
            ("resolve", "in_progress", "resolved", "rl_cs_a"),
        ]
        assert [h["at"] for h in done["history"]] == [
            (t0 + timedelta(hours=h)).isoformat() for h in range(4)
        ]
        rated = rep.rate(conn, code, people["cit"], "hai_long", t0 + timedelta(days=1))
        assert rated["rating"] == "hai_long"
        with pytest.raises(ConflictError, match="already rated"):
            rep.rate(conn, code, people["cit"], "chap_nhan", t0 + timedelta(days=1))
        with pytest.raises(NotFoundError):
            rep.rate(conn, code, people["cit2"], "chap_nhan", t0 + timedelta(days=1))
        # The public layer mirrors the report (status, on-time, rating), without the description.
        props = conn.execute(
            select(feature.c.properties)
            .select_from(feature.join(layer))
            .where(layer.c.slug == "field_reports", feature.c.source_key == code)
        ).scalar_one()
        assert props["status"] == "resolved" and props["rating"] == "hai_long"
        assert props["on_time"] is True and "Vỉa" not in str(props) and "description" not in props


ILLEGAL = [
    ([], "start"),
    ([], "resolve"),
    (["accept"], "accept"),
    (["assign"], "accept"),
    ([], "reopen"),
    (["request_info"], "start"),
    (["assign"], "resolve"),
    (["assign", "start"], "assign"),
    (["assign", "start", "resolve"], "reject"),
    (["assign", "start", "resolve"], "start"),
    (["reject"], "assign"),
    (["reject"], "reject"),
]


@pytest.mark.parametrize(("path", "action"), ILLEGAL)
def test_illegal_transitions_are_refused(
    seeded: Engine, people: dict[str, users.User], tmp_path: Path, path: list[str], action: str
) -> None:
    # Each case at its own time, so cases never see each other's reports as duplicates.
    t0 = datetime(2034, 1, 1, tzinfo=UTC) + timedelta(days=5 * ILLEGAL.index((path, action)))
    with seeded.begin() as conn:
        _, lon, lat = _communes(conn)[0]
        code = wf.submit(conn, _sub("other", lon, lat), [], None, t0, tmp_path)["code"]
        for step in path:
            wf.take_step(conn, code, step, people["op"], t0, note="ok")  # type: ignore[arg-type]
        before = conn.execute(select(func.count()).select_from(field_report_event)).scalar_one()
        with pytest.raises(ConflictError, match="not allowed"):
            wf.take_step(conn, code, action, people["op"], t0, note="again")  # type: ignore[arg-type]
        after = conn.execute(select(func.count()).select_from(field_report_event)).scalar_one()
        assert after == before


def test_reject_and_resolve_need_a_note(
    seeded: Engine, people: dict[str, users.User], tmp_path: Path
) -> None:
    t0 = datetime(2035, 1, 1, tzinfo=UTC)
    with seeded.begin() as conn:
        _, lon, lat = _communes(conn)[0]
        code = wf.submit(conn, _sub("other", lon, lat), [], None, t0, tmp_path)["code"]
        with pytest.raises(InvalidInputError, match="note"):
            wf.take_step(conn, code, "reject", people["op"], t0, note="  ")


def test_sla_overdue_alert_with_an_injected_clock(
    seeded: Engine, people: dict[str, users.User], tmp_path: Path
) -> None:
    t0 = datetime(2036, 5, 1, 9, tzinfo=UTC)
    with seeded.begin() as conn:
        _, lon, lat = _communes(conn)[0]
        code = wf.submit(conn, _sub("security", lon, lat), [], None, t0, tmp_path)["code"]
        due = t0 + timedelta(days=2)
        # Other tests' reports may be overdue too: look only at this one.
        assert code not in wf.check_overdue(conn, due - timedelta(seconds=1))
        assert not rep.get_report(conn, code, people["op"], due)["overdue"]
        assert code in wf.check_overdue(conn, due + timedelta(seconds=1))
        assert code not in wf.check_overdue(conn, due + timedelta(hours=5))
        assert rep.get_report(conn, code, people["op"], due + timedelta(seconds=1))["overdue"]
        alerts = conn.execute(
            select(alert.c.status, alert.c.evidence, alert.c.area_ref).where(
                alert.c.dedup_key == code
            )
        ).all()
        assert len(alerts) == 1 and alerts[0][0] == "open"
        assert alerts[0][1]["report_code"] == code
        late = rep.list_reports(conn, people["op"], now=due + timedelta(hours=1), overdue=True)
        assert code in {r["code"] for r in late}
        wf.take_step(conn, code, "reject", people["op"], due + timedelta(hours=6), note="trùng")
        status = conn.execute(select(alert.c.status).where(alert.c.dedup_key == code)).scalar_one()
        assert status == "resolved"


def test_commune_staff_are_restricted_inside_the_queries(
    seeded: Engine, people: dict[str, users.User], tmp_path: Path
) -> None:
    t0 = datetime(2037, 1, 1, tzinfo=UTC)
    with seeded.begin() as conn:
        (code_a, lon_a, lat_a), (code_b, lon_b, lat_b) = _communes(conn)
        ra = wf.submit(conn, _sub("traffic", lon_a, lat_a), [], None, t0, tmp_path)["code"]
        rb = wf.submit(conn, _sub("traffic", lon_b, lat_b), [], None, t0, tmp_path)["code"]
        cs = people["cs_a"]
        assert rep.get_report(conn, ra, cs)["commune_code"] == code_a
        with pytest.raises(NotFoundError):
            rep.get_report(conn, rb, cs)
        with pytest.raises(NotFoundError):
            wf.take_step(conn, rb, "assign", cs, t0)
        listed = rep.list_reports(conn, cs, limit=1000)
        assert listed and {r["commune_code"] for r in listed} == {code_a}
        assert rep.list_reports(conn, cs, commune_code=code_b) == []
        stats = rep.stats(conn, cs, "commune")
        assert [s["key"] for s in stats] == [code_a]
        # Roles without report access see nothing, whatever the route.
        assert rep.list_reports(conn, people["gis"]) == []
        with pytest.raises(NotFoundError):
            rep.get_report(conn, ra, None)


def test_statistics_per_category_and_period(seeded: Engine, people: dict[str, users.User]) -> None:
    with seeded.connect() as conn:
        by_cat = rep.stats(conn, people["op"], "category")
        cats = {s["key"]: s for s in by_cat}
        assert set(wf.CATEGORIES) <= set(cats)
        total = sum(s["received"] for s in by_cat)
        assert total >= 600
        for s in by_cat:
            assert 0 <= (s["processed_pct"] or 0) <= 100
            split = s["satisfaction_pct"]
            if s["rated"]:
                assert abs(sum(split.values()) - 100) < 0.5
        by_month = rep.stats(conn, people["op"], "period", period="month")
        assert len(by_month) >= 12 and all(len(s["key"]) == 10 for s in by_month)
        assert sum(s["received"] for s in by_month) == total
        assert rep.stats(conn, people["cit"], "commune") == []


def test_public_map_is_anonymised(seeded: Engine) -> None:
    with seeded.connect() as conn:
        doc = rep.public_map(conn, limit=50)
    assert len(doc["features"]) == 50
    for f in doc["features"]:
        assert set(f["properties"]) == {"category", "status", "commune_code", "received_on"}
        lon, lat = f["geometry"]["coordinates"]
        assert round(lon, 3) == lon and round(lat, 3) == lat


def test_one_name_per_status_from_the_one_catalogue() -> None:
    """The server's status and category names are the web map's (web_map/i18n.json)."""
    import json

    from layers.models.reports import CATEGORY_VI, REPORT_STATUSES, STATUS_VI

    vi = json.loads((Path(__file__).parents[2] / "web_map" / "i18n.json").read_text())["vi"]
    assert set(STATUS_VI) == set(REPORT_STATUSES)
    assert {s: vi[f"value.{s}"] for s in STATUS_VI} == STATUS_VI
    assert {c: vi[f"value.{c}"] for c in CATEGORY_VI} == CATEGORY_VI
    assert set(wf.STATUSES) == set(REPORT_STATUSES)
