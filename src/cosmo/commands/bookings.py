"""Booking commands: superusers and managers write. Each command loads the booking's property (its time zone and
units), keeps `(source, external_code)` unique through a unique key, and keeps live bookings from overlapping
through each unit's calendar; all of it is saved in one transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cosmo.commands.base import Commands, Outcome, Session
from cosmo.domain.actors import Actor, require_admin
from cosmo.domain.bookings import (
    CHECK_IN_TIME,
    CHECK_OUT_TIME,
    Booking,
    Calendar,
    OverlapConflict,
    amount,
    booking_problems,
    check_stay,
    local_day,
    require_live,
    stay_moment,
)
from cosmo.domain.checks import check_moment, utc
from cosmo.domain.errors import ValidationFailed
from cosmo.domain.identity import normalise_key
from cosmo.domain.ids import aggregate_id
from cosmo.domain.properties import Property

CODE_TAKEN = "A booking with this source and external code already exists."
REQUIRED = ("property_id", "guest_name", "check_in_date", "check_out_date")
# What a create may leave out.
DEFAULTS: dict[str, Any] = {
    "external_code": "",
    "source": "direct",
    "status": "confirmed",
    "guest_contact": "",
    "adults": 1,
    "children": 0,
    "infants": 0,
    "earnings": None,
    "earnings_currency": "USD",
    "booked_at": None,
    "notes": "",
    "unit": None,
}


def checked_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """The plain fields checked (dates need the property's time zone: see `_place_and_stay`)."""
    problems = booking_problems(fields)
    if "booked_at" in fields and check_moment(fields["booked_at"]):
        problems["booked_at"] = check_moment(fields["booked_at"])
    if problems:
        raise ValidationFailed(problems)
    out = dict(fields)
    if "earnings" in out:
        out["earnings"] = amount(out["earnings"])
    if out.get("booked_at") is not None:
        out["booked_at"] = utc(out["booked_at"])
    for name in ("guest_name", "external_code", "guest_contact"):
        if name in out:
            out[name] = out[name].strip()
    return out


async def live_property(s: Session, property_id: int) -> Property:
    prop = await s.get(aggregate_id("property", property_id), Property)
    if prop is None or prop.is_archived:
        raise ValidationFailed.one("property", f'Invalid pk "{property_id}" - object does not exist.')
    return prop


def stay_in(prop: Property, fields: dict[str, Any]) -> tuple[datetime, datetime, int | None]:
    """The stay `fields` ask for at `prop`: check-in and check-out as instants (a date alone takes the default
    times, a time without an offset is the property's) and the unit's id."""
    check_in = stay_moment("check_in_date", fields["check_in_date"], prop.timezone, CHECK_IN_TIME)
    check_out = stay_moment("check_out_date", fields["check_out_date"], prop.timezone, CHECK_OUT_TIME)
    return check_in, check_out, _unit_id(prop, fields["unit"])


def _unit_id(prop: Property, unit_number: str | None) -> int | None:
    if unit_number is None or not unit_number.strip():
        return None
    unit_id = prop.unit_by_number(unit_number)
    if unit_id is None:
        raise ValidationFailed.one("unit", f'Property "{prop.name}" has no unit "{unit_number.strip()}".')
    return unit_id


def code_key(source: str, code: str) -> str:
    return f"{source}:{code}"


async def _calendar(s: Session, property_id: int, unit_id: int | None) -> Calendar:
    calendar = await s.get(Calendar.create_id(property_id, unit_id), Calendar)
    if calendar is None:
        calendar = Calendar(property_id=property_id, unit_id=unit_id)
        s.add(calendar)
    return calendar


async def _hold(s: Session, booking: Booking, prop: Property) -> None:
    """Give a live booking its nights in its unit's calendar, or refuse naming the booking that has them."""
    calendar = await _calendar(s, prop.property_id, booking.unit_id)
    first, last = local_day(booking.check_in, prop.timezone), local_day(booking.check_out, prop.timezone)
    other_id = calendar.clash(booking.booking_id, first, last)
    if other_id is not None:
        other = await s.get(Booking.create_id(other_id), Booking)
        described = f"booking {other_id}"
        if other is not None:
            code = f" ({other.external_code})" if other.external_code else ""
            described = (
                f"booking {other_id}{code} of {other.guest_name}, {local_day(other.check_in, prop.timezone)}"
                f" to {local_day(other.check_out, prop.timezone)}"
            )
        raise OverlapConflict(other_id, described)
    calendar.hold(booking.booking_id, first, last)


async def _release(s: Session, booking_id: int, property_id: int, unit_id: int | None) -> None:
    calendar = await s.get(Calendar.create_id(property_id, unit_id), Calendar)
    if calendar is not None:
        calendar.release(booking_id)


async def _booking(s: Session, booking_id: int) -> Booking:
    return require_live(await s.get(Booking.create_id(booking_id), Booking), booking_id)


async def new_booking(
    s: Session, booking_id: int, turnover_task_id: int, fields: dict[str, Any], actor_id: int
) -> Booking:
    """A booking of checked `fields` (all of them), its code claimed and its nights held; not yet added."""
    missing = [name for name in (*REQUIRED, *DEFAULTS) if name not in fields]
    if missing:
        raise ValidationFailed({name: ["This field is required."] for name in missing})
    prop = await live_property(s, fields["property_id"])
    check_in, check_out, unit_id = stay_in(prop, fields)
    check_stay(check_in, check_out)
    stay = {k: v for k, v in fields.items() if k not in ("unit", "check_in_date", "check_out_date")}
    stay.update(unit_id=unit_id, check_in=check_in, check_out=check_out, timezone=prop.timezone)
    booking = Booking(booking_id=booking_id, fields=stay, turnover_task_id=turnover_task_id, actor_id=actor_id)
    if booking.is_live:
        await _hold(s, booking, prop)  # before the claim: a refused booking claims nothing
    if stay["external_code"]:
        await s.claim(
            "booking-code", code_key(stay["source"], stay["external_code"]), booking_id, "external_code", CODE_TAKEN
        )
    return booking


async def change_booking(s: Session, booking: Booking, fields: dict[str, Any], actor_id: int) -> dict[str, Any]:
    """Apply checked `fields` (any of them) to the booking: its code re-claimed, its nights held again or given
    up. Returns the changes made."""
    booking_id = booking.booking_id
    old_property, old_unit = booking.property_id, booking.unit_id
    prop = await live_property(s, fields.get("property_id", old_property))
    changes = {k: v for k, v in fields.items() if k not in ("unit", "check_in_date", "check_out_date")}
    if "unit" in fields:
        changes["unit_id"] = _unit_id(prop, fields["unit"])
    elif prop.property_id != old_property and booking.unit_id is not None:
        raise ValidationFailed.one("unit", "Name a unit of the new property, or null for none.")
    if prop.property_id != old_property:
        changes["timezone"] = prop.timezone
    for name, key, default_time in (
        ("check_in_date", "check_in", CHECK_IN_TIME),
        ("check_out_date", "check_out", CHECK_OUT_TIME),
    ):
        if name in fields:
            changes[key] = stay_moment(name, fields[name], prop.timezone, default_time)
    check_stay(changes.get("check_in", booking.check_in), changes.get("check_out", booking.check_out))
    source = changes.get("source", booking.source)
    code = changes.get("external_code", booking.external_code)
    # Compared as the key compares them: a change of case alone keeps the key (claiming, then releasing the same
    # key would leave it unowned).
    if normalise_key(code_key(source, code)) != normalise_key(code_key(booking.source, booking.external_code)):
        if code:
            await s.claim("booking-code", code_key(source, code), booking_id, "external_code", CODE_TAKEN)
        if booking.external_code:
            await s.release("booking-code", code_key(booking.source, booking.external_code), booking_id)
    made = booking.update(changes, actor_id)
    if (booking.property_id, booking.unit_id) != (old_property, old_unit):
        await _release(s, booking_id, old_property, old_unit)
    if booking.is_live:
        await _hold(s, booking, prop)
    else:
        await _release(s, booking_id, booking.property_id, booking.unit_id)
    return made


class BookingCommands(Commands):
    async def create(self, actor: Actor, fields: dict[str, Any]) -> Outcome[int]:
        """`fields`: the API's (`property` as `property_id`, `unit` as the unit's number, the dates as given)."""
        require_admin(actor.role)
        fields = checked_fields({**DEFAULTS, **fields})
        booking_id = await self.ids.next("booking")
        turnover_task_id = await self.ids.next("task")

        async def decide(s: Session) -> int:
            s.add(await new_booking(s, booking_id, turnover_task_id, fields, actor.id))
            return booking_id

        # Checked copies: the property (its time zone, its units) is read, not saved.
        return await self.execute(decide, retry=True, checked=True)

    async def update(self, actor: Actor, booking_id: int, fields: dict[str, Any]) -> Outcome[None]:
        """A PATCH: any field; a status of `cancelled` cancels, and another status reinstates a cancelled booking
        if its nights are still free."""
        require_admin(actor.role)
        fields = checked_fields(fields)

        async def decide(s: Session) -> None:
            await change_booking(s, await _booking(s, booking_id), fields, actor.id)

        return await self.execute(decide, retry=False, checked=True)

    async def cancel(self, actor: Actor, booking_id: int) -> Outcome[None]:
        require_admin(actor.role)

        async def decide(s: Session) -> None:
            booking = await _booking(s, booking_id)
            if booking.cancel(actor.id):
                await _release(s, booking_id, booking.property_id, booking.unit_id)

        return await self.execute(decide, retry=True)
