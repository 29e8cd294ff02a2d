"""Task and checklist-template commands. The aggregates decide who may act; these load what a decision needs
(the property and unit a task points at, the assignee, the template to copy) and save the outcome."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from eventsourcing.domain import Aggregate

from cosmo.commands.base import CommandHandler
from cosmo.domain.actors import Actor, require_admin
from cosmo.domain.checklists import ChecklistTemplate, template_problems
from cosmo.domain.errors import NotFound, ValidationFailed
from cosmo.domain.identity import UniqueKey, User
from cosmo.domain.ids import aggregate_id, unique_key_id
from cosmo.domain.properties import Property
from cosmo.domain.tasks import ASSIGNABLE_ROLES, Task, sees_task, task_fields, task_problems

DEFAULT_KEY = "default-checklist"
T = TypeVar("T")


class ChecklistCommands(CommandHandler):
    def _template(self, template_id: int) -> ChecklistTemplate:
        template = self._find(aggregate_id("checklist-template", template_id), ChecklistTemplate)
        if template is None or template.is_deleted:
            raise NotFound(f"checklist template {template_id}")
        return template

    def _with_ids(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        ids = self.ids.block("checklist-template-item", len(items))
        return [{**item, "id": item_id} for item, item_id in zip(items, ids, strict=True)]

    def _take_default(self, template: ChecklistTemplate) -> list[Any]:
        """Make `template` its type's default: move the key, clear the previous default's flag."""
        key = self._find(unique_key_id(DEFAULT_KEY, template.task_type), UniqueKey)
        if key is None:
            return [UniqueKey(scope=DEFAULT_KEY, value=template.task_type, owner_id=template.template_id)]
        changed: list[Any] = [key]
        if key.owner_id not in (None, template.template_id):
            previous = self._find(aggregate_id("checklist-template", key.owner_id), ChecklistTemplate)
            if previous is not None and not previous.is_deleted:
                previous.update({"is_default": False}, actor_id=template.template_id)
                changed.append(previous)
        if key.owner_id != template.template_id:
            key.reclaim(template.template_id)
        return changed

    def _give_up_default(self, template: ChecklistTemplate, task_type: str) -> UniqueKey | None:
        key = self._find(unique_key_id(DEFAULT_KEY, task_type), UniqueKey)
        if key is None or key.owner_id != template.template_id:
            return None
        key.release()
        return key

    def create(self, actor: Actor, fields: dict[str, Any]) -> tuple[int, int]:
        require_admin(actor.role)
        problems = template_problems(fields)
        if problems:
            raise ValidationFailed(problems)
        template_id = self.ids.next("checklist-template")
        items = self._with_ids(fields["items"])

        def decide() -> tuple[int, int]:
            template = ChecklistTemplate(
                template_id=template_id,
                name=fields["name"].strip(),
                task_type=fields["task_type"],
                is_default=fields["is_default"],
                items=items,
                actor_id=actor.id,
            )
            others = self._take_default(template) if template.is_default else []
            return template_id, self._save(template, *others)

        return self._retrying(decide)

    def update(self, actor: Actor, template_id: int, changes: dict[str, Any]) -> int:
        require_admin(actor.role)
        problems = template_problems(changes)
        if problems:
            raise ValidationFailed(problems)
        if "items" in changes:
            changes["items"] = self._with_ids(changes["items"])
        if "name" in changes:
            changes["name"] = changes["name"].strip()

        def decide() -> int:
            template = self._template(template_id)
            old_type, was_default = template.task_type, template.is_default
            template.update(dict(changes), actor.id)
            others: list[Any] = []
            if was_default and (not template.is_default or template.task_type != old_type):
                others.append(self._give_up_default(template, old_type))
            if template.is_default and (not was_default or template.task_type != old_type):
                others += self._take_default(template)
            return self._save(template, *others)

        return self._once(decide)

    def delete(self, actor: Actor, template_id: int) -> int:
        require_admin(actor.role)

        def decide() -> int:
            template = self._template(template_id)
            key = self._give_up_default(template, template.task_type) if template.is_default else None
            template.delete(actor.id)
            return self._save(template, key)

        return self._retrying(decide)


def live_task(aggregate: Aggregate | None, task_id: int, seen_by: Actor | None = None) -> Task:
    """The task a command acts on: deleted tasks are gone for every command, and tasks `seen_by` may not see are
    gone for them (both 404, as the reads answer)."""
    if not isinstance(aggregate, Task) or aggregate.is_deleted:
        raise NotFound(f"task {task_id}")
    if seen_by is not None and not sees_task(seen_by, aggregate.assigned_to, aggregate.task_type):
        raise NotFound(f"task {task_id}")
    return aggregate


class TaskCommands(CommandHandler):
    def _task(self, task_id: int) -> Task:
        return live_task(self._find(aggregate_id("task", task_id), Task), task_id)

    async def _edit_task(self, actor: Actor, task_id: int, change: Callable[[Task], T], retry: bool) -> tuple[T, int]:
        """Change one task the actor can see (the visibility check is here, so the endpoint needs no read first)."""
        return await self._edit(aggregate_id("task", task_id), lambda a: live_task(a, task_id, actor), change, retry)

    def _check_place(self, property_id: int | None, unit_id: int | None) -> None:
        if property_id is None:
            if unit_id is not None:
                raise ValidationFailed.one("unit", "A unit needs its property.")
            return
        prop = self._find(aggregate_id("property", property_id), Property)
        if prop is None or prop.is_archived:
            raise ValidationFailed.one("property", f'Invalid pk "{property_id}" - object does not exist.')
        if unit_id is not None and unit_id not in prop.units:
            raise ValidationFailed.one("unit", f'Unit "{unit_id}" is not a unit of property "{property_id}".')

    def _check_assignee(self, user_id: int | None, field: str) -> None:
        if user_id is None:
            return
        user = self._find(aggregate_id("user", user_id), User)
        if user is None:
            raise ValidationFailed.one(field, f'Invalid pk "{user_id}" - object does not exist.')
        if not user.is_active or user.role not in ASSIGNABLE_ROLES:
            raise ValidationFailed.one(field, "Tasks can be assigned only to active staff, managers or superusers.")

    def _checklist(self, template_id: int | None, task_type: str) -> dict[str, Any] | None:
        if template_id is None:
            key = self._find(unique_key_id(DEFAULT_KEY, task_type), UniqueKey)
            if key is None or key.owner_id is None:
                return None
            template_id = key.owner_id
        template = self._find(aggregate_id("checklist-template", template_id), ChecklistTemplate)
        if template is None or template.is_deleted:
            raise ValidationFailed.one("checklist_template", f'Invalid pk "{template_id}" - object does not exist.')
        items = template.copy_items()
        for item, item_id in zip(items, self.ids.block("checklist-item", len(items)), strict=True):
            item["id"] = item_id
        return {"template_id": template.template_id, "template_name": template.name, "items": items}

    def create(self, actor: Actor, fields: dict[str, Any]) -> tuple[int, int]:
        require_admin(actor.role)
        fields = task_fields({"description": "", "priority": "medium", "property_id": None, "unit_id": None, **fields})
        self._check_place(fields["property_id"], fields["unit_id"])
        self._check_assignee(fields.get("assigned_to"), "assigned_to")
        checklist = self._checklist(fields.get("checklist_template"), fields["task_type"])
        task_id = self.ids.next("task")
        task = Task(
            task_id=task_id,
            title=fields["title"],
            description=fields["description"],
            task_type=fields["task_type"],
            priority=fields["priority"],
            property_id=fields["property_id"],
            unit_id=fields["unit_id"],
            assigned_to=fields.get("assigned_to"),
            due_date=fields.get("due_date"),
            checklist=checklist,
            actor_id=actor.id,
        )
        return task_id, self._save(task)

    def update(self, actor: Actor, task_id: int, changes: dict[str, Any]) -> int:
        """A manager's edit: fields, and optionally `status` and `assigned_to` in the same request."""
        require_admin(actor.role)
        changes = task_fields(changes)
        status = changes.pop("status", None)
        notes = changes.pop("notes", None)
        assign = "assigned_to" in changes
        assignee = changes.pop("assigned_to", None)
        if assign:
            self._check_assignee(assignee, "assigned_to")

        def decide() -> int:
            task = self._task(task_id)
            if "property_id" in changes or "unit_id" in changes:
                self._check_place(changes.get("property_id", task.property_id), changes.get("unit_id", task.unit_id))
            task.update(dict(changes), actor.id, actor.role)
            if assign:
                task.assign(assignee, actor.id, actor.role)
            if notes is not None:
                task.set_notes(notes, actor.id, actor.role)
            if status is not None:
                task.change_status(status, actor.id, actor.role)
            return self._save(task)

        return self._once(decide)

    async def work(
        self, actor: Actor, task_id: int, status: str | None, notes: str | None
    ) -> tuple[dict[str, Any], int]:
        """The staff endpoint's PATCH: status and notes, by the assignee or a manager. Returns the task's new
        status, notes and `updated_at` (its last event's time, as the tasks view records it)."""
        problems = task_problems({k: v for k, v in (("status", status), ("notes", notes)) if v is not None})
        if problems:
            raise ValidationFailed(problems)

        def change(task: Task) -> dict[str, Any]:
            if notes is not None:
                task.set_notes(notes, actor.id, actor.role)
            if status is not None:
                task.change_status(status, actor.id, actor.role)
            return {"id": task.task_id, "status": task.status, "notes": task.notes, "updated_at": task.modified_on}

        return await self._edit_task(actor, task_id, change, retry=False)

    def delete(self, actor: Actor, task_id: int) -> int:
        def decide() -> int:
            task = self._task(task_id)
            task.delete(actor.id, actor.role)
            return self._save(task)

        return self._retrying(decide)

    def assign(self, actor: Actor, task_id: int, user_id: int | None) -> int:
        require_admin(actor.role)
        self._check_assignee(user_id, "user")

        def decide() -> int:
            task = self._task(task_id)
            task.assign(user_id, actor.id, actor.role)
            return self._save(task)

        return self._once(decide)

    def claim(self, actor: Actor, task_id: int) -> int:
        # Two staff claiming at once: the loser's save clashes, its re-run finds the task taken (409).
        def decide() -> int:
            task = self._task(task_id)
            task.claim(actor.id, actor.role, actor.task_group)
            return self._save(task)

        return self._retrying(decide)

    async def update_item(self, actor: Actor, task_id: int, item_id: int, changes: dict[str, Any]) -> tuple[None, int]:
        def change(task: Task) -> None:
            task.update_item(item_id, dict(changes), actor.id, actor.role)

        return await self._edit_task(actor, task_id, change, retry=True)
