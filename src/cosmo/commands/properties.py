"""Property and unit commands: superusers and managers."""

from __future__ import annotations

from typing import Any

from cosmo.commands.base import Commands, Outcome, Session
from cosmo.commands.checklists import template
from cosmo.commands.tasks import check_assignee
from cosmo.domain.actors import Actor, require_admin
from cosmo.domain.errors import NotFound, ValidationFailed
from cosmo.domain.identity import normalise_key
from cosmo.domain.ids import aggregate_id
from cosmo.domain.properties import Property, manual_status_for, property_problems, unit_problems, unit_status_changes

NAME_TAKEN = "A property with this name already exists."


async def _property(s: Session, property_id: int) -> Property:
    prop = await s.get(aggregate_id("property", property_id), Property)
    if prop is None or prop.is_archived:
        raise NotFound(f"property {property_id}")
    return prop


def _checked(problems: dict[str, list[str]]) -> None:
    if problems:
        raise ValidationFailed(problems)


async def _turnover(s: Session, settings: dict[str, Any]) -> dict[str, Any]:
    """Turnover settings whose template and assignee exist (400s naming `turnover.<field>` otherwise)."""
    if settings["checklist_template"] is not None:
        try:
            await template(s, settings["checklist_template"])
        except NotFound:
            raise ValidationFailed.one(
                "turnover.checklist_template", f'Invalid pk "{settings["checklist_template"]}" - object does not exist.'
            ) from None
    await check_assignee(s, settings["assign_to"], "turnover.assign_to")
    return settings


class PropertyCommands(Commands):
    async def create(self, actor: Actor, fields: dict[str, Any]) -> Outcome[int]:
        require_admin(actor.role)
        fields = {"address": "", "property_type": "other", "timezone": "UTC", **fields}
        _checked(property_problems(fields))
        property_id = await self.ids.next("property")
        name = fields["name"].strip()

        async def decide(s: Session) -> int:
            await s.claim("property-name", name, property_id, "name", NAME_TAKEN)
            s.add(
                Property(
                    property_id=property_id,
                    name=name,
                    address=fields["address"],
                    property_type=fields["property_type"],
                    timezone=fields["timezone"],
                    actor_id=actor.id,
                )
            )
            return property_id

        return await self.execute(decide, retry=True)

    async def update(self, actor: Actor, property_id: int, changes: dict[str, Any]) -> Outcome[None]:
        require_admin(actor.role)
        _checked(property_problems(changes))
        if "name" in changes:
            changes = {**changes, "name": changes["name"].strip()}

        async def decide(s: Session) -> None:
            prop = await _property(s, property_id)
            edit = dict(changes)
            if "turnover" in edit:  # a PATCH names the settings it changes
                edit["turnover"] = await _turnover(s, {**prop.turnover, **edit["turnover"]})
            if "name" in edit and normalise_key(edit["name"]) != normalise_key(prop.name):
                await s.claim("property-name", edit["name"], property_id, "name", NAME_TAKEN)
                await s.release("property-name", prop.name, property_id)
            prop.update(edit, actor.id)

        return await self.execute(decide, retry=False)

    async def archive(self, actor: Actor, property_id: int) -> Outcome[None]:
        require_admin(actor.role)

        async def decide(s: Session) -> None:
            prop = await _property(s, property_id)
            prop.archive(actor.id)
            # An archived property gives its name up, so a new property may use it.
            await s.release("property-name", prop.name, property_id)

        return await self.execute(decide, retry=True)

    async def add_unit(self, actor: Actor, property_id: int, fields: dict[str, Any]) -> Outcome[int]:
        require_admin(actor.role)
        _checked(unit_problems({"status": "vacant", **fields}))
        unit_id = await self.ids.next("unit")

        async def decide(s: Session) -> int:
            prop = await _property(s, property_id)
            prop.add_unit(unit_id, fields["unit_number"], manual_status_for(fields.get("status", "vacant")), actor.id)
            return unit_id

        return await self.execute(decide, retry=True)

    async def update_unit(self, actor: Actor, property_id: int, unit_id: int, fields: dict[str, Any]) -> Outcome[None]:
        require_admin(actor.role)
        _checked(unit_problems(fields))

        async def decide(s: Session) -> None:
            prop = await _property(s, property_id)
            prop.update_unit(unit_id, unit_status_changes(fields), actor.id)

        return await self.execute(decide, retry=False)

    async def remove_unit(self, actor: Actor, property_id: int, unit_id: int) -> Outcome[None]:
        require_admin(actor.role)

        async def decide(s: Session) -> None:
            prop = await _property(s, property_id)
            prop.remove_unit(unit_id, actor.id)

        return await self.execute(decide, retry=True)
