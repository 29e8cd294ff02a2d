"""Property and unit commands (superusers and managers; the API checks the role)."""

from __future__ import annotations

from typing import Any

from cosmo.commands.base import CommandHandler
from cosmo.domain.errors import NotFound, ValidationFailed
from cosmo.domain.identity import normalise_key
from cosmo.domain.ids import aggregate_id
from cosmo.domain.properties import Property, manual_status_for, property_problems, unit_problems, unit_status_changes

NAME_TAKEN = "A property with this name already exists."


class PropertyCommands(CommandHandler):
    def _property(self, property_id: int) -> Property:
        prop = self._find(aggregate_id("property", property_id), Property)
        if prop is None or prop.is_archived:
            raise NotFound(f"property {property_id}")
        return prop

    def create(self, actor_id: int, fields: dict[str, Any]) -> tuple[int, int]:
        fields = {"address": "", "property_type": "other", "timezone": "UTC", **fields}
        problems = property_problems(fields)
        if problems:
            raise ValidationFailed(problems)
        property_id = self.ids.next("property")
        name = fields["name"].strip()

        def decide() -> tuple[int, int]:
            key = self._claim("property-name", name, property_id, "name", NAME_TAKEN)
            prop = Property(
                property_id=property_id,
                name=name,
                address=fields["address"],
                property_type=fields["property_type"],
                timezone=fields["timezone"],
                actor_id=actor_id,
            )
            return property_id, self._save(prop, key)

        return self._retrying(decide)

    def update(self, actor_id: int, property_id: int, changes: dict[str, Any]) -> int:
        problems = property_problems(changes)
        if problems:
            raise ValidationFailed(problems)
        if "name" in changes:
            changes["name"] = changes["name"].strip()

        def decide() -> int:
            prop = self._property(property_id)
            keys = []
            if "name" in changes and normalise_key(changes["name"]) != normalise_key(prop.name):
                keys.append(self._claim("property-name", changes["name"], property_id, "name", NAME_TAKEN))
                keys.append(self._release("property-name", prop.name, property_id))
            prop.update(dict(changes), actor_id)
            return self._save(prop, *keys)

        return self._once(decide)

    def archive(self, actor_id: int, property_id: int) -> int:
        def decide() -> int:
            prop = self._property(property_id)
            prop.archive(actor_id)
            # An archived property gives its name up, so a new property may use it.
            return self._save(prop, self._release("property-name", prop.name, property_id))

        return self._retrying(decide)

    def add_unit(self, actor_id: int, property_id: int, fields: dict[str, Any]) -> tuple[int, int]:
        problems = unit_problems({"status": "vacant", **fields})
        if problems:
            raise ValidationFailed(problems)
        unit_id = self.ids.next("unit")

        def decide() -> tuple[int, int]:
            prop = self._property(property_id)
            prop.add_unit(unit_id, fields["unit_number"], manual_status_for(fields.get("status", "vacant")), actor_id)
            return unit_id, self._save(prop)

        return self._retrying(decide)

    def update_unit(self, actor_id: int, property_id: int, unit_id: int, fields: dict[str, Any]) -> int:
        problems = unit_problems(fields)
        if problems:
            raise ValidationFailed(problems)

        def decide() -> int:
            prop = self._property(property_id)
            prop.update_unit(unit_id, unit_status_changes(fields), actor_id)
            return self._save(prop)

        return self._once(decide)

    def remove_unit(self, actor_id: int, property_id: int, unit_id: int) -> int:
        def decide() -> int:
            prop = self._property(property_id)
            prop.remove_unit(unit_id, actor_id)
            return self._save(prop)

        return self._retrying(decide)
