"""Task commands. The Task aggregate decides who may act; these load what a decision needs (the property and unit a
task points at, the assignee, the template to copy) and the session saves the outcome."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import msgspec

from cosmo.commands.base import Commands, Outcome, Session
from cosmo.commands.checklists import default_template_id, template
from cosmo.domain.actors import Actor, require_admin
from cosmo.domain.errors import NotFound, ValidationFailed
from cosmo.domain.identity import User
from cosmo.domain.ids import aggregate_id
from cosmo.domain.properties import Property
from cosmo.domain.tasks import ASSIGNABLE_ROLES, Task, group_covers, sees_task, task_fields, task_problems
from cosmo.storage.ids import IdAllocator

T = TypeVar("T")


class TaskState(msgspec.Struct):
    """A task's state after a status or notes change (its last event's time as `updated_at`)."""

    id: int
    status: str
    notes: str
    updated_at: datetime


async def live_task(s: Session, task_id: int, seen_by: Actor | None = None) -> Task:
    """The task a command acts on: deleted tasks are gone for every command, and tasks `seen_by` may not see are
    gone for them (both 404, as the reads answer)."""
    task = await s.get(aggregate_id("task", task_id), Task)
    if task is None or task.is_deleted:
        raise NotFound(f"task {task_id}")
    if seen_by is not None and not sees_task(seen_by, task.assigned_to, task.task_type):
        raise NotFound(f"task {task_id}")
    return task


async def _check_place(s: Session, property_id: int | None, unit_id: int | None) -> None:
    if property_id is None:
        if unit_id is not None:
            raise ValidationFailed.one("unit", "A unit needs its property.")
        return
    prop = await s.get(aggregate_id("property", property_id), Property)
    if prop is None or prop.is_archived:
        raise ValidationFailed.one("property", f'Invalid pk "{property_id}" - object does not exist.')
    if unit_id is not None and unit_id not in prop.units:
        raise ValidationFailed.one("unit", f'Unit "{unit_id}" is not a unit of property "{property_id}".')


async def check_assignee(s: Session, user_id: int | None, field: str) -> None:
    if user_id is None:
        return
    user = await s.get(aggregate_id("user", user_id), User)
    if user is None:
        raise ValidationFailed.one(field, f'Invalid pk "{user_id}" - object does not exist.')
    if not user.is_active or user.role not in ASSIGNABLE_ROLES:
        raise ValidationFailed.one(field, "Tasks can be assigned only to active staff, managers or superusers.")


async def checklist_copy(
    s: Session, ids: IdAllocator, template_id: int | None, task_type: str, bulk: bool = False
) -> dict[str, Any] | None:
    """The checklist a new task carries: a copy of the template (or of the task type's default), its items given
    ids of their own (`bulk`: from the process's reserve, for creators of many tasks at once)."""
    if template_id is None:
        template_id = await default_template_id(s, task_type)
        if template_id is None:
            return None
    try:
        copied = await template(s, template_id)
    except NotFound:
        raise ValidationFailed.one(
            "checklist_template", f'Invalid pk "{template_id}" - object does not exist.'
        ) from None
    items = copied.copy_items()
    item_ids = await (ids.reserved if bulk else ids.block)("checklist-item", len(items))
    for item, item_id in zip(items, item_ids, strict=True):
        item["id"] = item_id
    return {"template_id": copied.template_id, "template_name": copied.name, "items": items}


class TaskCommands(Commands):
    async def create(self, actor: Actor, fields: dict[str, Any]) -> Outcome[int]:
        require_admin(actor.role)
        fields = task_fields({"description": "", "priority": "medium", "property_id": None, "unit_id": None, **fields})
        task_id = await self.ids.next("task")

        async def decide(s: Session) -> int:
            await _check_place(s, fields["property_id"], fields["unit_id"])
            await check_assignee(s, fields.get("assigned_to"), "assigned_to")
            s.add(
                Task(
                    task_id=task_id,
                    title=fields["title"],
                    description=fields["description"],
                    task_type=fields["task_type"],
                    priority=fields["priority"],
                    property_id=fields["property_id"],
                    unit_id=fields["unit_id"],
                    assigned_to=fields.get("assigned_to"),
                    due_date=fields.get("due_date"),
                    checklist=await checklist_copy(s, self.ids, fields.get("checklist_template"), fields["task_type"]),
                    actor_id=actor.id,
                )
            )
            return task_id

        return await self.execute(decide, retry=True)

    async def update(self, actor: Actor, task_id: int, changes: dict[str, Any]) -> Outcome[None]:
        """A manager's edit: fields, and optionally `status`, `notes` and `assigned_to` in the same request."""
        require_admin(actor.role)
        changes = task_fields(changes)
        status = changes.pop("status", None)
        notes = changes.pop("notes", None)
        assign = "assigned_to" in changes
        assignee = changes.pop("assigned_to", None)

        async def decide(s: Session) -> None:
            task = await live_task(s, task_id, actor)
            if assign:
                await check_assignee(s, assignee, "assigned_to")
            if "property_id" in changes or "unit_id" in changes:
                await _check_place(
                    s, changes.get("property_id", task.property_id), changes.get("unit_id", task.unit_id)
                )
            task.update(dict(changes), actor.id, actor.role)
            if assign:
                task.assign(assignee, actor.id, actor.role)
            if notes is not None:
                task.set_notes(notes, actor.id, actor.role)
            if status is not None:
                task.change_status(status, actor.id, actor.role)

        return await self.execute(decide, retry=False)

    async def _change(self, actor: Actor, task_id: int, change: Callable[[Task], T], *, retry: bool) -> Outcome[T]:
        """Change one task the actor can see (the visibility check is here, so the endpoint needs no read first)."""

        async def decide(s: Session) -> T:
            return change(await live_task(s, task_id, actor))

        queue_on = aggregate_id("task", task_id) if retry else None
        return await self.execute(decide, retry=retry, queue_on=queue_on)

    async def work(self, actor: Actor, task_id: int, status: str | None, notes: str | None) -> Outcome[TaskState]:
        """The staff endpoint's PATCH: status and notes, by the assignee or a manager."""
        if status is None and notes is None:
            raise ValidationFailed.one("status", "Send status, notes or both.")
        problems = task_problems({k: v for k, v in (("status", status), ("notes", notes)) if v is not None})
        if problems:
            raise ValidationFailed(problems)

        def change(task: Task) -> TaskState:
            if notes is not None:
                task.set_notes(notes, actor.id, actor.role)
            if status is not None:
                task.change_status(status, actor.id, actor.role)
            return TaskState(id=task.task_id, status=task.status, notes=task.notes, updated_at=task.modified_on)

        return await self._change(actor, task_id, change, retry=False)

    async def delete(self, actor: Actor, task_id: int) -> Outcome[None]:
        return await self._change(actor, task_id, lambda task: task.delete(actor.id, actor.role), retry=True)

    async def assign(self, actor: Actor, task_id: int, user_id: int | None) -> Outcome[None]:
        require_admin(actor.role)

        async def decide(s: Session) -> None:
            task = await live_task(s, task_id, actor)
            await check_assignee(s, user_id, "user")
            task.assign(user_id, actor.id, actor.role)

        return await self.execute(decide, retry=False)

    async def claim(self, actor: Actor, task_id: int) -> Outcome[None]:
        """Two staff claiming at once: the loser's save clashes, its re-run finds the task taken (409). A task of
        the claimer's group that someone else took is still theirs to be told about: 409, not 404."""

        async def decide(s: Session) -> None:
            task = await live_task(s, task_id)
            of_my_group = actor.role == "staff" and group_covers(actor.task_group, task.task_type)
            if not (of_my_group or sees_task(actor, task.assigned_to, task.task_type)):
                raise NotFound(f"task {task_id}")
            task.claim(actor.id, actor.role, actor.task_group)

        return await self.execute(decide, retry=True)

    async def update_item(self, actor: Actor, task_id: int, item_id: int, changes: dict[str, Any]) -> Outcome[None]:
        def change(task: Task) -> None:
            task.update_item(item_id, dict(changes), actor.id, actor.role)

        return await self._change(actor, task_id, change, retry=True)
