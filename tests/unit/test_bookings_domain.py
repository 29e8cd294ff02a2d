"""The booking calendar: a unit's live stays never share a night; same-day turnovers are found both ways."""

from __future__ import annotations

import pytest

from cosmo.domain.bookings import Calendar, OverlapConflict
from cosmo.storage.event_store import copy_of


def _calendar(*stays: tuple[int, str, str]) -> Calendar:
    calendar = Calendar(property_id=1, unit_id=7)
    for booking_id, first, last in stays:
        calendar.hold(booking_id, first, last)
    return calendar


def test_a_checkout_day_is_the_next_check_in_day() -> None:
    calendar = _calendar((1, "2025-09-10", "2025-09-15"), (2, "2025-09-15", "2025-09-18"))
    assert calendar.arriving_on("2025-09-15", 1) == 2
    assert calendar.leaving_on("2025-09-15", 2) == 1
    assert calendar.arriving_on("2025-09-18", 2) is None
    assert calendar.leaving_on("2025-09-10", 1) is None


@pytest.mark.parametrize(
    ("first", "last", "clashes_with"),
    [
        ("2025-09-13", "2025-09-15", 1),  # the first stay's last two nights
        ("2025-09-01", "2025-09-30", 2),  # around both: the latest one found first
        ("2025-09-16", "2025-09-17", 2),  # inside the second
        ("2025-09-18", "2025-09-20", None),  # arrives as the second leaves
        ("2025-09-01", "2025-09-10", None),  # leaves as the first arrives
        ("2025-09-12", "2025-09-12", 1),  # a stay of no night, inside another's
    ],
)
def test_clashes(first: str, last: str, clashes_with: int | None) -> None:
    calendar = _calendar((1, "2025-09-10", "2025-09-15"), (2, "2025-09-15", "2025-09-18"))
    assert calendar.clash(99, first, last) == clashes_with
    if clashes_with is None:
        calendar.hold(99, first, last)
        assert calendar.stays[99] == [first, last]
    else:
        with pytest.raises(OverlapConflict) as refused:
            calendar.hold(99, first, last)
        assert refused.value.extra == {"conflicting_booking": clashes_with}


def test_a_booking_moves_and_leaves_its_nights_free() -> None:
    calendar = _calendar((1, "2025-09-10", "2025-09-15"), (2, "2025-09-20", "2025-09-22"))
    calendar.hold(1, "2025-09-11", "2025-09-16")  # its own old nights are no clash
    assert calendar.clash(3, "2025-09-10", "2025-09-11") is None
    assert calendar.clash(3, "2025-09-15", "2025-09-17") == 1
    calendar.release(1)
    assert calendar.clash(3, "2025-09-10", "2025-09-20") is None
    calendar.hold(3, "2025-09-10", "2025-09-20")
    # Replayed from its events, the calendar answers the same.
    copy = None
    for e in calendar.collect_events():
        copy = e.mutate(copy)
    assert copy.stays == calendar.stays and copy.clash(4, "2025-09-19", "2025-09-21") == 2


def test_calendar_events_of_version_1_are_upcast() -> None:
    """Before c272ee1 a calendar was the property's and each stay named its unit: such stored events still decode
    (tests/fixtures/logs/06-* and 07-* hold a whole store of them)."""
    from uuid import uuid4

    from eventsourcing.application import Application
    from eventsourcing.persistence import StoredEvent

    mapper = Application().mapper
    oid = uuid4()
    opened = b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-12-03T08:00:00+00:00"},'
    opened += b'"originator_topic":"cosmo.domain.bookings:Calendar","property_id":7}'
    held = b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-12-03T08:00:01+00:00"},'
    held += b'"booking_id":3,"unit_id":12,"first":"2026-05-01","last":"2026-05-04"}'
    calendar = None
    for version, (topic, state) in enumerate(
        (("cosmo.domain.bookings:Calendar.Opened", opened), ("cosmo.domain.bookings:Calendar.Held", held)), start=1
    ):
        event = mapper.to_domain_event(StoredEvent(oid, version, topic, state))
        calendar = event.mutate(calendar)
    assert isinstance(calendar, Calendar)
    assert (calendar.property_id, calendar.unit_id, calendar.stays) == (7, None, {3: ["2026-05-01", "2026-05-04"]})
    assert calendar.clash(4, "2026-05-02", "2026-05-03") == 3


def test_a_shallow_copy_is_a_copy_of_the_calendar() -> None:
    """The event store hands out copies of cached calendars that share their attributes' values: a decision on the
    copy (hold, move, release) must leave the kept one as it was."""
    kept = _calendar((1, "2025-09-10", "2025-09-15"), (2, "2025-09-15", "2025-09-18"))
    kept.collect_events()
    assert kept.clash(9, "2025-09-01", "2025-09-02") is None  # the lane is built and kept
    copy = copy_of(kept)
    copy.hold(3, "2025-09-20", "2025-09-22")
    copy.hold(1, "2025-09-05", "2025-09-08")
    copy.release(2)
    assert kept.stays == {1: ["2025-09-10", "2025-09-15"], 2: ["2025-09-15", "2025-09-18"]}
    assert kept.clash(9, "2025-09-16", "2025-09-17") == 2
    assert kept.clash(9, "2025-09-20", "2025-09-21") is None
    assert not kept.pending_events
    assert copy.clash(9, "2025-09-16", "2025-09-17") is None
    assert copy.clash(9, "2025-09-06", "2025-09-07") == 1
    assert len(copy.pending_events) == 3
