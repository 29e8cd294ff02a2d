"""Bookings through the API: fields as the contract has them, who may write, the rules (dates, unique codes, no
overlaps), filters and ordering, and units coming alive in the property views."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import Api


@pytest.fixture
def people(api: Api, admin: dict[str, str]) -> dict[str, dict[str, str]]:
    api.make_user("manny", "manager", "none")
    api.make_user("stella", "staff", "cleaning")
    api.make_user("vic", "viewer", "none")
    return {"superuser": admin, "manager": api.auth("manny"), "staff": api.auth("stella"), "viewer": api.auth("vic")}


@pytest.fixture
def place(api: Api, people) -> dict:
    """A property in Lisbon with units 101 and 102, and one in UTC without units."""
    m = people["manager"]
    lisbon = api.post("/api/properties/", json={"name": "Alfama", "timezone": "Europe/Lisbon"}, headers=m).json()
    for number in ("101", "102"):
        api.post(f"/api/properties/{lisbon['id']}/units/", json={"unit_number": number}, headers=m)
    house = api.post("/api/properties/", json={"name": "Beach House"}, headers=m).json()
    return {"lisbon": lisbon["id"], "house": house["id"]}


def _book(api: Api, headers: dict[str, str], expect: int = 201, **fields: object) -> dict:
    r = api.post("/api/bookings/", json=fields, headers=headers)
    assert r.status_code == expect, r.text
    return r.json()


def test_create_answers_the_full_object_in_the_contract_fields(api: Api, people, place) -> None:
    b = _book(
        api,
        people["manager"],
        property=place["lisbon"],
        unit="101",
        external_code="HMABC123",
        source="airbnb",
        guest_name="John Doe",
        guest_contact="+351 900 000 000",
        check_in_date="2025-09-10",
        check_out_date="2025-09-15",
        adults=2,
        children=1,
        earnings="1020.5",
        earnings_currency="EUR",
        booked_at="2025-08-01T10:00:00Z",
        notes="Late arrival",
    )
    # A date alone: check-in 15:00 and check-out 11:00, Lisbon time (UTC+1 in September).
    assert b["check_in_date"] == "2025-09-10T14:00:00Z" and b["check_out_date"] == "2025-09-15T10:00:00Z"
    assert (b["property"], b["property_name"], b["unit"], b["status"]) == (
        place["lisbon"],
        "Alfama",
        "101",
        "confirmed",
    )
    assert (b["total_nights"], b["adults"], b["children"], b["infants"]) == (5, 2, 1, 0)
    assert (b["earnings"], b["earnings_currency"], b["source"]) == ("1020.50", "EUR", "airbnb")
    assert b["booked_at"] == "2025-08-01T10:00:00Z" and b["notes"] == "Late arrival"
    assert b["created_at"]
    # Its turnover task comes from the policy, a moment later.
    api.runtime.call(api.runtime.turnover.run_until_idle)
    api.runtime.settle(api.runtime.app.recorder.max_notification_id() or 0)
    b = api.get(f"/api/bookings/{b['id']}/", headers=people["manager"]).json()
    assert isinstance(b["turnover_task"], int)
    for role in ("staff", "viewer", "superuser"):
        assert api.get(f"/api/bookings/{b['id']}/", headers=people[role]).json() == b
    assert api.get(f"/api/bookings/{b['id']}/").status_code == 401


def test_only_superusers_and_managers_write(api: Api, people, place) -> None:
    b = _book(
        api,
        people["superuser"],
        property=place["house"],
        guest_name="A",
        check_in_date="2025-01-01",
        check_out_date="2025-01-03",
    )
    for role in ("staff", "viewer"):
        h = people[role]
        attempts = [
            api.post(
                "/api/bookings/",
                json={
                    "property": place["house"],
                    "guest_name": "B",
                    "check_in_date": "2025-02-01",
                    "check_out_date": "2025-02-02",
                },
                headers=h,
            ),
            api.patch(f"/api/bookings/{b['id']}/", json={"notes": "x"}, headers=h),
            api.post(f"/api/bookings/{b['id']}/cancel/", headers=h),
        ]
        assert [r.status_code for r in attempts] == [403, 403, 403], role
    assert api.get(f"/api/bookings/{b['id']}/", headers=people["staff"]).json()["status"] == "confirmed"
    assert api.get("/api/bookings/", headers=people["staff"]).json()["count"] == 1


def test_bad_fields_are_400s_naming_each(api: Api, people, place) -> None:
    m = people["manager"]
    r = api.post(
        "/api/bookings/",
        json={
            "property": place["lisbon"],
            "guest_name": " ",
            "check_in_date": "2025-09-10",
            "check_out_date": "2025-09-12",
            "source": "expedia",
            "status": "maybe",
            "earnings": "-5",
            "earnings_currency": "usd",
            "adults": 100,
        },
        headers=m,
    )
    assert r.status_code == 400
    assert {"guest_name", "source", "status", "earnings_currency", "adults"} <= set(r.json()["details"])
    base = {"property": place["lisbon"], "guest_name": "G"}
    cases = [
        ({"check_in_date": "2025-09-12", "check_out_date": "2025-09-10"}, "check_out_date"),
        ({"check_in_date": "2025-09-12", "check_out_date": "2025-09-12"}, "check_out_date"),
        ({"check_in_date": "10/09/2025", "check_out_date": "2025-09-12"}, "check_in_date"),
        ({"check_in_date": "0001-01-01", "check_out_date": "2025-09-12"}, "check_in_date"),
        ({"check_in_date": "2025-09-10", "check_out_date": "9999-12-31T23:59:59-14:00"}, "check_out_date"),
        ({"check_in_date": "2025-09-10", "check_out_date": "2025-09-12", "unit": "999"}, "unit"),
        ({"check_in_date": "2025-09-10", "check_out_date": "2025-09-12", "earnings": "1e3"}, "earnings"),
        ({"check_in_date": "2025-09-10", "check_out_date": "2025-09-12", "guest_name": "a\u0000b"}, "guest_name"),
        ({"check_in_date": "2025-09-10", "check_out_date": "2025-09-12", "property": 2**63}, "property"),
        ({"check_in_date": "2025-09-10", "check_out_date": "2025-09-12", "property": 999}, "property"),
        (
            {"check_in_date": "2025-09-10", "check_out_date": "2025-09-12", "booked_at": "0001-01-01T00:00:00+14:00"},
            "booked_at",
        ),
    ]
    for fields, field in cases:
        r = api.post("/api/bookings/", json={**base, **fields}, headers=m)
        assert r.status_code == 400, (fields, r.text)
        assert field in r.json()["details"], (fields, r.json())
    r = api.post(
        "/api/bookings/",
        json={**base, "check_in_date": "2025-09-10", "check_out_date": "2025-09-12", "total_nights": 3},
        headers=m,
    )
    assert r.status_code == 400
    assert api.get("/api/bookings/", headers=m).json()["count"] == 0


def test_source_and_external_code_are_unique(api: Api, people, place) -> None:
    m = people["manager"]
    first = _book(
        api,
        m,
        property=place["house"],
        guest_name="A",
        external_code="X1",
        source="airbnb",
        check_in_date="2025-01-01",
        check_out_date="2025-01-03",
    )
    r = api.post(
        "/api/bookings/",
        json={
            "property": place["house"],
            "guest_name": "B",
            "external_code": "X1",
            "source": "airbnb",
            "check_in_date": "2025-03-01",
            "check_out_date": "2025-03-03",
        },
        headers=m,
    )
    assert r.status_code == 400 and "external_code" in r.json()["details"]
    # The same code from another source is another booking.
    _book(
        api,
        m,
        property=place["house"],
        guest_name="B",
        external_code="X1",
        source="vrbo",
        check_in_date="2025-03-01",
        check_out_date="2025-03-03",
    )
    # A code given up by an edit is free again.
    api.patch(f"/api/bookings/{first['id']}/", json={"external_code": "X2"}, headers=m).raise_for_status()
    _book(
        api,
        m,
        property=place["house"],
        guest_name="C",
        external_code="X1",
        source="airbnb",
        check_in_date="2025-05-01",
        check_out_date="2025-05-03",
    )


def test_live_bookings_of_one_unit_may_not_overlap(api: Api, people, place) -> None:
    m = people["manager"]
    lisbon = place["lisbon"]
    first = _book(
        api,
        m,
        property=lisbon,
        unit="101",
        guest_name="Ana",
        external_code="A1",
        source="airbnb",
        check_in_date="2025-09-10",
        check_out_date="2025-09-15",
    )
    r = api.post(
        "/api/bookings/",
        json={
            "property": lisbon,
            "unit": "101",
            "guest_name": "Bo",
            "check_in_date": "2025-09-14",
            "check_out_date": "2025-09-20",
        },
        headers=m,
    )
    assert r.status_code == 409
    body = r.json()
    assert body["error"] == "Conflict" and body["conflicting_booking"] == first["id"]
    assert "A1" in body["detail"] and "Ana" in body["detail"]
    # Check-out and check-in on the same day: no overlap, whatever the hours.
    _book(
        api,
        m,
        property=lisbon,
        unit="101",
        guest_name="Bo",
        check_in_date="2025-09-15T09:00:00",
        check_out_date="2025-09-20",
    )
    # Another unit, or no unit, is another calendar.
    _book(api, m, property=lisbon, unit="102", guest_name="Cy", check_in_date="2025-09-12", check_out_date="2025-09-14")
    # Moving a booking onto taken nights is refused, and changes nothing.
    r = api.patch(f"/api/bookings/{first['id']}/", json={"check_out_date": "2025-09-17", "notes": "x"}, headers=m)
    assert r.status_code == 409
    assert api.get(f"/api/bookings/{first['id']}/", headers=m).json()["notes"] == ""
    # A cancelled booking gives its nights up; reinstating it asks for them back.
    assert api.post(f"/api/bookings/{first['id']}/cancel/", headers=m).json()["status"] == "cancelled"
    taker = _book(
        api, m, property=lisbon, unit="101", guest_name="Di", check_in_date="2025-09-11", check_out_date="2025-09-13"
    )
    r = api.patch(f"/api/bookings/{first['id']}/", json={"status": "confirmed"}, headers=m)
    assert r.status_code == 409 and r.json()["conflicting_booking"] == taker["id"]
    api.post(f"/api/bookings/{taker['id']}/cancel/", headers=m).raise_for_status()
    assert api.patch(f"/api/bookings/{first['id']}/", json={"status": "confirmed"}, headers=m).status_code == 200
    # Cancelling twice is harmless.
    api.post(f"/api/bookings/{taker['id']}/cancel/", headers=m).raise_for_status()


def test_patch_moves_and_answers_the_updated_object(api: Api, people, place) -> None:
    m = people["manager"]
    b = _book(
        api,
        m,
        property=place["lisbon"],
        unit="101",
        guest_name="Ana",
        check_in_date="2025-09-10",
        check_out_date="2025-09-15",
    )
    r = api.patch(
        f"/api/bookings/{b['id']}/",
        json={"unit": "102", "check_out_date": "2025-09-18", "guest_name": "Ana Maria", "earnings": None},
        headers=m,
    )
    assert r.status_code == 200, r.text
    moved = r.json()
    assert (moved["unit"], moved["total_nights"], moved["guest_name"]) == ("102", 8, "Ana Maria")
    assert moved["check_out_date"] == "2025-09-18T10:00:00Z" and moved["updated_at"] >= b["updated_at"]
    # To another property: the unit must be named again (or none).
    r = api.patch(f"/api/bookings/{b['id']}/", json={"property": place["house"]}, headers=m)
    assert r.status_code == 400 and "unit" in r.json()["details"]
    r = api.patch(f"/api/bookings/{b['id']}/", json={"property": place["house"], "unit": None}, headers=m)
    assert r.status_code == 200 and (r.json()["property_name"], r.json()["unit"]) == ("Beach House", None)
    # Its old nights in Lisbon are free.
    _book(
        api,
        m,
        property=place["lisbon"],
        unit="102",
        guest_name="Bo",
        check_in_date="2025-09-10",
        check_out_date="2025-09-18",
    )
    assert api.patch("/api/bookings/999/", json={"notes": "x"}, headers=m).status_code == 404
    assert api.post("/api/bookings/999/cancel/", headers=m).status_code == 404


def test_units_come_alive_with_current_bookings(api: Api, people, place) -> None:
    m = people["manager"]
    now = datetime.now(UTC)
    b = _book(
        api,
        m,
        property=place["lisbon"],
        unit="101",
        guest_name="Here Now",
        check_in_date=(now - timedelta(days=2)).isoformat(),
        check_out_date=(now + timedelta(days=2)).isoformat(),
    )
    _book(
        api,
        m,
        property=place["lisbon"],
        unit="102",
        guest_name="Later",
        check_in_date=(now + timedelta(days=5)).date().isoformat(),
        check_out_date=(now + timedelta(days=7)).date().isoformat(),
    )
    detail = api.get(f"/api/properties/{place['lisbon']}/", headers=people["staff"]).json()
    units = {u["unit_number"]: u for u in detail["units"]}
    assert units["101"]["status"] == "occupied"
    current = units["101"]["current_booking"]
    assert current["id"] == b["id"] and current["guest_name"] == "Here Now"
    assert current["check_in"] == b["check_in_date"] and current["check_out"] == b["check_out_date"]
    assert units["102"]["status"] == "vacant" and units["102"]["current_booking"] is None
    unit_id = units["101"]["id"]
    assert api.get(f"/api/properties/{place['lisbon']}/units/{unit_id}/", headers=m).json()["status"] == "occupied"
    # A manual status still wins; cancelling frees the unit.
    api.patch(f"/api/properties/{place['lisbon']}/units/{unit_id}/", json={"status": "maintenance"}, headers=m)
    assert api.get(f"/api/properties/{place['lisbon']}/units/{unit_id}/", headers=m).json()["status"] == "maintenance"
    api.patch(f"/api/properties/{place['lisbon']}/units/{unit_id}/", json={"status": "vacant"}, headers=m)
    api.post(f"/api/bookings/{b['id']}/cancel/", headers=m).raise_for_status()
    unit = api.get(f"/api/properties/{place['lisbon']}/units/{unit_id}/", headers=m).json()
    assert unit["status"] == "vacant" and unit["current_booking"] is None


def test_filters_search_ordering_and_pages(api: Api, people, place) -> None:
    m = people["manager"]
    lisbon, house = place["lisbon"], place["house"]
    made = [
        _book(
            api,
            m,
            property=lisbon,
            unit="101",
            guest_name="Ana",
            external_code="HM1",
            source="airbnb",
            check_in_date="2025-09-01",
            check_out_date="2025-09-05",
        ),
        _book(
            api,
            m,
            property=lisbon,
            unit="102",
            guest_name="Bo",
            external_code="BK2",
            source="booking_com",
            check_in_date="2025-09-03",
            check_out_date="2025-09-08",
        ),
        _book(
            api,
            m,
            property=house,
            guest_name="Cy",
            source="owner",
            status="owner_staying",
            check_in_date="2025-10-01",
            check_out_date="2025-10-02",
        ),
    ]
    ids = [b["id"] for b in made]

    def found(query: str) -> list[int]:
        r = api.get(f"/api/bookings/?{query}", headers=people["viewer"])
        assert r.status_code == 200, (query, r.text)
        return [b["id"] for b in r.json()["results"]]

    assert found("") == [ids[2], ids[1], ids[0]]  # latest check-in first
    assert found("ordering=check_in_date") == ids
    assert found("ordering=-total_nights") == [ids[1], ids[0], ids[2]]
    assert found(f"property={lisbon}") == [ids[1], ids[0]]
    assert found("unit=102") == [ids[1]]
    assert found("source=owner") == found("status=owner_staying") == [ids[2]]
    assert found("check_in_date=2025-09-03") == [ids[1]]
    assert found("check_in_date_after=2025-09-02&check_in_date_before=2025-09-30") == [ids[1]]
    assert found("check_out_date_before=2025-09-05") == [ids[0]]
    assert found("check_in_date_after=2025-09-03T13:00:00Z") == [ids[2], ids[1]]
    assert found("search=hm1") == [ids[0]] and found("search=bo") == [ids[1]]
    assert found("page_size=2&page=2") == [ids[0]]
    for query, name in (
        ("status=maybe", "status"),
        ("source=expedia", "source"),
        ("check_in_date=2025-13-01", "check_in_date"),
        ("check_out_date_after=yesterday", "check_out_date_after"),
        ("ordering=price", "ordering"),
        ("property=abc", "property"),
    ):
        r = api.get(f"/api/bookings/?{query}", headers=m)
        assert r.status_code == 400 and name in r.json()["details"], query
    assert "booked, confirmed" in api.get("/api/bookings/?status=x", headers=m).json()["details"]["status"][0]
    assert api.get("/api/bookings/?page=9", headers=m).status_code == 404


def test_a_change_of_case_keeps_the_code_taken(api: Api, people, place) -> None:
    m = people["manager"]
    stay = {"property": place["lisbon"], "check_in_date": "2025-09-10", "check_out_date": "2025-09-12"}
    b = _book(api, m, guest_name="Ana", unit="101", source="airbnb", external_code="HM1", **stay)
    r = api.patch(f"/api/bookings/{b['id']}/", json={"external_code": "hm1"}, headers=m)
    assert r.status_code == 200 and r.json()["external_code"] == "hm1", r.text
    again = _book(api, m, expect=400, guest_name="Bo", unit="102", source="airbnb", external_code="HM1", **stay)
    assert "external_code" in again["details"]
