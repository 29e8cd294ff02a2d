"""Properties and units through the API: who may do what, uniqueness, archiving, unit status and counts."""

from __future__ import annotations

import pytest

from cosmo.domain.ids import aggregate_id
from tests.conftest import Api


@pytest.fixture
def people(api: Api, admin: dict[str, str]) -> dict[str, dict[str, str]]:
    for name, role in (("manny", "manager"), ("stella", "staff"), ("vic", "viewer"), ("audrey", "auditor")):
        api.make_user(name, role, "cleaning")
    return {
        "superuser": admin,
        "manager": api.auth("manny"),
        "staff": api.auth("stella"),
        "viewer": api.auth("vic"),
        "auditor": api.auth("audrey"),
    }


def _create(api: Api, headers: dict[str, str], **body: object) -> dict:
    r = api.post("/api/properties/", json={"name": "Main Building", **body}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def test_manager_creates_property_with_units_and_everyone_reads_it(api: Api, people) -> None:
    manager = people["manager"]
    prop = _create(api, manager, address="123 Main St", property_type="apartment", timezone="Europe/Lisbon")
    assert prop["name"] == "Main Building" and prop["timezone"] == "Europe/Lisbon"
    assert (prop["total_units"], prop["active_units"], prop["units"]) == (0, 0, [])
    for number in ("101", "102", "103"):
        r = api.post(f"/api/properties/{prop['id']}/units/", json={"unit_number": number}, headers=manager)
        assert r.status_code == 201, r.text
        assert r.json()["status"] == "vacant" and r.json()["current_booking"] is None
    for role in ("staff", "viewer", "auditor", "superuser"):
        listed = api.get("/api/properties/", headers=people[role])
        assert listed.status_code == 200
        body = listed.json()
        assert body["count"] == 1 and body["results"][0]["total_units"] == 3
        detail = api.get(f"/api/properties/{prop['id']}/", headers=people[role]).json()
        assert [u["unit_number"] for u in detail["units"]] == ["101", "102", "103"]
    assert api.get("/api/properties/").status_code == 401


def test_only_superusers_and_managers_write(api: Api, people) -> None:
    prop = _create(api, people["superuser"])
    pid = prop["id"]
    unit = api.post(f"/api/properties/{pid}/units/", json={"unit_number": "1"}, headers=people["manager"]).json()
    for role in ("staff", "viewer", "auditor"):
        h = people[role]
        attempts = [
            api.post("/api/properties/", json={"name": f"By {role}"}, headers=h),
            api.patch(f"/api/properties/{pid}/", json={"address": "x"}, headers=h),
            api.delete(f"/api/properties/{pid}/", headers=h),
            api.post(f"/api/properties/{pid}/units/", json={"unit_number": "9"}, headers=h),
            api.patch(f"/api/properties/{pid}/units/{unit['id']}/", json={"status": "inactive"}, headers=h),
            api.delete(f"/api/properties/{pid}/units/{unit['id']}/", headers=h),
        ]
        assert [r.status_code for r in attempts] == [403] * 6, role
        assert attempts[0].json() == {"error": "Permission denied"}
    detail = api.get(f"/api/properties/{pid}/", headers=people["staff"]).json()
    assert detail["address"] == "" and len(detail["units"]) == 1 and detail["units"][0]["status"] == "vacant"


def test_validation_lists_every_bad_field(api: Api, people) -> None:
    r = api.post(
        "/api/properties/",
        json={"name": " ", "property_type": "castle", "timezone": "Mars/Olympus"},
        headers=people["manager"],
    )
    assert r.status_code == 400
    details = r.json()["details"]
    assert set(details) == {"name", "property_type", "timezone"}
    assert "apartment, house, condo, villa, cabin, other" in details["property_type"][0]
    r = api.post("/api/properties/", json={"name": "X", "total_units": 5}, headers=people["manager"])
    assert r.status_code == 400
    assert api.get("/api/properties/?property_type=castle", headers=people["manager"]).status_code == 400


def test_names_are_unique_among_live_properties(api: Api, people) -> None:
    m = people["manager"]
    first = _create(api, m)
    r = api.post("/api/properties/", json={"name": "main building "}, headers=m)
    assert r.status_code == 400 and "name" in r.json()["details"]
    other = _create(api, m, name="Annex")
    r = api.patch(f"/api/properties/{other['id']}/", json={"name": "MAIN BUILDING"}, headers=m)
    assert r.status_code == 400
    # Renaming frees the old name; archiving frees the name too.
    assert api.patch(f"/api/properties/{first['id']}/", json={"name": "Tower"}, headers=m).status_code == 200
    assert api.patch(f"/api/properties/{other['id']}/", json={"name": "Main Building"}, headers=m).status_code == 200
    assert api.delete(f"/api/properties/{other['id']}/", headers=m).status_code == 204
    assert _create(api, m)["name"] == "Main Building"


def test_archive_hides_property_and_keeps_history(api: Api, people) -> None:
    m = people["manager"]
    prop = _create(api, m)
    pid = prop["id"]
    api.post(f"/api/properties/{pid}/units/", json={"unit_number": "1"}, headers=m)
    assert api.delete(f"/api/properties/{pid}/", headers=m).status_code == 204
    assert api.get("/api/properties/", headers=m).json()["count"] == 0
    assert api.get(f"/api/properties/{pid}/", headers=m).status_code == 404
    assert api.get(f"/api/properties/{pid}/units/", headers=m).status_code == 404
    assert api.patch(f"/api/properties/{pid}/", json={"address": "x"}, headers=m).status_code == 404
    assert api.delete(f"/api/properties/{pid}/", headers=m).status_code == 404
    # The log still holds every event of it.
    events = list(api.runtime.app.events.get(aggregate_id("property", pid)))
    assert [type(e).__name__ for e in events] == ["Created", "UnitAdded", "Archived"]


def test_unit_numbers_status_and_counts(api: Api, people) -> None:
    m = people["manager"]
    pid = _create(api, m)["id"]
    units = [
        api.post(f"/api/properties/{pid}/units/", json={"unit_number": n}, headers=m).json() for n in ("A1", "A2", "A3")
    ]
    dup = api.post(f"/api/properties/{pid}/units/", json={"unit_number": "a1"}, headers=m)
    assert dup.status_code == 400 and "unit_number" in dup.json()["details"]
    # The same number in another property is fine.
    other = _create(api, m, name="Other")["id"]
    assert api.post(f"/api/properties/{other}/units/", json={"unit_number": "A1"}, headers=m).status_code == 201

    base = f"/api/properties/{pid}/units"
    r = api.patch(f"{base}/{units[0]['id']}/", json={"status": "inactive"}, headers=m)
    assert r.status_code == 200 and r.json()["status"] == "inactive"
    r = api.patch(f"{base}/{units[1]['id']}/", json={"status": "maintenance"}, headers=m)
    assert r.json()["status"] == "maintenance"
    detail = api.get(f"/api/properties/{pid}/", headers=m).json()
    assert (detail["total_units"], detail["active_units"]) == (3, 2)
    bad = api.patch(f"{base}/{units[2]['id']}/", json={"status": "occupied"}, headers=m)
    assert bad.status_code == 400 and "status" in bad.json()["details"]
    clash = api.patch(f"{base}/{units[2]['id']}/", json={"unit_number": "A2"}, headers=m)
    assert clash.status_code == 400
    # `vacant` clears the manual status.
    assert api.patch(f"{base}/{units[0]['id']}/", json={"status": "vacant"}, headers=m).json()["status"] == "vacant"
    assert api.delete(f"{base}/{units[1]['id']}/", headers=m).status_code == 204
    assert api.get(f"{base}/{units[1]['id']}/", headers=m).status_code == 404
    assert api.delete(f"{base}/{units[1]['id']}/", headers=m).status_code == 404
    listed = api.get("/api/properties/", headers=m).json()["results"]
    mine = next(p for p in listed if p["id"] == pid)
    assert (mine["total_units"], mine["active_units"]) == (2, 2)
    # A unit id under the wrong property is not found.
    assert api.get(f"/api/properties/{other}/units/{units[0]['id']}/", headers=m).status_code == 404


def test_list_search_ordering_and_pages(api: Api, people) -> None:
    m = people["manager"]
    for name, kind in (("Cedar Cabin", "cabin"), ("Alder House", "house"), ("Birch Villa", "villa")):
        _create(api, m, name=name, property_type=kind, address=f"{name} road")
    names = [p["name"] for p in api.get("/api/properties/", headers=m).json()["results"]]
    assert names == ["Alder House", "Birch Villa", "Cedar Cabin"]
    names = [p["name"] for p in api.get("/api/properties/?ordering=-name", headers=m).json()["results"]]
    assert names == ["Cedar Cabin", "Birch Villa", "Alder House"]
    assert api.get("/api/properties/?property_type=villa", headers=m).json()["count"] == 1
    assert api.get("/api/properties/?search=HOUSE", headers=m).json()["results"][0]["name"] == "Alder House"
    page = api.get("/api/properties/?page_size=2&page=2", headers=m).json()
    assert page["count"] == 3 and len(page["results"]) == 1 and page["next"] is None
    assert api.get("/api/properties/?ordering=address", headers=m).status_code == 400
