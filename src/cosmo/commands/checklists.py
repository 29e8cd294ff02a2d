"""Checklist template commands: superusers and managers.

Which template is the default for a task type is held by a UniqueKey ("default-checklist", task type) owned by that
template: making another template the default moves the key and clears the old template's flag in the same save.
"""

from __future__ import annotations

from typing import Any

from cosmo.commands.base import Commands, Outcome, Session
from cosmo.domain.actors import Actor, require_admin
from cosmo.domain.checklists import ChecklistTemplate, template_problems
from cosmo.domain.errors import NotFound, ValidationFailed
from cosmo.domain.identity import UniqueKey
from cosmo.domain.ids import aggregate_id, unique_key_id

DEFAULT_KEY = "default-checklist"


async def template(s: Session, template_id: int) -> ChecklistTemplate:
    found = await s.get(aggregate_id("checklist-template", template_id), ChecklistTemplate)
    if found is None or found.is_deleted:
        raise NotFound(f"checklist template {template_id}")
    return found


async def default_template_id(s: Session, task_type: str) -> int | None:
    key = await s.get(unique_key_id(DEFAULT_KEY, task_type), UniqueKey)
    return key.owner_id if key is not None else None


async def _take_default(s: Session, chosen: ChecklistTemplate) -> None:
    """Make `chosen` its type's default: move the key, clear the previous default's flag."""
    key = await s.get(unique_key_id(DEFAULT_KEY, chosen.task_type), UniqueKey)
    if key is None:
        s.add(UniqueKey(scope=DEFAULT_KEY, value=chosen.task_type, owner_id=chosen.template_id))
        return
    if key.owner_id not in (None, chosen.template_id):
        previous = await s.get(aggregate_id("checklist-template", key.owner_id), ChecklistTemplate)
        if previous is not None and not previous.is_deleted:
            previous.update({"is_default": False}, actor_id=chosen.template_id)
    if key.owner_id != chosen.template_id:
        key.reclaim(chosen.template_id)


async def _give_up_default(s: Session, chosen: ChecklistTemplate, task_type: str) -> None:
    key = await s.get(unique_key_id(DEFAULT_KEY, task_type), UniqueKey)
    if key is not None and key.owner_id == chosen.template_id:
        key.release()


class ChecklistCommands(Commands):
    async def _with_ids(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        ids = await self.ids.block("checklist-template-item", len(items))
        return [{**item, "id": item_id} for item, item_id in zip(items, ids, strict=True)]

    async def create(self, actor: Actor, fields: dict[str, Any]) -> Outcome[int]:
        require_admin(actor.role)
        problems = template_problems(fields)
        if problems:
            raise ValidationFailed(problems)
        template_id = await self.ids.next("checklist-template")
        items = await self._with_ids(fields["items"])

        async def decide(s: Session) -> int:
            created = ChecklistTemplate(
                template_id=template_id,
                name=fields["name"].strip(),
                task_type=fields["task_type"],
                is_default=fields["is_default"],
                items=items,
                actor_id=actor.id,
            )
            s.add(created)
            if created.is_default:
                await _take_default(s, created)
            return template_id

        return await self.execute(decide, retry=True)

    async def update(self, actor: Actor, template_id: int, changes: dict[str, Any]) -> Outcome[None]:
        require_admin(actor.role)
        problems = template_problems(changes)
        if problems:
            raise ValidationFailed(problems)
        changes = dict(changes)
        if "items" in changes:
            changes["items"] = await self._with_ids(changes["items"])
        if "name" in changes:
            changes["name"] = changes["name"].strip()

        async def decide(s: Session) -> None:
            edited = await template(s, template_id)
            old_type, was_default = edited.task_type, edited.is_default
            edited.update(dict(changes), actor.id)
            if was_default and (not edited.is_default or edited.task_type != old_type):
                await _give_up_default(s, edited, old_type)
            if edited.is_default and (not was_default or edited.task_type != old_type):
                await _take_default(s, edited)

        return await self.execute(decide, retry=False)

    async def delete(self, actor: Actor, template_id: int) -> Outcome[None]:
        require_admin(actor.role)

        async def decide(s: Session) -> None:
            deleted = await template(s, template_id)
            if deleted.is_default:
                await _give_up_default(s, deleted, deleted.task_type)
            deleted.delete(actor.id)

        return await self.execute(decide, retry=True)
