"""Incident command end to end on the seeded demo: a flood alert to a closed incident, by the SOP."""

from __future__ import annotations

import io
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import shapely
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import Engine, func, select, text

from analytics import alerting, incident_ops
from geo_api.main import create_app
from geo_api.security import get_now
from layers.analytics import alerts as adb
from layers.models.core import admin_unit
from layers.settings import Settings

Headers = Callable[..., dict[str, str]]


class Clock:
    """An injectable clock the tests move by hand."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock(datetime(2041, 3, 2, 1, 30, tzinfo=UTC))


@pytest.fixture(scope="module")
def client(seeded: Engine, settings: Settings, clock: Clock) -> Iterator[TestClient]:
    app = create_app(settings)
    app.dependency_overrides[get_now] = clock
    # the tests read the English messages (Vietnamese is the default without a header)
    with TestClient(app, base_url="https://testserver", headers={"Accept-Language": "en"}) as c:
        yield c


@pytest.fixture(scope="module")
def place(seeded: Engine) -> dict[str, Any]:
    """The most populous commune, a point inside it, and a commune far away."""
    pt = func.ST_PointOnSurface(admin_unit.c.geom)
    with seeded.connect() as conn:
        rows = conn.execute(
            select(admin_unit.c.code, admin_unit.c.name, func.ST_X(pt), func.ST_Y(pt))
            .where(admin_unit.c.level == "commune", admin_unit.c.valid_to.is_(None))
            .order_by(admin_unit.c.population.desc(), admin_unit.c.code)
        ).all()
    code, name, x, y = rows[0]
    far = max(rows, key=lambda r: (r[2] - x) ** 2 + (r[3] - y) ** 2)
    return {"code": code, "name": name, "lng": x, "lat": y, "far": (far[2], far[3])}


def _alert(engine: Engine, key: str, lng: float, lat: float, when: datetime) -> int:
    with engine.begin() as conn:
        rule_id = adb.save_rule(
            conn,
            "flood_water_level",
            "Mực nước ngập vượt ngưỡng",
            "critical",
            False,
            {"slug": "flood_water_level", "name": "Ngập", "severity": "critical"},
        )
        new, _ = adb.write_alerts(
            conn,
            [
                adb.AlertWrite(
                    rule_id=rule_id,
                    dedup_key=key,
                    severity="critical",
                    title=f"Ngập sâu 0,6 m ({key})",
                    area_kind="point",
                    area_ref=key,
                    geom_wkb=bytes(shapely.to_wkb(shapely.Point(lng, lat))),
                    window_start=when,
                    window_end=when,
                )
            ],
        )
        conn.execute(
            text("UPDATE alert SET first_seen_at = :t, last_seen_at = :t WHERE id = :i"),
            {"t": when, "i": new[0]},
        )
    return new[0]


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 120, 200)).save(buf, "PNG")
    return buf.getvalue()


def test_flood_alert_to_closed_incident_by_the_sop(
    client: TestClient,
    seeded: Engine,
    settings: Settings,
    auth_headers: Headers,
    clock: Clock,
    place: dict[str, Any],
    tmp_path: Path,
) -> None:
    op = auth_headers("operator")
    leader = auth_headers("leader")
    admin = auth_headers("admin")
    t0 = clock.now
    first = _alert(seeded, "ward-1", place["lng"], place["lat"], t0)
    # ~450 m north-east: the same flood; the far commune's one is another matter
    near = _alert(seeded, "ward-2", place["lng"] + 0.003, place["lat"] + 0.003, t0)
    far = _alert(seeded, "far-1", place["far"][0], place["far"][1], t0)

    r = client.post(
        "/api/incidents",
        json={"source": {"kind": "alert", "ref": str(first)}, "severity": 3},
        headers=op,
    )
    assert r.status_code == 200, r.text
    inc = r.json()
    iid = inc["id"]
    assert inc["type"] == "flood" and inc["status"] == "new"
    assert inc["commune_code"] == place["code"] and inc["sop_version_id"] is not None
    started_on = inc["sop_version_id"]

    sugg = client.get(f"/api/incidents/{iid}/suggested-links", headers=op).json()
    refs = {(s["kind"], s["ref"]) for s in sugg}
    assert ("alert", str(near)) in refs
    assert ("alert", str(far)) not in refs
    assert ("alert", str(first)) not in refs  # already linked
    r = client.post(
        f"/api/incidents/{iid}/links", json={"kind": "alert", "ref": str(near)}, headers=op
    )
    assert {x["ref"] for x in r.json()["links"]} == {str(first), str(near)}

    # An admin edits the flood SOP while the incident runs: it keeps the version it started on.
    sops = client.get("/api/sops", headers=op).json()
    flood = next(s for s in sops if s["slug"] == "flood_response")
    edited = {
        k: flood[k]
        for k in ("slug", "incident_type", "min_severity", "max_severity", "title_vi", "title_en")
    }
    edited["steps"] = [
        *flood["steps"],
        {"title_vi": "Bước mới", "title_en": "New step", "role": "operator", "sla_minutes": 5},
    ]
    edited["note"] = "thêm bước"
    r = client.put("/api/sops", json=edited, headers=admin)
    assert r.status_code == 200 and r.json()["version"] == flood["current_version"] + 1
    assert client.put("/api/sops", json=edited, headers=op).status_code == 403

    clock.now = t0 + timedelta(minutes=12)
    r = client.post(f"/api/incidents/{iid}/transition", json={"to": "confirmed"}, headers=op)
    assert r.status_code == 200, r.text
    assert r.json()["sop_version_id"] == started_on
    tasks = client.get(f"/api/incidents/{iid}/tasks", headers=op).json()
    assert "Bước mới" not in {t["title"] for t in tasks}
    assert len(tasks) == len(flood["steps"])  # severity 3: every step applies
    by_kind = {t["agency_kind"] or t["role"]: t for t in tasks}
    ubnd = f"000.{place['code']}.00.H40"
    assert by_kind["ubnd_xa"]["agency_code"] == ubnd
    assert by_kind["cong_an_xa"]["agency_code"] == f"000.{place['code']}.90.H40"
    assert by_kind["so_nganh"]["agency_name"] == "Sở Xây dựng"
    assert by_kind["pccc"]["agency_code"] and by_kind["cap_cuu_115"]["agency_code"]
    assert by_kind["commander"]["agency_code"] is None
    assert (
        client.post(f"/api/incidents/{iid}/transition", json={"to": "new"}, headers=op).status_code
        == 409
    )

    # The commune UBND's staff see their tasks only, acknowledge, add a photo, complete.
    agency = auth_headers("agency_staff", [ubnd])
    mine = client.get("/api/tasks?mine=1", headers=agency).json()
    assert mine and {t["agency_code"] for t in mine} == {ubnd}
    police_task = by_kind["cong_an_xa"]["id"]
    assert client.post(f"/api/tasks/{police_task}/ack", headers=agency).status_code == 404
    assert client.get(f"/api/incidents/{iid}", headers=agency).status_code == 403
    verify = next(t for t in mine if t["evidence"] == "photo")
    clock.now = t0 + timedelta(minutes=20)
    assert client.post(f"/api/tasks/{verify['id']}/ack", headers=agency).status_code == 200
    r = client.post(f"/api/tasks/{verify['id']}/complete", headers=agency)
    assert r.status_code == 409  # the SOP wants a photo first
    r = client.post(
        f"/api/tasks/{verify['id']}/note",
        data={"text": "Ngập 0,5 m đoạn đường Lê Lợi"},
        files={"photo": ("p.png", _png(), "image/png")},
        headers=agency,
    )
    assert r.status_code == 200, r.text
    assert client.post(f"/api/tasks/{verify['id']}/complete", headers=agency).status_code == 200

    # The police step (45 min) runs late: the scheduler's job escalates it once.
    late = t0 + timedelta(minutes=12 + 46)
    with seeded.begin() as conn:
        escalated = incident_ops.escalate_overdue(conn, late)
    assert police_task in escalated
    with seeded.begin() as conn:
        assert police_task not in incident_ops.escalate_overdue(conn, late + timedelta(minutes=5))
    det = client.get(f"/api/incidents/{iid}", headers=op).json()
    esc = [
        e
        for e in det["log"]
        if e["action"] == "escalated" and e["detail"]["task_id"] == police_task
    ]
    assert esc and esc[0]["detail"]["commander"] == "t_operator"
    alert = client.get(f"/api/alerts/{esc[0]['detail']['alert_id']}", headers=op).json()
    assert alert["severity"] == "critical" and alert["rule"] == "incident_task_overdue"

    # A leader directs; operators may not.
    clock.now = late + timedelta(minutes=10)
    d = {"text": "Huy động thêm 2 máy bơm cho phường", "agency_code": ubnd, "sla_minutes": 30}
    assert client.post(f"/api/incidents/{iid}/directives", json=d, headers=op).status_code == 403
    r = client.post(f"/api/incidents/{iid}/directives", json=d, headers=leader)
    assert (
        r.status_code == 200
        and r.json()["origin"] == "directive"
        and r.json()["agency_code"] == ubnd
    )

    for to in ("responding", "contained", "closed"):
        clock.now += timedelta(minutes=30)
        r = client.post(f"/api/incidents/{iid}/transition", json={"to": to}, headers=op)
        assert r.status_code == 200, r.text
    det = client.get(f"/api/incidents/{iid}", headers=op).json()
    assert det["status"] == "closed" and det["closed_at"]
    # a closed incident suggests nothing more, and can no longer be edited
    assert client.get(f"/api/incidents/{iid}/suggested-links", headers=op).json() == []
    r = client.patch(f"/api/incidents/{iid}", json={"severity": 4}, headers=op)
    assert r.status_code == 409
    assert {t["status"] for t in det["tasks"]} <= {"done", "cancelled"}
    with seeded.connect() as conn, pytest.raises(Exception, match="append-only"):
        conn.execute(text("UPDATE incident_log SET actor = 'x' WHERE incident_id = :i"), {"i": iid})

    # The after-action report, rendered on the server, read back as a person would.
    html = client.get(f"/api/incidents/{iid}/report.html", headers=leader)
    assert html.status_code == 200 and "data:image/png;base64," in html.text
    assert "Huy động thêm 2 máy bơm" in html.text
    pdf = client.get(f"/api/incidents/{iid}/report.pdf?lang=vi", headers=leader)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    out = tmp_path / "report.pdf"
    out.write_bytes(pdf.content)
    art = Path("test-artifacts/incidents")
    art.mkdir(parents=True, exist_ok=True)
    (art / "report.pdf").write_bytes(pdf.content)
    subprocess.run(["pdftoppm", "-png", "-r", "60", str(out), str(art / "report")], check=True)
    assert list(art.glob("report-*.png"))
    words = subprocess.run(
        ["pdftotext", "-layout", str(out), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "Dòng thời gian" in words and "Quá hạn — báo chỉ huy" in words
    assert "t_operator" in words and "Sở Xây dựng" in words
    assert "Huy động thêm 2 máy bơm" in words

    # The KPIs land in the sector model, per commune, and roll up like the others.
    with seeded.begin() as conn:
        incident_ops.refresh_kpis(conn, force=True)
        got: dict[str, float] = dict(
            conn.execute(
                text(
                    "SELECT o.indicator_code, sum(o.value) FROM indicator_observation o"
                    " JOIN indicator_subject s ON s.id = o.subject_id WHERE s.key = :c"
                    " AND o.indicator_code IN ('sc_confirmed', 'sc_flood_confirm_min',"
                    " 'sc_tasks_done', 'sc_closed') GROUP BY 1"
                ),
                {"c": place["code"]},
            ).all()
        )
    assert got["sc_confirmed"] >= 1 and got["sc_flood_confirm_min"] >= 12
    assert got["sc_closed"] >= 1 and got["sc_tasks_done"] >= 1
    r = client.get("/api/indicators/sc_confirm_time?level=commune", headers=leader)
    assert r.status_code == 200, r.text
    # ... and alert like the others: an indicator rule on the flood time-to-confirm fires
    rule = {
        "slug": "t_flood_confirm_slow",
        "name": "Xác nhận sự cố ngập chậm",
        "kind": "indicator",
        "indicator": "sc_flood_confirm_time",
        "level": "commune",
        "subjects": [place["code"]],
        "threshold": 10,
        "period": "latest",
    }
    assert client.put("/api/alerts/rules", json=rule, headers=op).status_code == 200
    rep = alerting.evaluate_all(seeded, now=clock.now, indicators=["sc_flood_confirm_min"])
    assert rep.opened and not rep.errors, rep
    fired = client.get(f"/api/alerts/{rep.opened[0]}", headers=op).json()
    assert fired["rule"] == "t_flood_confirm_slow" and fired["area_ref"] == place["code"]


def test_commune_staff_see_only_their_communes(
    client: TestClient, auth_headers: Headers, place: dict[str, Any]
) -> None:
    op = auth_headers("operator")
    far = {"type": "Point", "coordinates": list(place["far"])}
    r = client.post(
        "/api/incidents",
        json={"geometry": far, "type": "fire", "severity": 2, "title": "Cháy kho hàng"},
        headers=op,
    )
    assert r.status_code == 200, r.text
    far_id = r.json()["id"]
    here = {"type": "Point", "coordinates": [place["lng"], place["lat"]]}
    r = client.post(
        "/api/incidents",
        json={"geometry": here, "type": "crowd", "severity": 1, "title": "Tụ tập đông người"},
        headers=op,
    )
    here_id = r.json()["id"]
    staff = auth_headers("commune_staff")  # the most populous commune
    seen = {i["id"] for i in client.get("/api/incidents", headers=staff).json()}
    assert here_id in seen and far_id not in seen
    assert client.get(f"/api/incidents/{far_id}", headers=staff).status_code == 404
    assert client.get(f"/api/incidents/{here_id}", headers=staff).status_code == 200
    assert (
        client.post(
            "/api/incidents", json={"geometry": here, "title": "x"}, headers=staff
        ).status_code
        == 403
    )
    assert client.get("/api/incidents", headers=auth_headers("citizen")).status_code == 403
    around = client.get(f"/api/incidents/{here_id}/around", headers=op).json()
    assert around["hospitals"] and all(h["beds"] for h in around["hospitals"])
    assert around["police"] and around["fire"] and around["ambulance"]
    assert around["population"] > 0 and around["cameras"] is not None
    assert client.get(f"/api/incidents/{here_id}/around", headers=staff).json()["cameras"] is None
    board = client.get("/api/incidents/board", headers=auth_headers("leader")).json()
    order = [(-i["severity"], datetime.fromisoformat(i["opened_at"])) for i in board["incidents"]]
    assert order == sorted(order)  # most severe first, then the oldest
    assert board["by_severity"]["2"] == sum(i["severity"] == 2 for i in board["incidents"])
    assert all(i["age_minutes"] >= 0 for i in board["incidents"])


def test_list_filters_and_edits(
    client: TestClient, auth_headers: Headers, place: dict[str, Any]
) -> None:
    op = auth_headers("operator")
    here = {"type": "Point", "coordinates": [place["lng"], place["lat"]]}
    far = {"type": "Point", "coordinates": list(place["far"])}
    ids = {}
    for name, geom, itype in (("here", here, "infrastructure"), ("far", far, "environment")):
        r = client.post(
            "/api/incidents",
            json={"geometry": geom, "type": itype, "severity": 1, "title": f"Lọc {name}"},
            headers=op,
        )
        assert r.status_code == 200, r.text
        ids[name] = r.json()["id"]

    def listed(query: str) -> set[int]:
        r = client.get(f"/api/incidents?{query}", headers=op)
        assert r.status_code == 200, r.text
        return {i["id"] for i in r.json()}

    got = listed("type=infrastructure&status=new")
    assert ids["here"] in got and ids["far"] not in got
    x, y = place["lng"], place["lat"]
    got = listed(f"bbox={x - 0.01},{y - 0.01},{x + 0.01},{y + 0.01}")
    assert ids["here"] in got and ids["far"] not in got
    assert ids["here"] not in listed("status=confirmed")
    assert client.get("/api/incidents?bbox=1,2,3", headers=op).status_code == 400

    # PATCH: each change logged with its old and new value; the SOP follows the new type
    r = client.patch(
        f"/api/incidents/{ids['here']}",
        json={"severity": 3, "type": "flood", "title": "Ngập cục bộ"},
        headers=op,
    )
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["severity"] == 3 and doc["type"] == "flood" and doc["title"] == "Ngập cục bộ"
    assert doc["sop_version_id"] is not None
    det = client.get(f"/api/incidents/{ids['here']}", headers=op).json()
    upd = [e for e in det["log"] if e["action"] == "updated"][-1]
    assert upd["actor"] == "t_operator" and upd["detail"]["severity"] == {"from": 1, "to": 3}
    r = client.patch(f"/api/incidents/{ids['here']}", json={"radius_m": 10**9}, headers=op)
    assert r.status_code == 400 and "radius_m" in r.text
    staff = auth_headers("commune_staff")
    r = client.patch(f"/api/incidents/{ids['here']}", json={"severity": 2}, headers=staff)
    assert r.status_code == 403

    # an area, not a point: kept as drawn, placed in its commune, listed by its bbox
    d = 0.002
    ring = [[x - d, y - d], [x + d, y - d], [x + d, y + d], [x - d, y + d], [x - d, y - d]]
    area = {"type": "Polygon", "coordinates": [ring]}
    r = client.post(
        "/api/incidents",
        json={"geometry": area, "type": "environment", "title": "Tràn dầu khu cảng"},
        headers=op,
    )
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["geometry"]["type"] == "Polygon" and doc["commune_code"] == place["code"]
    assert doc["lng"] == pytest.approx(x, abs=d) and doc["lat"] == pytest.approx(y, abs=d)
    assert doc["id"] in listed(f"bbox={x - 0.01},{y - 0.01},{x + 0.01},{y + 0.01}")


def test_bad_input_is_a_clear_4xx(client: TestClient, auth_headers: Headers) -> None:
    op = auth_headers("operator")
    r = client.post("/api/incidents", json={"title": "no place"}, headers=op)
    assert r.status_code == 400 and "geometry" in r.text
    r = client.post(
        "/api/incidents",
        json={"geometry": {"type": "Point", "coordinates": [500, 10]}, "title": "x"},
        headers=op,
    )
    assert r.status_code == 400 and "geometry" in r.text
    r = client.post(
        "/api/incidents", json={"source": {"kind": "alert", "ref": "999999"}}, headers=op
    )
    assert r.status_code == 404


def test_open_from_a_sensor_reading_and_from_a_demo_report(
    client: TestClient, seeded: Engine, auth_headers: Headers, place: dict[str, Any]
) -> None:
    from layers.features.bulk import FeatureRow, upsert_features
    from layers.features.registry import LayerSpec, create_or_update_layer
    from layers.models.core import feature, layer

    op = auth_headers("operator")
    spec = LayerSpec(
        slug="t_water_level_gauges",
        title_vi="Trạm đo mực nước (thử)",
        title_en="Water level gauges (test)",
        sector="environment",
        geometry_type="Point",
        synthetic=True,
    )
    when = datetime(2041, 3, 2, 0, 50, tzinfo=UTC)
    with seeded.begin() as conn:
        lid = create_or_update_layer(conn, spec)
        gauge = shapely.Point(place["lng"] + 0.002, place["lat"])
        upsert_features(conn, lid, [FeatureRow("g1", gauge, {"level_m": 3.4}, when)])
        fid = conn.execute(
            select(feature.c.id).where(feature.c.layer_id == lid, feature.c.source_key == "g1")
        ).scalar_one()
    r = client.post(
        "/api/incidents",
        json={"source": {"kind": "reading", "ref": f"t_water_level_gauges:{fid}"}, "severity": 2},
        headers=op,
    )
    assert r.status_code == 200, r.text
    inc = r.json()
    assert inc["type"] == "flood" and inc["commune_code"] == place["code"]
    assert inc["lng"] == pytest.approx(place["lng"] + 0.002)
    links = client.get(f"/api/incidents/{inc['id']}", headers=op).json()["links"]
    assert [(x["kind"], x["ref"]) for x in links] == [("reading", f"t_water_level_gauges:{fid}")]

    # A report of the demo's history is on the map (field_reports) but not in the workflow's
    # table: its card opens an incident all the same, at the report's place.
    with seeded.connect() as conn:
        code, x, y = conn.execute(
            select(feature.c.source_key, func.ST_X(feature.c.geom), func.ST_Y(feature.c.geom))
            .join(layer, layer.c.id == feature.c.layer_id)
            .where(
                layer.c.slug == "field_reports",
                feature.c.properties["category"].astext == "traffic",
            )
            .order_by(feature.c.source_key)
            .limit(1)
        ).one()
    r = client.post("/api/incidents", json={"source": {"kind": "report", "ref": code}}, headers=op)
    assert r.status_code == 200, r.text
    inc = r.json()
    assert inc["type"] == "traffic_accident" and inc["title"]
    assert (inc["lng"], inc["lat"]) == (pytest.approx(x), pytest.approx(y))
    r = client.post(
        "/api/incidents", json={"source": {"kind": "report", "ref": "PA-none"}}, headers=op
    )
    assert r.status_code == 404
