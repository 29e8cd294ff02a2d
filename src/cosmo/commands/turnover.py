"""The turnover policy: each live booking's checkout calls for one task (a cleaning, unless the property says
otherwise), which follows the booking as it moves and is canceled with it.

The policy follows the booking events in the log from a tracked position, as a projection does, but it answers them
with commands instead of table rows. Each answer reconciles the booking's task with the booking as it is now, so
answering twice, in two processes at once, or again after a crash between a decision and the record of the
position, changes nothing more: the task's id is fixed by the booking (`Booking.turnover_task_id`), so it is created
once, and the task remembers the check-out it last followed, so a moved check-out moves its due date once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from eventsourcing.application import Application

from cosmo.commands.base import Commands, LostRaces, Outcome, Session
from cosmo.commands.policy import Policy
from cosmo.commands.tasks import check_assignee, checklist_copy
from cosmo.domain.actors import SYSTEM
from cosmo.domain.bookings import Booking, Calendar, local_day
from cosmo.domain.checks import utc
from cosmo.domain.errors import ValidationFailed
from cosmo.domain.ids import aggregate_id
from cosmo.domain.properties import Property
from cosmo.domain.tasks import OPEN_STATUSES, TITLE_MAX, Task
from cosmo.storage.db import Database

log = logging.getLogger(__name__)
SAME_DAY = "Same-day check-in: the next guests arrive on {day}."
DESCRIPTION_START = "Turnover after the stay of "
TITLE_START = "Turnover: "


def _description(booking: Booking, timezone: str) -> str:
    code = f" ({booking.external_code})" if booking.external_code else ""
    leaves = booking.check_out.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")
    return f"{DESCRIPTION_START}{booking.guest_name}{code}: check-out {leaves} ({timezone})."


def _title(prop: Property, booking: Booking) -> str:
    unit = prop.units.get(booking.unit_id) if booking.unit_id is not None else None
    return (f"{TITLE_START}{prop.name}" + (f" {unit['unit_number']}" if unit else ""))[:TITLE_MAX]


async def _neighbour(s: Session, booking: Booking, arriving: bool) -> int | None:
    """The booking of the same unit that arrives on the day this one leaves (`arriving`), or that leaves on the day
    this one arrives."""
    calendar = await s.get(Calendar.create_id(booking.property_id, booking.unit_id), Calendar)
    stay = calendar.stays.get(booking.booking_id) if calendar else None
    if calendar is None or stay is None:
        return None
    first, last = stay
    if arriving:
        return calendar.arriving_on(last, booking.booking_id)
    return calendar.leaving_on(first, booking.booking_id)


async def _next_arrival(s: Session, booking: Booking) -> str | None:
    """The local day of a check-in on the day this booking checks out (same unit), if there is one."""
    if await _neighbour(s, booking, arriving=True) is None:
        return None
    return local_day(booking.check_out, booking.timezone)


async def _previous(s: Session, booking: Booking) -> Booking | None:
    """The booking that checks out (same unit) on the day this one checks in."""
    other_id = await _neighbour(s, booking, arriving=False)
    return None if other_id is None else await s.get(Booking.create_id(other_id), Booking)


class TurnoverCommands(Commands):
    async def reconcile(self, booking_uuids: Sequence[UUID]) -> Outcome[None]:
        """Make each booking's turnover task what the booking now calls for; and the task of the booking that
        leaves the day each one arrives, which may just have become a same-day turnover. One transaction for the
        lot: an import's thousands of bookings get their tasks in a few saves."""

        async def decide(s: Session) -> None:
            await s.prefetch(booking_uuids)
            bookings = [b for u in booking_uuids if (b := await s.get(u, Booking)) is not None]
            await s.prefetch(
                [aggregate_id("task", b.turnover_task_id) for b in bookings]
                + [Calendar.create_id(b.property_id, b.unit_id) for b in bookings]
                + [aggregate_id("property", b.property_id) for b in bookings]
            )
            for booking in bookings:
                await self._follow(s, booking)
                previous = await _previous(s, booking) if booking.is_live else None
                if previous is not None:
                    await self._follow(s, previous)

        # Checked copies: the policy acts on bookings it reads and does not save, which another process may have
        # changed since this one cached them.
        return await self.execute(decide, retry=True, checked=True)

    async def _follow(self, s: Session, booking: Booking) -> None:
        task = await s.get(aggregate_id("task", booking.turnover_task_id), Task)
        prop = await s.get(aggregate_id("property", booking.property_id), Property)
        if task is None:
            # A stay over before it was recorded (an export's past guests) needs no cleaning now.
            wanted = booking.is_live and booking.status != "completed"
            if wanted and prop is not None and not prop.is_archived and prop.turnover["enabled"]:
                s.add(await self._create(s, booking, prop))
            return
        if task.is_deleted or task.status not in OPEN_STATUSES:
            return  # a task done, canceled or deleted is history: a booking's change does not reopen it
        if not booking.is_live:
            if task.status == "pending":
                task.change_status("canceled", SYSTEM.id, SYSTEM.role)
            else:
                task.tell_booking_cancelled(SYSTEM)
            return
        changes: dict = {}
        moved = task.turnover_check_out is not None and task.turnover_check_out != booking.check_out
        if moved and task.due_date is not None:
            try:
                due = utc(task.due_date + (booking.check_out - task.turnover_check_out))
            except OverflowError:  # a due date a manager set at the edge of the calendar: it stays
                due = None
            if due is not None:
                changes["due_date"] = due
        if (task.property_id, task.unit_id) != (booking.property_id, booking.unit_id):
            changes.update(property_id=booking.property_id, unit_id=booking.unit_id)
        if prop is not None:
            # The first line and the title say what the booking says now (a manager's own lines are kept).
            first, _, rest = task.description.partition("\n")
            if first.startswith(DESCRIPTION_START) and first != _description(booking, prop.timezone):
                changes["description"] = _description(booking, prop.timezone) + (f"\n{rest}" if rest else "")
            if task.title.startswith(TITLE_START) and task.title != _title(prop, booking):
                changes["title"] = _title(prop, booking)
        arrival = await _next_arrival(s, booking)
        description = changes.get("description", task.description)
        if arrival is not None and SAME_DAY.format(day=arrival) not in description:
            changes["description"] = f"{description}\n{SAME_DAY.format(day=arrival)}"[:5000]
            changes["priority"] = "high" if task.priority in ("low", "medium") else task.priority
        task.follow_booking(booking.booking_id, booking.check_out, changes, SYSTEM)

    async def _create(self, s: Session, booking: Booking, prop: Property) -> Task:
        settings = prop.turnover
        assignee = settings["assign_to"]
        try:
            await check_assignee(s, assignee, "assign_to")
        except ValidationFailed:
            assignee = None  # the chosen cleaner has left: the task waits for the team instead
        try:
            checklist = await checklist_copy(
                s, self.ids, settings["checklist_template"], settings["task_type"], bulk=True
            )
        except ValidationFailed:
            checklist = await checklist_copy(s, self.ids, None, settings["task_type"], bulk=True)
        arrival = await _next_arrival(s, booking)
        description = _description(booking, prop.timezone)
        if arrival is not None:
            description += "\n" + SAME_DAY.format(day=arrival)
        task = Task(
            task_id=booking.turnover_task_id,
            title=_title(prop, booking),
            description=description,
            task_type=settings["task_type"],
            priority="high" if arrival is not None else "medium",
            property_id=booking.property_id,
            unit_id=booking.unit_id,
            assigned_to=assignee,
            due_date=utc(booking.check_out + timedelta(minutes=settings["offset"])) or booking.check_out,
            checklist=checklist,
            actor_id=booking.created_by,
            turnover={"booking_id": booking.booking_id, "check_out": booking.check_out},
        )
        return task


class TurnoverPolicy(Policy):
    """Reconciles the bookings of each batch of booking events. Runs in every process that runs projections; two
    at once only repeat each other's harmless work."""

    name = "turnover"
    event_classes = (Booking.Created, Booking.Updated, Booking.Cancelled)
    batch = 1000

    def __init__(self, app: Application, db: Database, commands: TurnoverCommands):
        super().__init__(app, db)
        self._commands = commands

    async def answer(self, notifications: Sequence[Any]) -> None:
        bookings = list(dict.fromkeys(n.originator_id for n in notifications))
        try:
            await self._commands.reconcile(bookings)
        except LostRaces:
            raise  # the batch is answered again
        except Exception:
            # One booking the policy cannot answer must not stop every other booking's task: answer them one by
            # one, and leave the one that fails (logged) behind.
            log.exception("turnover batch failed; answering its bookings one by one")
            for booking_uuid in bookings:
                try:
                    await self._commands.reconcile([booking_uuid])
                except LostRaces:
                    raise
                except Exception:
                    log.exception("turnover: booking %s left unanswered", booking_uuid)
