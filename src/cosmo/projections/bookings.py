"""The bookings read model: its table, its event handlers and the queries that read it (the list with its
filters, a booking, and the bookings that occupy units now, for the property views)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec

from cosmo.domain.bookings import OCCUPYING, Booking, local_day, nights
from cosmo.domain.errors import NotFound
from cosmo.projections.base import Index, Projection, Table, handles, update_row
from cosmo.projections.queries import PageRequest, Reader, Slice, equals, like, order_clause, page_of
from cosmo.storage.db import Cursor

BOOKING_COLUMNS = """
    id bigint NOT NULL,
    uuid text NOT NULL,
    property_id bigint NOT NULL,
    unit_id bigint,
    source text NOT NULL,
    external_code text NOT NULL,
    guest_name text NOT NULL,
    guest_contact text NOT NULL,
    check_in timestamptz NOT NULL,
    check_out timestamptz NOT NULL,
    check_in_day text NOT NULL,
    check_out_day text NOT NULL,
    total_nights bigint NOT NULL,
    timezone text NOT NULL,
    status text NOT NULL,
    adults bigint NOT NULL,
    children bigint NOT NULL,
    infants bigint NOT NULL,
    earnings text,
    earnings_currency text NOT NULL,
    booked_at timestamptz,
    notes text NOT NULL,
    turnover_task_id bigint NOT NULL,
    created_by bigint NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
"""

# Fields of the aggregate kept as columns of the same name.
PLAIN = (
    "property_id",
    "unit_id",
    "source",
    "external_code",
    "guest_name",
    "guest_contact",
    "status",
    "adults",
    "children",
    "infants",
    "earnings_currency",
    "booked_at",
    "notes",
    "timezone",
)


def _stay_columns(check_in: datetime, check_out: datetime, timezone: str) -> dict[str, Any]:
    return {
        "check_in": check_in,
        "check_out": check_out,
        "check_in_day": local_day(check_in, timezone),
        "check_out_day": local_day(check_out, timezone),
        "total_nights": nights(check_in, check_out, timezone),
    }


def _earnings(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


class BookingsProjection(Projection):
    name = "bookings"
    version = 1
    tables = (
        Table(
            "bookings_view",
            BOOKING_COLUMNS,
            "id",
            (
                Index("uuid", "uuid", unique=True),
                Index("property", "property_id, check_in_day"),
                Index("unit", "unit_id, check_in"),
                Index("check_in", "check_in_day"),
                Index("check_out", "check_out_day"),
                Index("code", "external_code"),
            ),
        ),
    )

    @handles(Booking.Created)
    def created(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        f = e.fields
        row: dict[str, Any] = {
            "id": e.booking_id,
            "uuid": str(e.originator_id),
            **{name: f[name] for name in PLAIN},
            **_stay_columns(f["check_in"], f["check_out"], f["timezone"]),
            "earnings": _earnings(f["earnings"]),
            "turnover_task_id": e.turnover_task_id,
            "created_by": e.actor_id,
            "created_at": e.timestamp,
            "updated_at": e.timestamp,
        }
        cur.execute(
            f"INSERT INTO {t['bookings_view']} ({', '.join(row)}) VALUES ({', '.join(['%s'] * len(row))})",
            tuple(row.values()),
        )

    @handles(Booking.Updated)
    def updated(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        changes = e.changes
        columns = {k: v for k, v in changes.items() if k in PLAIN}
        if "earnings" in changes:
            columns["earnings"] = _earnings(changes["earnings"])
        if {"check_in", "check_out", "timezone"} & changes.keys():
            row = cur.execute(
                f"SELECT check_in, check_out, timezone FROM {t['bookings_view']} WHERE uuid = %s",
                (str(e.originator_id),),
            ).fetchone()
            if row is not None:
                stay = {**row, **{k: changes[k] for k in ("check_in", "check_out", "timezone") if k in changes}}
                columns.update(_stay_columns(stay["check_in"], stay["check_out"], stay["timezone"]))
        update_row(cur, t["bookings_view"], {**columns, "updated_at": e.timestamp}, "uuid", str(e.originator_id))

    @handles(Booking.Cancelled)
    def cancelled(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        update_row(
            cur, t["bookings_view"], {"status": "cancelled", "updated_at": e.timestamp}, "uuid", str(e.originator_id)
        )


ALL = (BookingsProjection,)


# -- queries -------------------------------------------------------------------------------------------------------


class BookingOut(msgspec.Struct):
    id: int
    external_code: str
    source: str
    guest_name: str
    guest_contact: str
    check_in_date: datetime
    check_out_date: datetime
    property: int
    property_name: str
    unit: str | None
    status: str
    total_nights: int
    adults: int
    children: int
    infants: int
    earnings: str | None
    earnings_currency: str
    booked_at: datetime | None
    notes: str
    turnover_task: int | None
    created_at: datetime
    updated_at: datetime


class CurrentBooking(msgspec.Struct):
    """The contract's `current_booking` of a unit."""

    id: int
    guest_name: str
    check_in: datetime
    check_out: datetime


class BookingFilters(msgspec.Struct):
    property: int | None = None
    unit: str | None = None
    status: str | None = None
    source: str | None = None
    # (operator, value): a day ("2025-09-10", the property's local day) or an instant
    check_in: list[tuple[str, Any]] = []
    check_out: list[tuple[str, Any]] = []
    search: str = ""


BOOKING_FILTERS = {"property": "b.property_id", "status": "b.status", "source": "b.source"}
BOOKING_ORDERING = {
    "check_in_date": "b.check_in",
    "check_out_date": "b.check_out",
    "created_at": "b.created_at",
    "guest_name": "b.guest_name",
    "status": "b.status",
    "source": "b.source",
    "total_nights": "b.total_nights",
    "id": "b.id",
}
BOOKING_SELECT = (
    "b.id, b.external_code, b.source, b.guest_name, b.guest_contact, b.check_in, b.check_out, b.property_id,"
    " p.name AS property_name, un.unit_number, b.status, b.total_nights, b.adults, b.children, b.infants,"
    " b.earnings, b.earnings_currency, b.booked_at, b.notes, tt.id AS turnover_task_id, b.created_at, b.updated_at"
)
BOOKING_FROM = (
    "FROM bookings_view b LEFT JOIN properties_view p ON p.id = b.property_id"
    " LEFT JOIN units_view un ON un.id = b.unit_id"
    # The turnover task once the policy has made it (a cancelled or past booking makes none).
    " LEFT JOIN tasks_view tt ON tt.id = b.turnover_task_id AND NOT tt.is_deleted"
)


def _booking(row: dict[str, Any]) -> BookingOut:
    return BookingOut(
        id=row["id"],
        external_code=row["external_code"],
        source=row["source"],
        guest_name=row["guest_name"],
        guest_contact=row["guest_contact"],
        check_in_date=row["check_in"],
        check_out_date=row["check_out"],
        property=row["property_id"],
        property_name=row["property_name"] or "",
        unit=row["unit_number"],
        status=row["status"],
        total_nights=row["total_nights"],
        adults=row["adults"],
        children=row["children"],
        infants=row["infants"],
        earnings=row["earnings"],
        earnings_currency=row["earnings_currency"],
        booked_at=row["booked_at"],
        notes=row["notes"],
        turnover_task=row["turnover_task_id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _bounds(column: str, bounds: list[tuple[str, Any]]) -> tuple[list[str], list[Any]]:
    """Day bounds compare the local day column, instants the timestamp."""
    where, params = [], []
    for op, value in bounds:
        where.append(f"b.{column}{'_day' if isinstance(value, str) else ''} {op} %s")
        params.append(value)
    return where, params


class BookingQueries:
    """Every signed-in user reads bookings."""

    def __init__(self, read: Reader):
        self._read = read

    async def detail(self, booking_id: int) -> BookingOut:
        row = await self._read.fetchone(f"SELECT {BOOKING_SELECT} {BOOKING_FROM} WHERE b.id = %s", (booking_id,))
        if row is None:
            raise NotFound(f"booking {booking_id}")
        return _booking(row)

    async def page(self, filters: BookingFilters, request: PageRequest) -> Slice[BookingOut]:
        where, params = equals(filters, BOOKING_FILTERS)
        if filters.unit is not None:
            where.append("lower(un.unit_number) = %s")
            params.append(filters.unit.strip().lower())
        for column, bounds in (("check_in", filters.check_in), ("check_out", filters.check_out)):
            found, values = _bounds(column, bounds)
            where += found
            params += values
        if filters.search:
            where.append("(lower(b.guest_name) LIKE %s ESCAPE '\\' OR lower(b.external_code) LIKE %s ESCAPE '\\')")
            params += [like(filters.search)] * 2
        return await page_of(
            self._read,
            request,
            select=BOOKING_SELECT,
            from_where=f"{BOOKING_FROM} WHERE {' AND '.join(where) or 'TRUE'}",
            params=params,
            order_by=order_clause(request.ordering, BOOKING_ORDERING, "-check_in_date") + ", b.id DESC",
            shape=_booking,
        )

    async def current(self, unit_ids: Sequence[int], now: datetime | None = None) -> dict[int, CurrentBooking]:
        """The booking each unit is occupied by at `now`: a live booking whose stay covers that instant."""
        if not unit_ids:
            return {}
        now = now or datetime.now(UTC)
        marks = ", ".join(["%s"] * len(unit_ids))
        states = ", ".join(["%s"] * len(OCCUPYING))
        rows = await self._read.fetchall(
            f"SELECT id, unit_id, guest_name, check_in, check_out FROM bookings_view WHERE unit_id IN ({marks})"
            f" AND status IN ({states}) AND check_in <= %s AND check_out > %s ORDER BY check_in DESC, id DESC",
            (*unit_ids, *OCCUPYING, now, now),
        )
        found: dict[int, CurrentBooking] = {}
        for r in rows:
            found.setdefault(r["unit_id"], CurrentBooking(r["id"], r["guest_name"], r["check_in"], r["check_out"]))
        return found
