"""Read models of properties and units. A unit's occupied/vacant status depends on the clock (a booking covering
now), so it is derived when read; the views keep the manual status and, later, the bookings to derive it from."""

from __future__ import annotations

from typing import Any

from cosmo.domain.properties import Property
from cosmo.projections.base import Index, Projection, Table, handles, update_row
from cosmo.storage.db import Cursor

PROPERTY_COLUMNS = """
    id bigint NOT NULL,
    uuid text NOT NULL,
    name text NOT NULL,
    address text NOT NULL,
    property_type text NOT NULL,
    timezone text NOT NULL,
    is_archived boolean NOT NULL,
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
    version = 1
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
            " created_by, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                e.property_id,
                str(e.originator_id),
                e.name,
                e.address,
                e.property_type,
                e.timezone,
                False,
                e.actor_id,
                e.timestamp,
                e.timestamp,
            ),
        )

    @handles(Property.Updated)
    def updated(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        columns = {**e.changes, "updated_at": e.timestamp}
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
