"""Checklist templates. A task copies its template's items when it is created, so editing a template never
changes the checklists of tasks that already exist.

Which template is the default for a task type is held by a UniqueKey ("default-checklist", task type) owned by
that template: making another template the default moves the key and clears the old template's flag in the same
save, so there is never more than one default per type.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from cosmo.domain.checks import Check, changed, check_choice, check_text, field_problems
from cosmo.domain.errors import NotFound
from cosmo.domain.ids import SNAPSHOT_EVERY, aggregate_id

TASK_TYPES = (
    "cleaning",
    "maintenance",
    "laundry",
    "lawn_pool",
    "inspection",
    "preparation",
    "administration",
    "other",
)
ITEM_TYPES = ("check", "photo_required", "text_input", "number_input")
NAME_MAX = 200
ITEM_TEXT_MAX = 500
ROOM_MAX = 100
MAX_ITEMS = 200


def template_problems(fields: dict[str, Any]) -> dict[str, list[str]]:
    checks: dict[str, Check] = {
        "name": lambda v: check_text(v, NAME_MAX, required=True),
        "task_type": lambda v: check_choice(v, TASK_TYPES),
        "items": items_problems,
    }
    return field_problems(fields, checks)


def items_problems(items: list[dict[str, Any]]) -> list[str]:
    if len(items) > MAX_ITEMS:
        return [f"A checklist has at most {MAX_ITEMS} items."]
    problems = []
    for n, item in enumerate(items, start=1):
        for message in check_text(item["text"], ITEM_TEXT_MAX, required=True):
            problems.append(f"Item {n} text: {message}")
        for message in check_choice(item["item_type"], ITEM_TYPES):
            problems.append(f"Item {n} item_type: {message}")
        for message in check_text(item["room"], ROOM_MAX):
            problems.append(f"Item {n} room: {message}")
    return problems


class ChecklistTemplate(Aggregate):
    snapshot_every = SNAPSHOT_EVERY

    @staticmethod
    def create_id(template_id: int) -> UUID:
        return aggregate_id("checklist-template", template_id)

    @event("Created")
    def __init__(
        self,
        template_id: int,
        name: str,
        task_type: str,
        is_default: bool,
        items: list[dict[str, Any]],
        actor_id: int,
    ):
        self.template_id = template_id
        self.name = name
        self.task_type = task_type
        self.is_default = is_default
        # Each item: {"id", "text", "item_type", "is_required", "room"}, in checklist order.
        self.items = items
        self.is_deleted = False

    def _require_live(self) -> None:
        if self.is_deleted:
            raise NotFound(f"checklist template {self.template_id}")

    def update(self, changes: dict[str, Any], actor_id: int) -> None:
        self._require_live()
        changes = changed(self, changes)
        if changes:
            self._updated(changes, actor_id)

    @event("Updated")
    def _updated(self, changes: dict[str, Any], actor_id: int) -> None:
        for key, value in changes.items():
            setattr(self, key, value)

    def delete(self, actor_id: int) -> None:
        self._require_live()
        self._deleted(actor_id)

    @event("Deleted")
    def _deleted(self, actor_id: int) -> None:
        self.is_deleted = True
        self.is_default = False

    def copy_items(self) -> list[dict[str, Any]]:
        """The items as a new task's checklist starts them (ids are given by the task)."""
        self._require_live()
        return [dict(item) for item in self.items]
