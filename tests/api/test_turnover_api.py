"""Turnover tasks: each live booking's checkout makes one task, which follows the booking's moves and is canceled
with it, as the property's turnover settings say; replaying the policy creates nothing twice."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.conftest import Api


@pytest.fixture
def people(api: Api, admin: dict[str, str]) -> dict:
    staff_id = api.make_user("stella", "staff", "cleaning")
    api.make_user("manny", "manager", "none")
    return {"manager": api.auth("manny"), "staff": api.auth("stella"), "staff_id": staff_id, "admin": admin}


@pytest.fixture
def lisbon(api: Api, people) -> int:
    m = people["manager"]
    prop = api.post("/api/properties/", json={"name": "Alfama", "timezone": "Europe/Lisbon"}, headers=m).json()
    for number in ("101", "102"):
        api.post(f"/api/properties/{prop['id']}/units/", json={"unit_number": number}, headers=m).raise_for_status()
    return prop["id"]


def settle(api: Api) -> None:
    """Let the policy answer every booking event so far (it also runs by itself, within a second)."""
    api.runtime.call(api.runtime.turnover.run_until_idle)
    api.runtime.settle(api.runtime.app.recorder.max_notification_id() or 0)


def _book(api: Api, headers: dict, **fields: object) -> dict:
    r = api.post("/api/bookings/", json=fields, headers=headers)
    assert r.status_code == 201, r.text
    settle(api)
    return api.get(f"/api/bookings/{r.json()['id']}/", headers=headers).json()


def _task(api: Api, headers: dict, task_id: int) -> dict:
    r = api.get(f"/api/tasks/{task_id}/", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_a_booking_makes_one_cleaning_due_after_its_checkout(api: Api, people, lisbon) -> None:
    m = people["manager"]
    b = _book(
        api,
        m,
        property=lisbon,
        unit="101",
        guest_name="Ana",
        external_code="HM1",
        source="airbnb",
        check_in_date="2025-09-10",
        check_out_date="2025-09-15",
    )
    task = _task(api, m, b["turnover_task"])
    assert (task["task_type"], task["status"], task["priority"]) == ("cleaning", "pending", "medium")
    assert (task["property"], task["unit"], task["title"]) == (lisbon, task["unit"], "Turnover: Alfama 101")
    assert task["unit"] is not None and "Ana" in task["description"] and "HM1" in task["description"]
    # Check-out 11:00 Lisbon (10:00 UTC), due four hours later by default.
    assert _at(task["due_date"]) == _at(b["check_out_date"]) + timedelta(hours=4)
    # Cleaners see it (unassigned, of their group), on their list and dashboard.
    listed = api.get("/api/staff/tasks/", headers=people["staff"]).json()
    assert [t["id"] for t in listed["results"]] == [task["id"]]
    dashboard = api.get("/api/staff/dashboard/", headers=people["staff"]).json()
    assert dashboard["task_counts"]["pending"] == 1
    assert [t["id"] for t in dashboard["recent_tasks"]] == [task["id"]]


def test_the_task_follows_moves_and_cancellation(api: Api, people, lisbon) -> None:
    m = people["manager"]
    b = _book(
        api, m, property=lisbon, unit="101", guest_name="Ana", check_in_date="2025-09-10", check_out_date="2025-09-15"
    )
    tid = b["turnover_task"]
    # A manager's own change of the due date is kept: a moved check-out moves the task by the same amount.
    api.patch(f"/api/tasks/{tid}/", json={"due_date": "2025-09-15T16:00:00Z"}, headers=m).raise_for_status()
    api.patch(
        f"/api/bookings/{b['id']}/", json={"check_out_date": "2025-09-17", "unit": "102"}, headers=m
    ).raise_for_status()
    settle(api)
    task = _task(api, m, tid)
    assert _at(task["due_date"]) == _at("2025-09-17T16:00:00Z")
    unit_102 = next(
        u for u in api.get(f"/api/properties/{lisbon}/", headers=m).json()["units"] if u["unit_number"] == "102"
    )
    assert task["unit"] == unit_102["id"]
    api.post(f"/api/bookings/{b['id']}/cancel/", headers=m).raise_for_status()
    settle(api)
    assert _task(api, m, tid)["status"] == "canceled"
    # Replaying the whole log through the policy changes nothing.
    api.runtime.db.execute("UPDATE policy_state SET position = 0")
    settle(api)
    again = _task(api, m, tid)
    assert again["status"] == "canceled" and _at(again["due_date"]) == _at("2025-09-17T16:00:00Z")
    assert api.get("/api/tasks/", headers=m).json()["count"] == 1


def test_a_cancelled_booking_leaves_a_task_under_way_and_tells_its_people(api: Api, people, lisbon) -> None:
    m = people["manager"]
    b = _book(
        api, m, property=lisbon, unit="101", guest_name="Ana", check_in_date="2025-09-10", check_out_date="2025-09-15"
    )
    tid = b["turnover_task"]
    api.post(f"/api/tasks/{tid}/assign/", json={"user": people["staff_id"]}, headers=m).raise_for_status()
    api.patch(f"/api/staff/tasks/{tid}/", json={"status": "in-progress"}, headers=people["staff"]).raise_for_status()
    api.patch(f"/api/bookings/{b['id']}/", json={"status": "cancelled"}, headers=m).raise_for_status()
    settle(api)
    assert _task(api, m, tid)["status"] == "in-progress"
    told = api.get("/api/notifications/", headers=people["staff"]).json()["results"]
    assert any(n["verb"] == "booking_cancelled" for n in told), told
    told_manager = api.get("/api/notifications/", headers=m).json()["results"]
    assert any(n["verb"] == "booking_cancelled" for n in told_manager), told_manager


def test_a_same_day_check_in_makes_the_turnover_urgent(api: Api, people, lisbon) -> None:
    m = people["manager"]
    first = _book(
        api, m, property=lisbon, unit="101", guest_name="Ana", check_in_date="2025-09-10", check_out_date="2025-09-15"
    )
    assert _task(api, m, first["turnover_task"])["priority"] == "medium"
    _book(api, m, property=lisbon, unit="101", guest_name="Bo", check_in_date="2025-09-15", check_out_date="2025-09-18")
    task = _task(api, m, first["turnover_task"])
    assert task["priority"] == "high" and "Same-day check-in" in task["description"]
    # Another unit's arrival is not this unit's turnover.
    other = _book(
        api, m, property=lisbon, unit="102", guest_name="Cy", check_in_date="2025-09-12", check_out_date="2025-09-18"
    )
    assert _task(api, m, other["turnover_task"])["priority"] == "medium"


def test_turnover_settings_per_property(api: Api, people, lisbon) -> None:
    m = people["manager"]
    r = api.patch(
        f"/api/properties/{lisbon}/",
        json={"turnover": {"task_type": "laundry", "offset": -60, "assign_to": people["staff_id"]}},
        headers=m,
    )
    assert r.status_code == 200, r.text
    assert r.json()["turnover"] == {
        "enabled": True,
        "task_type": "laundry",
        "checklist_template": None,
        "assign_to": people["staff_id"],
        "offset": -60,
    }
    b = _book(api, m, property=lisbon, guest_name="Ana", check_in_date="2025-09-10", check_out_date="2025-09-15")
    task = _task(api, m, b["turnover_task"])
    assert (task["task_type"], task["assigned_to"]) == ("laundry", people["staff_id"])
    assert _at(task["due_date"]) == _at(b["check_out_date"]) - timedelta(hours=1)
    api.patch(f"/api/properties/{lisbon}/", json={"turnover": {"enabled": False}}, headers=m).raise_for_status()
    quiet = _book(api, m, property=lisbon, guest_name="Bo", check_in_date="2025-10-10", check_out_date="2025-10-15")
    assert quiet["turnover_task"] is None
    assert api.get("/api/tasks/", headers=m).json()["count"] == 1
    for bad, field in (
        ({"task_type": "party"}, "turnover.task_type"),
        ({"offset": 10**6}, "turnover.offset"),
        ({"assign_to": 999}, "turnover.assign_to"),
        ({"checklist_template": 999}, "turnover.checklist_template"),
    ):
        r = api.patch(f"/api/properties/{lisbon}/", json={"turnover": bad}, headers=m)
        assert r.status_code == 400, (bad, r.text)
        assert field in r.json()["details"], (bad, r.json())
    assert api.patch(f"/api/properties/{lisbon}/", json={"turnover": {"colour": "red"}}, headers=m).status_code == 400


def test_the_description_follows_the_guest_and_a_past_stay_makes_no_task(api: Api, people, lisbon) -> None:
    m = people["manager"]
    b = _book(
        api, m, property=lisbon, unit="101", guest_name="Ana", check_in_date="2025-09-10", check_out_date="2025-09-15"
    )
    api.patch(
        f"/api/bookings/{b['id']}/", json={"guest_name": "Bea", "check_out_date": "2025-09-16"}, headers=m
    ).raise_for_status()
    settle(api)
    task = _task(api, m, b["turnover_task"])
    assert task["description"].startswith("Turnover after the stay of Bea") and "2025-09-16" in task["description"]
    past = _book(
        api,
        m,
        property=lisbon,
        unit="102",
        guest_name="Cy",
        status="completed",
        check_in_date="2025-08-01",
        check_out_date="2025-08-03",
    )
    assert past["turnover_task"] is None


def test_a_due_date_at_the_calendar_edge_stays_and_stops_nothing(api: Api, people, lisbon) -> None:
    m = people["manager"]
    b = _book(
        api, m, property=lisbon, unit="101", guest_name="Ana", check_in_date="2025-09-10", check_out_date="2025-09-15"
    )
    tid = b["turnover_task"]
    api.patch(f"/api/tasks/{tid}/", json={"due_date": "9999-12-31T00:00:00Z"}, headers=m).raise_for_status()
    api.patch(f"/api/bookings/{b['id']}/", json={"check_out_date": "2025-09-17"}, headers=m).raise_for_status()
    settle(api)
    assert _task(api, m, tid)["due_date"].startswith("9999-12-31")
    # The policy goes on: the next booking gets its task.
    nxt = _book(
        api, m, property=lisbon, unit="102", guest_name="Bo", check_in_date="2025-10-01", check_out_date="2025-10-03"
    )
    assert nxt["turnover_task"] is not None
