"""Properties and units: every signed-in user reads; superusers and managers write."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, delete, get, patch, post
from litestar.params import FromPath, JSONBody
from msgspec import UNSET, UnsetType

from cosmo.api.pagination import ordering, paginate, query_choice, query_text
from cosmo.api.security import CurrentUser
from cosmo.api.state import services_of
from cosmo.api.wire import given
from cosmo.domain.errors import NotFound
from cosmo.domain.properties import PROPERTY_TYPES, unit_status


class CreatePropertyRequest(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    address: str = ""
    property_type: str = "other"
    timezone: str = "UTC"


class UpdatePropertyRequest(msgspec.Struct, forbid_unknown_fields=True):
    name: str | UnsetType = UNSET
    address: str | UnsetType = UNSET
    property_type: str | UnsetType = UNSET
    timezone: str | UnsetType = UNSET


class CreateUnitRequest(msgspec.Struct, forbid_unknown_fields=True):
    unit_number: str
    status: str = "vacant"


class UpdateUnitRequest(msgspec.Struct, forbid_unknown_fields=True):
    unit_number: str | UnsetType = UNSET
    status: str | UnsetType = UNSET


PROPERTY_SELECT = (
    "p.id, p.name, p.address, p.property_type, p.timezone, p.created_at, p.updated_at,"
    " (SELECT count(*) FROM units_view u WHERE u.property_id = p.id AND NOT u.is_removed) AS total_units,"
    " (SELECT count(*) FROM units_view u WHERE u.property_id = p.id AND NOT u.is_removed"
    " AND coalesce(u.manual_status, '') <> 'inactive') AS active_units"
)
PROPERTY_ORDERING = {"id": "p.id", "name": "p.name", "created_at": "p.created_at", "property_type": "p.property_type"}
UNIT_SELECT = "id, property_id, unit_number, manual_status, created_at, updated_at"


def property_out(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "address": row["address"],
        "property_type": row["property_type"],
        "timezone": row["timezone"],
        "total_units": int(row["total_units"]),
        "active_units": int(row["active_units"]),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def unit_out(row: dict[str, Any]) -> dict[str, Any]:
    # Bookings are not projected yet: no unit is occupied by one, and `current_booking` is null.
    return {
        "id": row["id"],
        "property": row["property_id"],
        "unit_number": row["unit_number"],
        "status": unit_status(row["manual_status"], occupied=False),
        "current_booking": None,
    }


async def _property_row(request: Request[Any, Any, Any], property_id: int) -> dict[str, Any]:
    row = await services_of(request).reader.fetchone(
        f"SELECT {PROPERTY_SELECT} FROM properties_view p WHERE p.id = %s AND NOT p.is_archived", (property_id,)
    )
    if row is None:
        raise NotFound(f"property {property_id}")
    return row


async def _units(request: Request[Any, Any, Any], property_id: int) -> list[dict[str, Any]]:
    rows = await services_of(request).reader.fetchall(
        f"SELECT {UNIT_SELECT} FROM units_view WHERE property_id = %s AND NOT is_removed ORDER BY unit_number, id",
        (property_id,),
    )
    return [unit_out(r) for r in rows]


async def _unit_row(request: Request[Any, Any, Any], property_id: int, unit_id: int) -> dict[str, Any]:
    row = await services_of(request).reader.fetchone(
        f"SELECT {UNIT_SELECT} FROM units_view WHERE id = %s AND property_id = %s AND NOT is_removed",
        (unit_id, property_id),
    )
    if row is None:
        raise NotFound(f"unit {unit_id}")
    return row


async def property_detail(request: Request[Any, Any, Any], property_id: int) -> dict[str, Any]:
    return {**property_out(await _property_row(request, property_id)), "units": await _units(request, property_id)}


class PropertiesController(Controller):
    path = "/api/properties"
    tags = ["properties"]

    @get("/", summary="List properties")
    async def list_properties(self, request: Request[CurrentUser, Any, Any]) -> dict[str, Any]:
        where, params = ["NOT p.is_archived"], []
        kind = query_choice(request, "property_type", PROPERTY_TYPES)
        if kind:
            where.append("p.property_type = %s")
            params.append(kind)
        search = query_text(request, "search")
        if search:
            where.append("(lower(p.name) LIKE %s OR lower(p.address) LIKE %s)")
            pattern = f"%{search.lower()}%"
            params += [pattern, pattern]
        return await paginate(
            request,
            services_of(request).reader,
            select=PROPERTY_SELECT,
            from_where=f"FROM properties_view p WHERE {' AND '.join(where)}",
            params=params,
            order_by=ordering(request, PROPERTY_ORDERING, "name") + ", p.id",
            shape=property_out,
        )

    @post("/", status_code=201, summary="Create a property")
    async def create_property(
        self, request: Request[CurrentUser, Any, Any], data: JSONBody[CreatePropertyRequest]
    ) -> dict[str, Any]:
        services = services_of(request)
        commands, actor = services.runtime.properties, request.user.actor()
        fields = msgspec.structs.asdict(data)
        property_id = await services.run(commands.create(actor, fields))
        return await property_detail(request, property_id)

    @get("/{property_id:int}/", summary="A property with its units")
    async def get_property(self, request: Request[CurrentUser, Any, Any], property_id: FromPath[int]) -> dict[str, Any]:
        return await property_detail(request, property_id)

    @patch("/{property_id:int}/", summary="Change a property")
    async def update_property(
        self,
        request: Request[CurrentUser, Any, Any],
        property_id: FromPath[int],
        data: JSONBody[UpdatePropertyRequest],
    ) -> dict[str, Any]:
        services = services_of(request)
        commands, actor = services.runtime.properties, request.user.actor()
        changes = given(data, "name", "address", "property_type", "timezone")
        await services.run(commands.update(actor, property_id, changes))
        return await property_detail(request, property_id)

    @delete("/{property_id:int}/", status_code=204, summary="Archive a property (history, tasks, bookings kept)")
    async def archive_property(self, request: Request[CurrentUser, Any, Any], property_id: FromPath[int]) -> None:
        services = services_of(request)
        commands, actor = services.runtime.properties, request.user.actor()
        await services.run(commands.archive(actor, property_id))

    @get("/{property_id:int}/units/", summary="A property's units")
    async def list_units(self, request: Request[CurrentUser, Any, Any], property_id: FromPath[int]) -> dict[str, Any]:
        await _property_row(request, property_id)
        units = await _units(request, property_id)
        return {"count": len(units), "results": units}

    @post("/{property_id:int}/units/", status_code=201, summary="Add a unit")
    async def add_unit(
        self, request: Request[CurrentUser, Any, Any], property_id: FromPath[int], data: JSONBody[CreateUnitRequest]
    ) -> dict[str, Any]:
        services = services_of(request)
        commands, actor = services.runtime.properties, request.user.actor()
        fields = msgspec.structs.asdict(data)
        unit_id = await services.run(commands.add_unit(actor, property_id, fields))
        return unit_out(await _unit_row(request, property_id, unit_id))

    @get("/{property_id:int}/units/{unit_id:int}/", summary="A unit")
    async def get_unit(
        self, request: Request[CurrentUser, Any, Any], property_id: FromPath[int], unit_id: FromPath[int]
    ) -> dict[str, Any]:
        await _property_row(request, property_id)
        return unit_out(await _unit_row(request, property_id, unit_id))

    @patch("/{property_id:int}/units/{unit_id:int}/", summary="Change a unit's number or manual status")
    async def update_unit(
        self,
        request: Request[CurrentUser, Any, Any],
        property_id: FromPath[int],
        unit_id: FromPath[int],
        data: JSONBody[UpdateUnitRequest],
    ) -> dict[str, Any]:
        services = services_of(request)
        commands, actor = services.runtime.properties, request.user.actor()
        fields = given(data, "unit_number", "status")
        await services.run(commands.update_unit(actor, property_id, unit_id, fields))
        return unit_out(await _unit_row(request, property_id, unit_id))

    @delete("/{property_id:int}/units/{unit_id:int}/", status_code=204, summary="Remove a unit")
    async def remove_unit(
        self, request: Request[CurrentUser, Any, Any], property_id: FromPath[int], unit_id: FromPath[int]
    ) -> None:
        services = services_of(request)
        commands, actor = services.runtime.properties, request.user.actor()
        await services.run(commands.remove_unit(actor, property_id, unit_id))
