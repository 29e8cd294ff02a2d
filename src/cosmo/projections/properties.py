"""Read models of properties and units. A unit's occupied/vacant status depends on the clock (a booking covering
now), so it is derived when read, from the manual status kept here and the bookings read model."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import msgspec

from cosmo.domain.errors import NotFound
from cosmo.domain.properties import TURNOVER_DEFAULTS, Property, unit_status
from cosmo.projections.base import Index, Projection, Table, handles, update_row
from cosmo.projections.bookings import BookingQueries, CurrentBooking
from cosmo.projections.queries import PageRequest, Reader, Slice, like, order_clause, page_of
from cosmo.storage.db import Cursor

PROPERTY_COLUMNS = """
    id bigint NOT NULL,
    uuid text NOT NULL,
    name text NOT NULL,
    address text NOT NULL,
    property_type text NOT NULL,
    timezone text NOT NULL,
    is_archived boolean NOT NULL,
    turnover text NOT NULL,
    created_by bigint NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
"""

UNIT_COLUMNS = """
    id bigint NOT NULL,
    property_id bigint NOT NULL,
    unit_number text NOT NULL,
    manual_status text,
    is_removed boolean NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
"""


class PropertiesProjection(Projection):
    name = "properties"
    version = 2
    tables = (
        Table(
            "properties_view",
            PROPERTY_COLUMNS,
            "id",
            (Index("uuid", "uuid", unique=True), Index("name", "is_archived, name")),
        ),
        Table("units_view", UNIT_COLUMNS, "id", (Index("property", "property_id, is_removed, unit_number"),)),
    )

    @handles(Property.Created)
    def created(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        cur.execute(
            f"INSERT INTO {t['properties_view']} (id, uuid, name, address, property_type, timezone, is_archived,"
            " turnover, created_by, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                e.property_id,
                str(e.originator_id),
                e.name,
                e.address,
                e.property_type,
                e.timezone,
                False,
                json.dumps(TURNOVER_DEFAULTS),
                e.actor_id,
                e.timestamp,
                e.timestamp,
            ),
        )

    @handles(Property.Updated)
    def updated(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        columns = {**e.changes, "updated_at": e.timestamp}
        if "turnover" in columns:
            columns["turnover"] = json.dumps(columns["turnover"])
        update_row(cur, t["properties_view"], columns, "uuid", str(e.originator_id))

    @handles(Property.Archived)
    def archived(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        cur.execute(
            f"UPDATE {t['properties_view']} SET is_archived = %s, updated_at = %s WHERE uuid = %s",
            (True, e.timestamp, str(e.originator_id)),
        )

    @handles(Property.UnitAdded)
    def unit_added(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        cur.execute(
            f"INSERT INTO {t['units_view']} (id, property_id, unit_number, manual_status, is_removed, created_at,"
            f" updated_at) SELECT %s, id, %s, %s, %s, %s, %s FROM {t['properties_view']} WHERE uuid = %s",
            (e.unit_id, e.unit_number, e.manual_status, False, e.timestamp, e.timestamp, str(e.originator_id)),
        )

    @handles(Property.UnitUpdated)
    def unit_updated(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        update_row(cur, t["units_view"], {**e.changes, "updated_at": e.timestamp}, "id", e.unit_id)

    @handles(Property.UnitRemoved)
    def unit_removed(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        cur.execute(
            f"UPDATE {t['units_view']} SET is_removed = %s, updated_at = %s WHERE id = %s",
            (True, e.timestamp, e.unit_id),
        )


ALL = (PropertiesProjection,)


# -- queries -------------------------------------------------------------------------------------------------------


class UnitOut(msgspec.Struct):
    id: int
    property: int
    unit_number: str
    status: str
    current_booking: CurrentBooking | None = None


class Turnover(msgspec.Struct):
    """What a booking's checkout calls for: a task of `task_type`, due `offset` minutes after the check-out."""

    enabled: bool
    task_type: str
    checklist_template: int | None
    assign_to: int | None
    offset: int


class PropertyOut(msgspec.Struct):
    id: int
    name: str
    address: str
    property_type: str
    timezone: str
    total_units: int
    active_units: int
    turnover: Turnover
    created_at: datetime
    updated_at: datetime


class PropertyDetail(PropertyOut):
    units: list[UnitOut] = []


class UnitList(msgspec.Struct):
    count: int
    results: list[UnitOut]


class PropertyFilters(msgspec.Struct):
    property_type: str | None = None
    search: str = ""


PROPERTY_SELECT = (
    "p.id, p.name, p.address, p.property_type, p.timezone, p.turnover, p.created_at, p.updated_at,"
    " (SELECT count(*) FROM units_view u WHERE u.property_id = p.id AND NOT u.is_removed) AS total_units,"
    " (SELECT count(*) FROM units_view u WHERE u.property_id = p.id AND NOT u.is_removed"
    " AND coalesce(u.manual_status, '') <> 'inactive') AS active_units"
)
PROPERTY_ORDERING = {"id": "p.id", "name": "p.name", "created_at": "p.created_at", "property_type": "p.property_type"}
UNIT_SELECT = "id, property_id, unit_number, manual_status"


def _fields(row: dict[str, Any]) -> dict[str, Any]:
    return {**{k: row[k] for k in PropertyOut.__struct_fields__}, "turnover": _TURNOVER.decode(row["turnover"])}


_TURNOVER = msgspec.json.Decoder(Turnover)


def _property(row: dict[str, Any]) -> PropertyOut:
    return PropertyOut(**_fields(row))


def _unit(row: dict[str, Any], current: dict[int, CurrentBooking]) -> UnitOut:
    booking = current.get(row["id"])
    return UnitOut(
        row["id"],
        row["property_id"],
        row["unit_number"],
        unit_status(row["manual_status"], occupied=booking is not None),
        booking,
    )


class PropertyQueries:
    """Every signed-in user reads properties and units; archived properties and removed units are gone (404)."""

    def __init__(self, read: Reader, bookings: BookingQueries):
        self._read = read
        self._bookings = bookings

    async def _row(self, property_id: int) -> dict[str, Any]:
        row = await self._read.fetchone(
            f"SELECT {PROPERTY_SELECT} FROM properties_view p WHERE p.id = %s AND NOT p.is_archived", (property_id,)
        )
        if row is None:
            raise NotFound(f"property {property_id}")
        return row

    async def ids_by_name(self) -> dict[str, list[int]]:
        """The live properties' ids by name (trimmed, case-folded): how a spreadsheet names a property."""
        rows = await self._read.fetchall("SELECT id, name FROM properties_view WHERE NOT is_archived ORDER BY id")
        found: dict[str, list[int]] = {}
        for row in rows:
            found.setdefault(row["name"].strip().casefold(), []).append(int(row["id"]))
        return found

    async def units(self, property_id: int) -> UnitList:
        await self._row(property_id)
        units = await self._units(property_id)
        return UnitList(len(units), units)

    async def _units(self, property_id: int) -> list[UnitOut]:
        rows = await self._read.fetchall(
            f"SELECT {UNIT_SELECT} FROM units_view WHERE property_id = %s AND NOT is_removed ORDER BY unit_number, id",
            (property_id,),
        )
        current = await self._bookings.current([r["id"] for r in rows])
        return [_unit(r, current) for r in rows]

    async def detail(self, property_id: int) -> PropertyDetail:
        row = await self._row(property_id)
        return PropertyDetail(**_fields(row), units=await self._units(property_id))

    async def unit(self, property_id: int, unit_id: int) -> UnitOut:
        await self._row(property_id)
        row = await self._read.fetchone(
            f"SELECT {UNIT_SELECT} FROM units_view WHERE id = %s AND property_id = %s AND NOT is_removed",
            (unit_id, property_id),
        )
        if row is None:
            raise NotFound(f"unit {unit_id}")
        return _unit(row, await self._bookings.current([unit_id]))

    async def page(self, filters: PropertyFilters, request: PageRequest) -> Slice[PropertyOut]:
        where, params = ["NOT p.is_archived"], []
        if filters.property_type is not None:
            where.append("p.property_type = %s")
            params.append(filters.property_type)
        if filters.search:
            where.append("(lower(p.name) LIKE %s ESCAPE '\\' OR lower(p.address) LIKE %s ESCAPE '\\')")
            params += [like(filters.search)] * 2
        return await page_of(
            self._read,
            request,
            select=PROPERTY_SELECT,
            from_where=f"FROM properties_view p WHERE {' AND '.join(where)}",
            params=params,
            order_by=order_clause(request.ordering, PROPERTY_ORDERING, "name") + ", p.id",
            shape=_property,
        )
