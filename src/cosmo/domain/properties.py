"""Properties and their units.

Units live inside their property's aggregate: a unit number is unique within the property, and the aggregate is
the one place that can see every sibling when deciding. A property's name is unique among live properties through
a UniqueKey ("property-name") that archiving releases.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from cosmo.domain.checklists import TASK_TYPES
from cosmo.domain.checks import Check, changed, check_choice, check_int, check_text, check_timezone, field_problems
from cosmo.domain.errors import NotFound, ValidationFailed
from cosmo.domain.ids import SNAPSHOT_EVERY, aggregate_id

PROPERTY_TYPES = ("apartment", "house", "condo", "villa", "cabin", "other")
# What a unit's status may be. `occupied` and `vacant` are derived from bookings at read time; the manual statuses
# override them until cleared.
UNIT_STATUSES = ("vacant", "occupied", "maintenance", "inactive")
MANUAL_UNIT_STATUSES = ("maintenance", "inactive")
# What PATCH may set: a manual status, or `vacant` to clear it (the unit is then occupied or vacant by bookings).
SETTABLE_UNIT_STATUSES = ("vacant", "maintenance", "inactive")
# What a booking's checkout calls for (see commands/turnover.py): `offset` is the task's due time in minutes after
# the check-out (negative: before it).
TURNOVER_DEFAULTS: dict[str, Any] = {
    "enabled": True,
    "task_type": "cleaning",
    "checklist_template": None,
    "assign_to": None,
    "offset": 240,
}
TURNOVER_OFFSET_MAX = 7 * 24 * 60
NAME_MAX = 200
ADDRESS_MAX = 500
UNIT_NUMBER_MAX = 50


PROPERTY_CHECKS: dict[str, Check] = {
    "name": lambda v: check_text(v, NAME_MAX, required=True),
    "address": lambda v: check_text(v, ADDRESS_MAX, multiline=True),
    "property_type": lambda v: check_choice(v, PROPERTY_TYPES),
    "timezone": check_timezone,
}
UNIT_CHECKS: dict[str, Check] = {
    "unit_number": lambda v: check_text(v, UNIT_NUMBER_MAX, required=True),
    "status": lambda v: check_choice(v, SETTABLE_UNIT_STATUSES),
}


def property_problems(fields: dict[str, Any]) -> dict[str, list[str]]:
    """Problems with the given property fields (a create's or a PATCH's)."""
    problems = field_problems(fields, PROPERTY_CHECKS)
    turnover = fields.get("turnover") or {}
    if "task_type" in turnover:
        found = check_choice(turnover["task_type"], TASK_TYPES)
        if found:
            problems["turnover.task_type"] = found
    if "offset" in turnover:
        found = check_int(turnover["offset"], -TURNOVER_OFFSET_MAX, TURNOVER_OFFSET_MAX)
        if found:
            problems["turnover.offset"] = found
    return problems


def unit_problems(fields: dict[str, Any]) -> dict[str, list[str]]:
    return field_problems(fields, UNIT_CHECKS)


def unit_status(manual_status: str | None, occupied: bool) -> str:
    if manual_status:
        return manual_status
    return "occupied" if occupied else "vacant"


def _unit_key(unit_number: str) -> str:
    return unit_number.strip().casefold()


class Property(Aggregate):
    snapshot_every = SNAPSHOT_EVERY

    @staticmethod
    def create_id(property_id: int) -> UUID:
        return aggregate_id("property", property_id)

    @event("Created")
    def __init__(
        self,
        property_id: int,
        name: str,
        address: str,
        property_type: str,
        timezone: str,
        actor_id: int,
    ):
        self.property_id = property_id
        self.name = name
        self.address = address
        self.property_type = property_type
        self.timezone = timezone
        self.is_archived = False
        self.turnover: dict[str, Any] = dict(TURNOVER_DEFAULTS)
        # unit id -> {"unit_number", "manual_status"}; removed units are dropped (their history stays in the log)
        self.units: dict[int, dict[str, Any]] = {}

    def _require_live(self) -> None:
        if self.is_archived:
            raise NotFound(f"property {self.property_id}")

    def update(self, changes: dict[str, Any], actor_id: int) -> None:
        self._require_live()
        changes = changed(self, changes)
        if changes:
            self._updated(changes, actor_id)

    @event("Updated")
    def _updated(self, changes: dict[str, Any], actor_id: int) -> None:
        for key, value in changes.items():
            setattr(self, key, value)

    def archive(self, actor_id: int) -> None:
        self._require_live()
        self._archived(actor_id)

    @event("Archived")
    def _archived(self, actor_id: int) -> None:
        self.is_archived = True

    # -- units -----------------------------------------------------------------------------------------------------

    def _check_number_free(self, unit_number: str, unit_id: int | None = None) -> None:
        key = _unit_key(unit_number)
        for other_id, unit in self.units.items():
            if other_id != unit_id and _unit_key(unit["unit_number"]) == key:
                raise ValidationFailed.one("unit_number", "A unit with this number already exists in this property.")

    def unit(self, unit_id: int) -> dict[str, Any]:
        self._require_live()
        unit = self.units.get(unit_id)
        if unit is None:
            raise NotFound(f"unit {unit_id}")
        return unit

    def unit_by_number(self, unit_number: str) -> int | None:
        """The id of the live unit with this number (compared as the uniqueness rule compares them)."""
        key = _unit_key(unit_number)
        return next((uid for uid, unit in self.units.items() if _unit_key(unit["unit_number"]) == key), None)

    def add_unit(self, unit_id: int, unit_number: str, manual_status: str | None, actor_id: int) -> None:
        self._require_live()
        self._check_number_free(unit_number)
        self._unit_added(unit_id, unit_number.strip(), manual_status, actor_id)

    @event("UnitAdded")
    def _unit_added(self, unit_id: int, unit_number: str, manual_status: str | None, actor_id: int) -> None:
        self.units[unit_id] = {"unit_number": unit_number, "manual_status": manual_status}

    def update_unit(self, unit_id: int, changes: dict[str, Any], actor_id: int) -> None:
        unit = self.unit(unit_id)
        if "unit_number" in changes:
            changes["unit_number"] = changes["unit_number"].strip()
            self._check_number_free(changes["unit_number"], unit_id)
        changes = {k: v for k, v in changes.items() if unit[k] != v}
        if changes:
            self._unit_updated(unit_id, changes, actor_id)

    @event("UnitUpdated")
    def _unit_updated(self, unit_id: int, changes: dict[str, Any], actor_id: int) -> None:
        self.units[unit_id].update(changes)

    def remove_unit(self, unit_id: int, actor_id: int) -> None:
        self.unit(unit_id)
        self._unit_removed(unit_id, actor_id)

    @event("UnitRemoved")
    def _unit_removed(self, unit_id: int, actor_id: int) -> None:
        del self.units[unit_id]


def manual_status_for(status: str) -> str | None:
    """A settable status as stored: `vacant` clears the manual status."""
    return status if status in MANUAL_UNIT_STATUSES else None


def unit_status_changes(fields: dict[str, Any]) -> dict[str, Any]:
    """A unit PATCH's fields as aggregate changes."""
    changes = {k: v for k, v in fields.items() if k == "unit_number"}
    if "status" in fields:
        changes["manual_status"] = manual_status_for(fields["status"])
    return changes
