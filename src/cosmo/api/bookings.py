"""Bookings: every signed-in user reads; superusers and managers write (the commands decide)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, patch, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, MultipartBody
from msgspec import UNSET, UnsetType

from cosmo.api.deps import Context
from cosmo.api.pages import Page
from cosmo.api.params import (
    IdParam,
    PageParam,
    PageSizeParam,
    SearchParam,
    choice,
    choices,
    described,
    form_id,
    integer,
    moment,
    ordering_param,
    page_request,
    text,
)
from cosmo.api.wire import Id, count, given, one_of
from cosmo.api.wire import text as max_text
from cosmo.domain.bookings import (
    CONTACT_MAX,
    EXTERNAL_CODE_MAX,
    GUEST_NAME_MAX,
    NOTES_MAX,
    PEOPLE_MAX,
    SOURCES,
    STATUSES,
)
from cosmo.domain.errors import NotFound, ValidationFailed
from cosmo.domain.imports import ACTIONS, import_number
from cosmo.domain.properties import UNIT_NUMBER_MAX
from cosmo.imports.spreadsheet import MAX_BYTES as MAX_SPREADSHEET_BYTES
from cosmo.imports.spreadsheet import MAX_ROWS as MAX_SPREADSHEET_ROWS
from cosmo.projections.bookings import BOOKING_ORDERING, BookingFilters, BookingOut
from cosmo.projections.imports import ImportOut, ImportSummary

# A date ("2025-09-10": 15:00 for a check-in, 11:00 for a check-out) or a date and time; without an offset, the
# property's local time.
StayMoment = msgspec.Meta(
    max_length=40,
    description="A date (2025-09-10) or ISO 8601 date and time; without an offset, the property's local time.",
)
MAX_RESOLUTIONS = 1000  # per request
Money = msgspec.Meta(max_length=20, description='An amount as a decimal string, e.g. "1020.50".')


class CreateBookingRequest(msgspec.Struct, forbid_unknown_fields=True):
    property: Id
    guest_name: max_text(GUEST_NAME_MAX)
    check_in_date: Annotated[str, StayMoment]
    check_out_date: Annotated[str, StayMoment]
    unit: max_text(UNIT_NUMBER_MAX) | None = None
    external_code: max_text(EXTERNAL_CODE_MAX) = ""
    source: one_of(SOURCES) = "direct"
    status: one_of(STATUSES) = "confirmed"
    guest_contact: max_text(CONTACT_MAX) = ""
    adults: count(0, PEOPLE_MAX) = 1
    children: count(0, PEOPLE_MAX) = 0
    infants: count(0, PEOPLE_MAX) = 0
    earnings: Annotated[str, Money] | None = None
    earnings_currency: max_text(3) = "USD"
    booked_at: datetime | None = None
    notes: max_text(NOTES_MAX) = ""


class UpdateBookingRequest(msgspec.Struct, forbid_unknown_fields=True):
    property: Id | UnsetType = UNSET
    guest_name: max_text(GUEST_NAME_MAX) | UnsetType = UNSET
    check_in_date: Annotated[str, StayMoment] | UnsetType = UNSET
    check_out_date: Annotated[str, StayMoment] | UnsetType = UNSET
    unit: max_text(UNIT_NUMBER_MAX) | UnsetType | None = UNSET
    external_code: max_text(EXTERNAL_CODE_MAX) | UnsetType = UNSET
    source: one_of(SOURCES) | UnsetType = UNSET
    status: one_of(STATUSES) | UnsetType = UNSET
    guest_contact: max_text(CONTACT_MAX) | UnsetType = UNSET
    adults: count(0, PEOPLE_MAX) | UnsetType = UNSET
    children: count(0, PEOPLE_MAX) | UnsetType = UNSET
    infants: count(0, PEOPLE_MAX) | UnsetType = UNSET
    earnings: Annotated[str, Money] | UnsetType | None = UNSET
    earnings_currency: max_text(3) | UnsetType = UNSET
    booked_at: datetime | UnsetType | None = UNSET
    notes: max_text(NOTES_MAX) | UnsetType = UNSET


FIELDS = tuple(CreateBookingRequest.__struct_fields__)
StatusParam = Annotated[str | None, choices("Only bookings in this status.", STATUSES)]
SourceParam = Annotated[str | None, choices("Only bookings from this source.", SOURCES)]
UnitParam = Annotated[str | None, described("Only bookings of the unit with this number.", maxLength=UNIT_NUMBER_MAX)]
DayParam = Annotated[
    str | None,
    described("A day (2025-09-10, the property's local day) or an ISO 8601 date and time.", maxLength=40),
]
BookingOrdering = ordering_param(BOOKING_ORDERING, "-check_in_date")


def _fields(data: dict[str, Any]) -> dict[str, Any]:
    """Wire names -> the command's (`property` is the property's id)."""
    return {("property_id" if k == "property" else k): v for k, v in data.items()}


def _day_or_moment(name: str, raw: str | None) -> str | datetime | None:
    if raw is None or raw == "":
        return None
    if len(raw) == 10:
        try:
            day = date.fromisoformat(raw)
        except ValueError:
            raise ValidationFailed.one(name, "Enter a day as YYYY-MM-DD, or an ISO 8601 date and time.") from None
        if day.year < 1900:
            raise ValidationFailed.one(name, "Enter a day between 1900-01-01 and 9999-12-31.")
        return day.isoformat()
    return moment(name, raw)


def _bounds(name: str, on: str | None, after: str | None, before: str | None) -> list[tuple[str, Any]]:
    found = []
    for suffix, op, raw in (("", "=", on), ("_after", ">=", after), ("_before", "<=", before)):
        value = _day_or_moment(f"{name}{suffix}", raw)
        if value is not None:
            found.append((op, value))
    return found


# The upload's limit: the spreadsheet's own (a file just over it gets a 400 that says so) plus room for the form.
IMPORT_BODY_LIMIT = MAX_SPREADSHEET_BYTES + 1024 * 1024


@dataclass
class ImportForm:
    """The import form: the file; the property of rows that name none; the sheet of a workbook to read."""

    file: UploadFile
    property_id: str | None = None
    sheet_name: str | None = None


class ResolutionRequest(msgspec.Struct, forbid_unknown_fields=True):
    row_number: Annotated[int, msgspec.Meta(ge=2, le=MAX_SPREADSHEET_ROWS + 1)]
    action: one_of(ACTIONS)


class ResolveRequest(msgspec.Struct, forbid_unknown_fields=True):
    resolutions: Annotated[list[ResolutionRequest], msgspec.Meta(min_length=1, max_length=MAX_RESOLUTIONS)]


class ResolutionOut(msgspec.Struct):
    row_number: int
    action: str
    outcome: str
    message: str


class ResolveOut(ImportOut):
    results: list[ResolutionOut] = []


def _import_number(import_id: str) -> int:
    number = import_number(import_id)
    if number is None:
        raise NotFound(f"import {import_id[:40]}")
    return number


class BookingsController(Controller):
    path = "/api/bookings"
    tags = ["bookings"]

    @get("/", summary="List bookings")
    async def list_bookings(
        self,
        request: Request[Any, Any, Any],
        ctx: NamedDependency[Context],
        property: IdParam = None,
        unit: UnitParam = None,
        status: StatusParam = None,
        source: SourceParam = None,
        check_in_date: DayParam = None,
        check_in_date_after: DayParam = None,
        check_in_date_before: DayParam = None,
        check_out_date: DayParam = None,
        check_out_date_after: DayParam = None,
        check_out_date_before: DayParam = None,
        search: SearchParam = None,
        ordering: BookingOrdering = None,
        page: PageParam = None,
        page_size: PageSizeParam = None,
    ) -> Page[BookingOut]:
        filters = BookingFilters(
            property=integer("property", property),
            unit=text("unit", unit, UNIT_NUMBER_MAX) or None,
            status=choice("status", status, STATUSES),
            source=choice("source", source, SOURCES),
            check_in=_bounds("check_in_date", check_in_date, check_in_date_after, check_in_date_before),
            check_out=_bounds("check_out_date", check_out_date, check_out_date_after, check_out_date_before),
            search=text("search", search),
        )
        return ctx.services.page(request, await ctx.bookings.page(filters, page_request(page, page_size, ordering)))

    @post("/", status_code=201, summary="Create a booking")
    async def create_booking(self, data: JSONBody[CreateBookingRequest], ctx: NamedDependency[Context]) -> BookingOut:
        fields = _fields(msgspec.structs.asdict(data))
        booking_id = await ctx.services.run(ctx.booking_commands.create(ctx.actor, fields))
        return await ctx.bookings.detail(booking_id)

    @post(
        "/import/",
        status_code=202,
        summary="Import bookings from a spreadsheet (multipart: file, property_id, sheet_name)",
        request_max_body_size=IMPORT_BODY_LIMIT,
    )
    async def import_bookings(self, data: MultipartBody[ImportForm], ctx: NamedDependency[Context]) -> ImportOut:
        await ctx.services.throttle.hit("upload", str(ctx.actor.id), ctx.services.settings.throttle_upload)
        upload = data.file
        content = await upload.read()
        sheet_name = (data.sheet_name or "").strip() or None
        name = await ctx.services.run(
            ctx.import_commands.start(
                ctx.actor, content, upload.filename or "", form_id("property_id", data.property_id), sheet_name
            )
        )
        return await ctx.imports.detail(ctx.actor, _import_number(name))

    @get("/imports/", summary="List bookings imports (newest first)")
    async def list_imports(
        self,
        request: Request[Any, Any, Any],
        ctx: NamedDependency[Context],
        page: PageParam = None,
        page_size: PageSizeParam = None,
    ) -> Page[ImportSummary]:
        return ctx.services.page(request, await ctx.imports.page(ctx.actor, page_request(page, page_size, None)))

    @get("/imports/{import_id:str}/", summary="An import: progress, counts, conflicts and refused rows")
    async def get_import(self, import_id: FromPath[str], ctx: NamedDependency[Context]) -> ImportOut:
        return await ctx.imports.detail(ctx.actor, _import_number(import_id))

    @post("/imports/{import_id:str}/resolve/", status_code=200, summary="Resolve an import's waiting conflicts")
    async def resolve_import(
        self, import_id: FromPath[str], data: JSONBody[ResolveRequest], ctx: NamedDependency[Context]
    ) -> ResolveOut:
        number = _import_number(import_id)
        wanted = [(r.row_number, r.action) for r in data.resolutions]
        results = await ctx.services.run(ctx.import_commands.resolve(ctx.actor, import_id, number, wanted))
        found = await ctx.imports.detail(ctx.actor, number)
        return ResolveOut(
            **msgspec.structs.asdict(found),
            results=[ResolutionOut(r.row_number, r.action, r.outcome, r.message) for r in results],
        )

    @get("/{booking_id:int}/", summary="A booking")
    async def get_booking(self, booking_id: FromPath[int], ctx: NamedDependency[Context]) -> BookingOut:
        return await ctx.bookings.detail(booking_id)

    @patch("/{booking_id:int}/", summary="Change a booking (a status of cancelled cancels it)")
    async def update_booking(
        self, booking_id: FromPath[int], data: JSONBody[UpdateBookingRequest], ctx: NamedDependency[Context]
    ) -> BookingOut:
        await ctx.services.run(ctx.booking_commands.update(ctx.actor, booking_id, _fields(given(data, *FIELDS))))
        return await ctx.bookings.detail(booking_id)

    @post("/{booking_id:int}/cancel/", status_code=200, summary="Cancel a booking")
    async def cancel_booking(self, booking_id: FromPath[int], ctx: NamedDependency[Context]) -> BookingOut:
        await ctx.services.run(ctx.booking_commands.cancel(ctx.actor, booking_id))
        return await ctx.bookings.detail(booking_id)
