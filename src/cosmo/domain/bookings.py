"""Bookings, and the calendar that keeps a property's live bookings from overlapping.

A booking is its own aggregate. Whether it may take its dates is decided by its unit's `Calendar`: the one
aggregate that sees every live booking of the unit, so two writers booking the same nights clash on its version
and one of them is refused. Nights are counted in the property's own time zone: a checkout and a check-in on the
same local day do not overlap, whatever the hours.
"""

from __future__ import annotations

import bisect
import re
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from eventsourcing.domain import Aggregate, event

from cosmo.domain.checks import Check, changed, check_choice, check_int, check_text, field_problems, utc
from cosmo.domain.errors import Conflict, NotFound, ValidationFailed
from cosmo.domain.ids import SNAPSHOT_EVERY, aggregate_id

SOURCES = ("airbnb", "vrbo", "booking_com", "direct", "owner", "other")
STATUSES = ("booked", "confirmed", "currently_hosting", "owner_staying", "cancelled", "completed")
# Statuses in which a guest (or owner) is, or will be, in the unit: what makes it occupied.
OCCUPYING = ("booked", "confirmed", "currently_hosting", "owner_staying")
GUEST_NAME_MAX = 200
EXTERNAL_CODE_MAX = 100
CONTACT_MAX = 200
NOTES_MAX = 5000
PEOPLE_MAX = 99
EARNINGS_MAX = Decimal("999999999999.99")
# Without a time, guests arrive at 15:00 and leave at 11:00, the property's local time.
CHECK_IN_TIME = time(15, 0)
CHECK_OUT_TIME = time(11, 0)
_CURRENCY = re.compile(r"[A-Z]{3}")
_AMOUNT = re.compile(r"[0-9]{1,12}(\.[0-9]{1,2})?")


def check_currency(value: str) -> list[str]:
    return [] if _CURRENCY.fullmatch(value) else ["Enter a three-letter ISO 4217 currency code, e.g. USD."]


def check_people(value: int) -> list[str]:
    return check_int(value, 0, PEOPLE_MAX)


BOOKING_CHECKS: dict[str, Check] = {
    "source": lambda v: check_choice(v, SOURCES),
    "status": lambda v: check_choice(v, STATUSES),
    "external_code": lambda v: check_text(v, EXTERNAL_CODE_MAX),
    "guest_name": lambda v: check_text(v, GUEST_NAME_MAX, required=True),
    "guest_contact": lambda v: check_text(v, CONTACT_MAX),
    "notes": lambda v: check_text(v, NOTES_MAX, multiline=True),
    "adults": check_people,
    "children": check_people,
    "infants": check_people,
    "earnings_currency": check_currency,
}


def amount(value: str | None) -> Decimal | None:
    """A money amount as text (`"1020.5"`), to two decimals; raises ValidationFailed on `earnings`."""
    if value is None:
        return None
    text = value.strip()
    if not _AMOUNT.fullmatch(text):
        raise ValidationFailed.one(
            "earnings", "Enter an amount such as 1020.50: digits, at most two decimals, not negative."
        )
    try:
        found = Decimal(text).quantize(Decimal("0.01"))
    except InvalidOperation:  # pragma: no cover - the pattern admits only what Decimal reads
        raise ValidationFailed.one("earnings", "Enter an amount such as 1020.50.") from None
    if found > EARNINGS_MAX:
        raise ValidationFailed.one("earnings", f"Ensure this value is at most {EARNINGS_MAX}.")
    return found


def stay_moment(field: str, value: str | datetime, timezone: str, default_time: time) -> datetime:
    """A check-in or check-out as an instant in UTC. A date alone takes `default_time`, and a time without an
    offset is the property's local time."""
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                moment = datetime.combine(date.fromisoformat(text), default_time)
            else:
                moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValidationFailed.one(
                field, "Enter a date (2025-09-10) or an ISO 8601 date and time (2025-09-10T15:00:00Z)."
            ) from None
    else:
        moment = value
    if moment.tzinfo is None:
        try:
            moment = moment.replace(tzinfo=ZoneInfo(timezone))
        except (OverflowError, ValueError):
            raise ValidationFailed.one(field, "Enter a date between 1900-01-01 and 9999-12-31.") from None
    found = utc(moment)
    # A stay ends on a later local day than it starts: keep a margin below the last representable day.
    if found is None or found.year > 9998:
        raise ValidationFailed.one(field, "Enter a date between 1900-01-01 and 9998-12-31.")
    return found


def local_day(moment: datetime, timezone: str) -> str:
    """The property's local calendar day of an instant, as ISO text (what the calendar compares)."""
    return moment.astimezone(ZoneInfo(timezone)).date().isoformat()


def nights(check_in: datetime, check_out: datetime, timezone: str) -> int:
    return (date.fromisoformat(local_day(check_out, timezone)) - date.fromisoformat(local_day(check_in, timezone))).days


def booking_problems(fields: dict[str, Any]) -> dict[str, list[str]]:
    return field_problems(fields, BOOKING_CHECKS)


def check_stay(check_in: datetime, check_out: datetime) -> None:
    if check_out <= check_in:
        raise ValidationFailed.one("check_out_date", "Check-out must be after check-in.")


class Booking(Aggregate):
    snapshot_every = SNAPSHOT_EVERY
    # Every attribute is a plain value that events replace (see `storage.event_store.copy_of`).
    shallow_copies = True

    @staticmethod
    def create_id(booking_id: int) -> UUID:
        return aggregate_id("booking", booking_id)

    @event("Created")
    def __init__(self, booking_id: int, fields: dict[str, Any], turnover_task_id: int, actor_id: int):
        """`fields`: property_id, unit_id, source, external_code, guest_name, guest_contact, check_in, check_out,
        status, adults, children, infants, earnings, earnings_currency, booked_at, notes."""
        self.booking_id = booking_id
        # The id of the cleaning this booking's checkout calls for, fixed now: however often the turnover policy
        # runs, it can create that task only once.
        self.turnover_task_id = turnover_task_id
        self.created_by = actor_id
        for key, value in fields.items():
            setattr(self, key, value)

    @property
    def is_live(self) -> bool:
        return self.status != "cancelled"

    def update(self, changes: dict[str, Any], actor_id: int) -> dict[str, Any]:
        """Apply the changes that differ; returns them."""
        changes = changed(self, changes)
        if changes:
            self._updated(changes, actor_id)
        return changes

    @event("Updated")
    def _updated(self, changes: dict[str, Any], actor_id: int) -> None:
        for key, value in changes.items():
            setattr(self, key, value)

    def cancel(self, actor_id: int) -> bool:
        """Cancel; False when it already was."""
        if self.status == "cancelled":
            return False
        self._cancelled(self.status, actor_id)
        return True

    @event("Cancelled")
    def _cancelled(self, previous: str, actor_id: int) -> None:
        self.status = "cancelled"


class Calendar(Aggregate):
    """One unit's live bookings as local days, booking id -> [first day, last day] (the property's bookings without
    a unit share a calendar of their own). One per unit, not per property: a command loads and copies the calendar
    it checks, and a unit's is a few hundred stays where a property's would be many thousands.

    Events replace `stays` and the lane rather than change them in place: a copy for the next command is then a
    copy of the attributes alone (`shallow_copies`), where a deep copy of a long calendar cost more than the command's
    decision."""

    snapshot_every = SNAPSHOT_EVERY
    shallow_copies = True

    @staticmethod
    def create_id(property_id: int, unit_id: int | None) -> UUID:
        if unit_id is None:
            return aggregate_id("booking-calendar-property", property_id)
        return aggregate_id("booking-calendar-unit", unit_id)

    # Version 1 (before c272ee1) was one calendar per property, its stays keyed [unit, first, last]. Those
    # calendars' ids are not the per-unit ones, so no command loads them again; the upcasters keep them decodable.
    class Opened(Aggregate.Created):
        class_version = 2
        property_id: int
        unit_id: int | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["unit_id"] = None  # the property's calendar: its stays of every unit in one

    class Held(Aggregate.Event):
        class_version = 2
        booking_id: int
        first: str
        last: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state.pop("unit_id", None)  # a per-unit calendar names no unit per stay

    @event(Opened)
    def __init__(self, property_id: int, unit_id: int | None):
        self.property_id = property_id
        self.unit_id = unit_id
        self.stays: dict[int, list[str]] = {}

    def _lane(self) -> list[tuple[str, str, int]]:
        """The stays sorted by first day: (first, last, booking id). Derived from `stays`, built on first use and
        kept up to date by the events, so a long calendar answers by bisection. (Copies of the aggregate carry it
        along: rebuilding it on every load would cost more than copying it.)"""
        lane = self.__dict__.get("_sorted")
        if lane is None:
            lane = sorted((first, last, booking_id) for booking_id, (first, last) in self.stays.items())
            self.__dict__["_sorted"] = lane
        return lane

    def clash(self, booking_id: int, first: str, last: str) -> int | None:
        """Another booking whose nights overlap (a day one leaves and another arrives is no overlap)."""
        lane = self._lane()
        # Stays never overlap, so sorted by first day they are sorted by last day too: walk back from the last
        # stay that starts before `last` while stays still end after `first`.
        for i in range(bisect.bisect_left(lane, (last,)) - 1, -1, -1):
            other_first, other_last, other_id = lane[i]
            if other_id == booking_id:
                continue
            if other_last <= first:
                break
            if other_first < last:
                return other_id
        return None

    def arriving_on(self, day: str, booking_id: int) -> int | None:
        """Another booking whose check-in is on `day`."""
        lane = self._lane()
        i = bisect.bisect_left(lane, (day,))
        while i < len(lane) and lane[i][0] == day:
            if lane[i][2] != booking_id:
                return lane[i][2]
            i += 1
        return None

    def leaving_on(self, day: str, booking_id: int) -> int | None:
        """Another booking whose check-out is on `day`."""
        lane = self._lane()
        for i in range(bisect.bisect_left(lane, (day,)) - 1, -1, -1):
            _, last, other_id = lane[i]
            if last < day:
                break
            if last == day and other_id != booking_id:
                return other_id
        return None

    def hold(self, booking_id: int, first: str, last: str) -> None:
        """Give the booking these days, or refuse (409) naming the booking that has them."""
        if self.stays.get(booking_id) == [first, last]:
            return
        other = self.clash(booking_id, first, last)
        if other is not None:
            raise OverlapConflict(other, f"booking {other}")
        self._held(booking_id, first, last)

    @event(Held)
    def _held(self, booking_id: int, first: str, last: str) -> None:
        self._unlane(booking_id)
        self.stays = {**self.stays, booking_id: [first, last]}
        lane = self.__dict__.get("_sorted")
        if lane is not None:
            lane = list(lane)
            bisect.insort(lane, (first, last, booking_id))
            self.__dict__["_sorted"] = lane

    def release(self, booking_id: int) -> None:
        if booking_id in self.stays:
            self._released(booking_id)

    @event("Released")
    def _released(self, booking_id: int) -> None:
        self._unlane(booking_id)
        self.stays = {k: v for k, v in self.stays.items() if k != booking_id}

    def _unlane(self, booking_id: int) -> None:
        lane = self.__dict__.get("_sorted")
        if lane is not None and booking_id in self.stays:
            first, last = self.stays[booking_id]
            self.__dict__["_sorted"] = [stay for stay in lane if stay != (first, last, booking_id)]


class OverlapConflict(Conflict):
    """409: the nights are another live booking's."""

    def __init__(self, booking_id: int, described: str):
        super().__init__(f"These dates overlap {described}.")
        self.extra = {"conflicting_booking": booking_id}


def require_live(booking: Booking | None, booking_id: int) -> Booking:
    if booking is None:
        raise NotFound(f"booking {booking_id}")
    return booking
