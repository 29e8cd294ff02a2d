"""Properties and units: every signed-in user reads; superusers and managers write."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from msgspec import UNSET, UnsetType

from cosmo.api.deps import Context
from cosmo.api.pages import Page
from cosmo.api.params import PageParam, PageSizeParam, SearchParam, choice, choices, ordering_param, page_request, text
from cosmo.api.wire import Id, count, given, one_of
from cosmo.api.wire import text as max_text
from cosmo.domain.checklists import TASK_TYPES
from cosmo.domain.properties import (
    ADDRESS_MAX,
    NAME_MAX,
    PROPERTY_TYPES,
    SETTABLE_UNIT_STATUSES,
    TURNOVER_OFFSET_MAX,
    UNIT_NUMBER_MAX,
)
from cosmo.projections.properties import (
    PROPERTY_ORDERING,
    PropertyDetail,
    PropertyFilters,
    PropertyOut,
    UnitList,
    UnitOut,
)


class CreatePropertyRequest(msgspec.Struct, forbid_unknown_fields=True):
    name: max_text(NAME_MAX)
    address: max_text(ADDRESS_MAX) = ""
    property_type: one_of(PROPERTY_TYPES) = "other"
    timezone: str = "UTC"  # an IANA time zone name


class TurnoverRequest(msgspec.Struct, forbid_unknown_fields=True):
    """The turnover settings to change (the others are kept)."""

    enabled: bool | UnsetType = UNSET
    task_type: one_of(TASK_TYPES) | UnsetType = UNSET
    checklist_template: Id | UnsetType | None = UNSET
    assign_to: Id | UnsetType | None = UNSET
    offset: count(-TURNOVER_OFFSET_MAX, TURNOVER_OFFSET_MAX) | UnsetType = UNSET  # minutes after the check-out


class UpdatePropertyRequest(msgspec.Struct, forbid_unknown_fields=True):
    name: max_text(NAME_MAX) | UnsetType = UNSET
    address: max_text(ADDRESS_MAX) | UnsetType = UNSET
    property_type: one_of(PROPERTY_TYPES) | UnsetType = UNSET
    timezone: str | UnsetType = UNSET
    turnover: TurnoverRequest | UnsetType = UNSET


class CreateUnitRequest(msgspec.Struct, forbid_unknown_fields=True):
    unit_number: max_text(UNIT_NUMBER_MAX)
    status: one_of(SETTABLE_UNIT_STATUSES) = "vacant"


class UpdateUnitRequest(msgspec.Struct, forbid_unknown_fields=True):
    unit_number: max_text(UNIT_NUMBER_MAX) | UnsetType = UNSET
    status: one_of(SETTABLE_UNIT_STATUSES) | UnsetType = UNSET


TypeParam = Annotated[str | None, choices("Only properties of this type.", PROPERTY_TYPES)]
PropertyOrdering = ordering_param(PROPERTY_ORDERING, "name")


class PropertiesController(Controller):
    path = "/api/properties"
    tags = ["properties"]

    @get("/", summary="List properties")
    async def list_properties(
        self,
        request: Request[Any, Any, Any],
        ctx: NamedDependency[Context],
        property_type: TypeParam = None,
        search: SearchParam = None,
        ordering: PropertyOrdering = None,
        page: PageParam = None,
        page_size: PageSizeParam = None,
    ) -> Page[PropertyOut]:
        filters = PropertyFilters(choice("property_type", property_type, PROPERTY_TYPES), text("search", search))
        return ctx.services.page(request, await ctx.properties.page(filters, page_request(page, page_size, ordering)))

    @post("/", status_code=201, summary="Create a property")
    async def create_property(
        self,
        data: JSONBody[CreatePropertyRequest],
        ctx: NamedDependency[Context],
    ) -> PropertyDetail:
        property_id = await ctx.services.run(ctx.property_commands.create(ctx.actor, msgspec.structs.asdict(data)))
        return await ctx.properties.detail(property_id)

    @get("/{property_id:int}/", summary="A property with its units")
    async def get_property(
        self,
        property_id: FromPath[int],
        ctx: NamedDependency[Context],
    ) -> PropertyDetail:
        return await ctx.properties.detail(property_id)

    @patch("/{property_id:int}/", summary="Change a property")
    async def update_property(
        self,
        property_id: FromPath[int],
        data: JSONBody[UpdatePropertyRequest],
        ctx: NamedDependency[Context],
    ) -> PropertyDetail:
        changes = given(data, "name", "address", "property_type", "timezone")
        if data.turnover is not UNSET:
            changes["turnover"] = given(data.turnover, *TurnoverRequest.__struct_fields__)
        await ctx.services.run(ctx.property_commands.update(ctx.actor, property_id, changes))
        return await ctx.properties.detail(property_id)

    @delete("/{property_id:int}/", status_code=204, summary="Archive a property (history, tasks, bookings kept)")
    async def archive_property(
        self,
        property_id: FromPath[int],
        ctx: NamedDependency[Context],
    ) -> None:
        await ctx.services.run(ctx.property_commands.archive(ctx.actor, property_id))

    @get("/{property_id:int}/units/", summary="A property's units")
    async def list_units(self, property_id: FromPath[int], ctx: NamedDependency[Context]) -> UnitList:
        return await ctx.properties.units(property_id)

    @post("/{property_id:int}/units/", status_code=201, summary="Add a unit")
    async def add_unit(
        self,
        property_id: FromPath[int],
        data: JSONBody[CreateUnitRequest],
        ctx: NamedDependency[Context],
    ) -> UnitOut:
        unit_id = await ctx.services.run(
            ctx.property_commands.add_unit(ctx.actor, property_id, msgspec.structs.asdict(data))
        )
        return await ctx.properties.unit(property_id, unit_id)

    @get("/{property_id:int}/units/{unit_id:int}/", summary="A unit")
    async def get_unit(
        self,
        property_id: FromPath[int],
        unit_id: FromPath[int],
        ctx: NamedDependency[Context],
    ) -> UnitOut:
        return await ctx.properties.unit(property_id, unit_id)

    @patch("/{property_id:int}/units/{unit_id:int}/", summary="Change a unit's number or manual status")
    async def update_unit(
        self,
        property_id: FromPath[int],
        unit_id: FromPath[int],
        data: JSONBody[UpdateUnitRequest],
        ctx: NamedDependency[Context],
    ) -> UnitOut:
        fields = given(data, "unit_number", "status")
        await ctx.services.run(ctx.property_commands.update_unit(ctx.actor, property_id, unit_id, fields))
        return await ctx.properties.unit(property_id, unit_id)

    @delete("/{property_id:int}/units/{unit_id:int}/", status_code=204, summary="Remove a unit")
    async def remove_unit(
        self,
        property_id: FromPath[int],
        unit_id: FromPath[int],
        ctx: NamedDependency[Context],
    ) -> None:
        await ctx.services.run(ctx.property_commands.remove_unit(ctx.actor, property_id, unit_id))
