"""The incident rules as pure functions: states, SOPs as data, task planning, matching, KPIs."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from importlib import resources

import pytest

from analytics import incidents as rules
from layers.errors import ConflictError, InvalidInputError

T0 = datetime(2041, 3, 2, 1, 0, tzinfo=UTC)


def test_the_shipped_sops_are_valid_and_name_real_agency_kinds() -> None:
    raw = json.loads(resources.files("layers.incidents").joinpath("sops.json").read_text("utf-8"))
    specs = [rules.SopSpec.model_validate(d) for d in raw]
    assert {s.incident_type for s in specs} == {"flood", "fire", "traffic_accident", "crowd"}
    kinds = {st.agency_kind for s in specs for st in s.steps}
    assert {"cong_an_tinh", "pccc", "cap_cuu_115", "ubnd_xa", "so_nganh"} <= kinds
    names = {st.agency_name for s in specs for st in s.steps if st.agency_name}
    assert "Sở Xây dựng" in names


def test_transitions_only_move_forward() -> None:
    rules.check_transition("new", "confirmed")
    rules.check_transition("contained", "responding")
    for cur, to in (("new", "closed"), ("closed", "responding"), ("false_alarm", "new")):
        with pytest.raises(ConflictError):
            rules.check_transition(cur, to)
    with pytest.raises(InvalidInputError):
        rules.check_transition("new", "solved")


def test_steps_with_a_severity_condition_apply_only_at_or_above_it() -> None:
    steps = [
        {"title_vi": "A", "title_en": "A", "agency_kind": "ubnd_xa", "sla_minutes": 30},
        {
            "title_vi": "B",
            "title_en": "B",
            "agency_kind": "pccc",
            "sla_minutes": 10,
            "min_severity": 3,
        },
    ]
    low = rules.plan_tasks(steps, 2, T0)
    high = rules.plan_tasks(steps, 3, T0)
    assert [p.title for p in low] == ["A"]
    assert [p.title for p in high] == ["A", "B"] and high[1].step_no == 2
    assert high[1].due_at == T0 + timedelta(minutes=10)


def test_a_step_names_one_owner() -> None:
    with pytest.raises(ValueError):
        rules.SopStep(title_vi="x", title_en="x", sla_minutes=5)
    with pytest.raises(ValueError):
        rules.SopStep(title_vi="x", title_en="x", sla_minutes=5, agency_kind="so_nganh")


def test_the_narrowest_sop_band_wins() -> None:
    sops = [
        {"slug": "all", "incident_type": "fire", "min_severity": 1, "max_severity": 4},
        {"slug": "big", "incident_type": "fire", "min_severity": 3, "max_severity": 4},
    ]
    assert rules.pick_sop(sops, "fire", 4)["slug"] == "big"
    assert rules.pick_sop(sops, "fire", 2)["slug"] == "all"
    assert rules.pick_sop(sops, "flood", 2) is None


def test_sources_match_incidents_of_their_type() -> None:
    assert rules.source_type("alert", "flood_water_level") == "flood"
    assert rules.source_type("event", "stopped_vehicle") == "traffic_accident"
    assert rules.source_type("report", "security") == "crowd"
    assert rules.types_match("flood", "flood") and not rules.types_match("fire", "flood")
    assert rules.types_match("fire", None)


def test_evidence_is_required_before_completion() -> None:
    with pytest.raises(ConflictError):
        rules.check_completion("photo", notes=3, photos=0)
    rules.check_completion("note", notes=1, photos=0)


def test_kpis_per_type_and_commune_on_local_days() -> None:
    incs = [
        {"id": 1, "type": "flood", "commune_code": "A", "status": "closed", "opened_at": T0,
         "confirmed_at": T0 + timedelta(minutes=10), "closed_at": T0 + timedelta(hours=3)},
    ]  # fmt: skip
    tasks = [
        {"incident_id": 1, "status": "done", "acknowledged_at": T0 + timedelta(minutes=15),
         "completed_at": T0 + timedelta(minutes=40), "due_at": T0 + timedelta(minutes=30)},
    ]  # fmt: skip
    day = date(2041, 3, 2)  # 08:00 in Vietnam
    vals = rules.kpi_values(incs, tasks, lambda ts: ts.astimezone(UTC).date())
    assert vals[("sc_confirm_min", "A", day)] == 10
    assert vals[("sc_flood_response_min", "A", day)] == 15
    assert vals[("sc_close_min", "A", day)] == 180
    assert vals[("sc_tasks_done", "A", day)] == 1
    assert ("sc_tasks_on_time", "A", day) not in vals
