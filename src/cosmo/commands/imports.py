"""Bookings imports: a spreadsheet read and checked as it arrives, then applied by a job that saves each chunk of
rows with the record of the import's progress (so a crash resumes it at the first row not applied), and the review
of the rows that wait (`resolve`).

A row becomes a booking, updates the booking of its `(source, external_code)`, or waits as a conflict:
`duplicate_booking` when that booking has other dates, guest, unit or property; `overlap` when its nights are
another live booking's; `in_file_duplicate` when an earlier row of the file has its code. A change of status (and of
the details a row gives: contact, earnings, booked date) is applied; an identical row is `unchanged`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import anyio.to_thread
import polars as pl

from cosmo.commands.base import Commands, LostRaces, Outcome, Session
from cosmo.commands.bookings import (
    DEFAULTS,
    change_booking,
    checked_fields,
    code_key,
    live_property,
    new_booking,
    stay_in,
)
from cosmo.commands.policy import Policy
from cosmo.domain.actors import Actor, require_admin
from cosmo.domain.bookings import (
    CHECK_IN_TIME,
    CHECK_OUT_TIME,
    Booking,
    Calendar,
    OverlapConflict,
    local_day,
    stay_moment,
)
from cosmo.domain.checks import check_text, clean_text
from cosmo.domain.errors import ValidationFailed
from cosmo.domain.identity import UniqueKey, normalise_key
from cosmo.domain.ids import aggregate_id, unique_key_id
from cosmo.domain.imports import ERRORS_KEPT, BookingImport, check_resolutions, import_name, require_import
from cosmo.domain.properties import Property
from cosmo.imports.spreadsheet import BadSpreadsheet, Sheet, read_bookings
from cosmo.media.store import MediaStore

log = logging.getLogger(__name__)

# Rows per transaction: large enough that an import of 100,000 rows is a few hundred saves, small enough that a
# chunk's decision holds the event loop only briefly.
CHUNK = 500
# Differences that wait for a person: these make it another stay, or another guest's.
IDENTITY = {
    "guest_name": "guest_name",
    "check_in": "check_in_date",
    "check_out": "check_out_date",
    "unit_id": "unit",
    "property_id": "property",
}
# Layouts whose files carry the guest counts (elsewhere the counts are the reader's defaults, not news).
COUNTED_LAYOUTS = ("airbnb", "cosmo")
SHEET_NAME_MAX = 100  # Excel allows 31
PropertyNames = Callable[[], Awaitable[dict[str, list[int]]]]


@dataclass
class Applied:
    """What a run of rows came to."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def add(self, other: Applied) -> None:
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.conflicts += other.conflicts
        self.errors += other.errors


class RowRefused(Exception):
    def __init__(self, field_name: str, message: str):
        super().__init__(message)
        self.field = field_name
        self.message = message


def readable_rows(sheet: Sheet) -> pl.DataFrame:
    """The sheet's valid rows in file order, each marked when an earlier row has its `(source, external_code)`.
    Kept as a DataFrame and turned into dicts a chunk at a time: 100,000 rows as dicts are millions of objects,
    which every garbage collection of the process would walk for as long as the import runs."""
    return sheet.rows.sort("row_number").with_columns(
        in_file_duplicate=(pl.col("external_code") != "")
        & ~pl.struct(pl.col("source"), pl.col("external_code").str.to_lowercase()).is_first_distinct()
    )


def _file_name(name: str) -> str:
    return clean_text(name).strip()[:255] or "upload"


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def _described(booking: Booking, prop: Property | None) -> dict[str, Any]:
    unit = prop.units.get(booking.unit_id) if prop is not None and booking.unit_id is not None else None
    return {
        "id": booking.booking_id,
        "external_code": booking.external_code,
        "source": booking.source,
        "guest_name": booking.guest_name,
        "check_in_date": _iso(booking.check_in),
        "check_out_date": _iso(booking.check_out),
        "property": booking.property_id,
        "unit": unit["unit_number"] if unit else None,
        "status": booking.status,
    }


def _key_id(fields: dict[str, Any]) -> Any:
    return unique_key_id("booking-code", normalise_key(code_key(fields["source"], fields["external_code"])))


class RowApplier:
    """Applies rows through one session: the import job uses one per chunk, a dry run one for the whole file."""

    def __init__(self, s: Session, names: dict[str, list[int]], default_property: int | None, layout: str):
        self._s = s
        self._names = names
        self._default_property = default_property
        self._layout = layout

    def _property_id(self, row: dict[str, Any]) -> int:
        if row.get("property_id") is not None:
            return int(row["property_id"])
        name = row.get("property_name")
        if name:
            found = self._names.get(name.strip().casefold(), [])
            if not found:
                raise RowRefused("property", f'No property is named "{name}".')
            if len(found) > 1:
                raise RowRefused("property", f'More than one property is named "{name}": name it by id.')
            return found[0]
        if self._default_property is None:
            raise RowRefused("property", "The row names no property, and the import has no property_id.")
        return self._default_property

    def fields(self, row: dict[str, Any]) -> dict[str, Any]:
        """The row as a booking create's fields (checked)."""
        fields = {
            **DEFAULTS,
            **{k: row[k] for k in (*DEFAULTS, "guest_name") if row.get(k) is not None and k != "earnings"},
            "property_id": self._property_id(row),
            "check_in_date": row["check_in"],
            "check_out_date": row["check_out"],
            "earnings": row.get("earnings"),
        }
        if not fields["earnings"]:
            fields["earnings"] = None
        if row.get("booked_at"):
            try:
                fields["booked_at"] = datetime.fromisoformat(row["booked_at"])
            except ValueError:
                raise RowRefused("booked_at", "Enter a valid date and time.") from None
        return checked_fields(fields)

    async def prepare(self, rows: Sequence[dict[str, Any]]) -> None:
        """Load, in a few round trips, the codes' keys and their bookings, the properties the rows name and the
        calendars of their units."""
        s = self._s
        keyed = [r for r in rows if r.get("external_code")]
        await s.prefetch([_key_id(r) for r in keyed])
        owners = []
        for r in keyed:
            key = await s.get(_key_id(r), UniqueKey)
            if key is not None and key.owner_id is not None:
                owners.append(Booking.create_id(key.owner_id))
        await s.prefetch(owners)
        places = set()
        for r in rows:
            with contextlib.suppress(RowRefused):
                places.add((self._property_id(r), r.get("unit")))
        await s.prefetch([aggregate_id("property", p) for p, _ in places])
        calendars = []
        for property_id, unit in places:
            prop = await s.get(aggregate_id("property", property_id), Property)
            if prop is not None:
                calendars.append(Calendar.create_id(property_id, prop.unit_by_number(unit) if unit else None))
        await s.prefetch(calendars)

    async def existing(self, fields: dict[str, Any]) -> Booking | None:
        if not fields["external_code"]:
            return None
        key = await self._s.get(_key_id(fields), UniqueKey)
        if key is None or key.owner_id is None:
            return None
        return await self._s.get(Booking.create_id(key.owner_id), Booking)

    async def apply(
        self, rows: Sequence[dict[str, Any]], booking_ids: Sequence[int], task_ids: Sequence[int], actor_id: int
    ) -> Applied:
        await self.prepare(rows)
        done = Applied()
        for row, booking_id, task_id in zip(rows, booking_ids, task_ids, strict=True):
            number = row["row_number"]
            try:
                await self._row(row, booking_id, task_id, actor_id, done)
            except RowRefused as refused:
                done.errors.append({"row_number": number, "field": refused.field, "message": refused.message})
            except ValidationFailed as failed:
                for name, messages in failed.details.items():
                    done.errors += [{"row_number": number, "field": name, "message": m} for m in messages]
            except OverlapConflict as clash:  # a booking's change that its unit's calendar refuses
                other = await self._s.get(Booking.create_id(clash.extra["conflicting_booking"]), Booking)
                done.conflicts.append(await self._conflict(number, "overlap", other, self.fields(row), []))
        return done

    async def _row(self, row: dict[str, Any], booking_id: int, task_id: int, actor_id: int, done: Applied) -> None:
        s = self._s
        fields = self.fields(row)
        existing = await self.existing(fields)
        number = row["row_number"]
        if row.get("in_file_duplicate"):
            differences = await self._differences(existing, fields) if existing is not None else []
            done.conflicts.append(await self._conflict(number, "in_file_duplicate", existing, fields, differences))
            return
        if existing is None:
            try:
                s.add(await new_booking(s, booking_id, task_id, fields, actor_id))
            except OverlapConflict as clash:
                other = await s.get(Booking.create_id(clash.extra["conflicting_booking"]), Booking)
                done.conflicts.append(await self._conflict(number, "overlap", other, fields, []))
            else:
                done.created += 1
            return
        differences = await self._differences(existing, fields)
        if differences:
            done.conflicts.append(await self._conflict(number, "duplicate_booking", existing, fields, differences))
            return
        changes = self._news(existing, fields)
        if not changes:
            done.unchanged += 1
            return
        if not existing.is_live and changes.get("status", "cancelled") != "cancelled":
            prop = await s.get(aggregate_id("property", existing.property_id), Property)
            assert prop is not None
            calendar = await s.get(Calendar.create_id(prop.property_id, existing.unit_id), Calendar)
            days = (local_day(existing.check_in, prop.timezone), local_day(existing.check_out, prop.timezone))
            other_id = calendar.clash(existing.booking_id, *days) if calendar else None
            if other_id is not None:
                other = await s.get(Booking.create_id(other_id), Booking)
                done.conflicts.append(await self._conflict(number, "overlap", other, fields, []))
                return
        await change_booking(s, existing, changes, actor_id)
        done.updated += 1

    async def _differences(self, existing: Booking, fields: dict[str, Any]) -> list[str]:
        """The fields that make the row another stay or another guest's than `existing` (API names)."""
        prop = await live_property(self._s, fields["property_id"])
        check_in, check_out, unit_id = stay_in(prop, fields)
        stay = {
            "guest_name": fields["guest_name"],
            "check_in": check_in,
            "check_out": check_out,
            "unit_id": unit_id,
            "property_id": prop.property_id,
        }
        return [api for name, api in IDENTITY.items() if getattr(existing, name) != stay[name]]

    def _news(self, existing: Booking, fields: dict[str, Any]) -> dict[str, Any]:
        """What the row says that the booking does not: its status always; the details only where the row gives
        them (an export without a contact column does not erase the contact a manager typed)."""
        news: dict[str, Any] = {"status": fields["status"]}
        for name in ("guest_contact", "notes"):
            if fields[name]:
                news[name] = fields[name]
        if fields["earnings"] is not None:
            news.update(earnings=fields["earnings"], earnings_currency=fields["earnings_currency"])
        if fields["booked_at"] is not None:
            news["booked_at"] = fields["booked_at"]
        if self._layout in COUNTED_LAYOUTS:
            news.update({k: fields[k] for k in ("adults", "children", "infants")})
        return {k: v for k, v in news.items() if getattr(existing, k) != v}

    async def _conflict(
        self, number: int, kind: str, existing: Booking | None, fields: dict[str, Any], differences: list[str]
    ) -> dict[str, Any]:
        prop = None
        if existing is not None:
            prop = await self._s.get(aggregate_id("property", existing.property_id), Property)
        wanted = await self._s.get(aggregate_id("property", fields["property_id"]), Property)
        new = {k: v for k, v in fields.items() if k not in ("property_id", "earnings", "booked_at")}
        new.update(
            property=fields["property_id"],
            earnings=None if fields["earnings"] is None else str(fields["earnings"]),
            booked_at=_iso(fields["booked_at"]),
        )
        if wanted is not None:  # the stay as instants, so a later resolution means what the row meant
            for name, default in (("check_in_date", CHECK_IN_TIME), ("check_out_date", CHECK_OUT_TIME)):
                with contextlib.suppress(ValidationFailed):
                    new[name] = _iso(stay_moment(name, fields[name], wanted.timezone, default))
        return {
            "row_number": number,
            "conflict_type": kind,
            "existing_booking": None if existing is None else _described(existing, prop),
            "new_booking": new,
            "differences": differences,
        }


def _as_fields(new: dict[str, Any]) -> dict[str, Any]:
    """A conflict's `new_booking` as a booking command's fields again."""
    fields = {k: v for k, v in new.items() if k != "property"}
    fields["property_id"] = new["property"]
    if fields.get("booked_at"):
        fields["booked_at"] = datetime.fromisoformat(fields["booked_at"].replace("Z", "+00:00"))
    return checked_fields({**DEFAULTS, **fields})


@dataclass(frozen=True)
class Resolution:
    row_number: int
    action: str
    outcome: str  # "applied" or "failed"
    message: str = ""


class ImportCommands(Commands):
    def __init__(self, store: Any, ids: Any, media: MediaStore, property_names: PropertyNames):
        super().__init__(store, ids)
        self.media = media
        self._property_names = property_names

    async def _check_property(self, property_id: int | None) -> None:
        if property_id is None:
            return
        prop = await self.peek().get(aggregate_id("property", property_id), Property)
        if prop is None or prop.is_archived:
            raise ValidationFailed.one("property_id", f'Invalid pk "{property_id}" - object does not exist.')

    async def read(self, data: bytes, file_name: str, sheet_name: str | None) -> Sheet:
        try:
            return await anyio.to_thread.run_sync(read_bookings, data, file_name, sheet_name)
        except BadSpreadsheet as bad:
            raise ValidationFailed.one("file", str(bad)) from None

    async def start(
        self, actor: Actor, data: bytes, file_name: str, property_id: int | None, sheet_name: str | None
    ) -> Outcome[str]:
        """Check the file as a whole (a bad file is a 400 and applies nothing), keep it, and record the import;
        the import policy applies its rows."""
        require_admin(actor.role)
        if sheet_name is not None and check_text(sheet_name, SHEET_NAME_MAX):
            raise ValidationFailed.one("sheet_name", check_text(sheet_name, SHEET_NAME_MAX)[0])
        await self._check_property(property_id)
        sheet = await self.read(data, file_name, sheet_name)
        number = await self.ids.next("booking-import")
        stored_as = f"imports/{import_name(number)}.{file_name.rsplit('.', 1)[-1].lower()}"
        await anyio.to_thread.run_sync(self.media.save, stored_as, data)
        errors = [asdict(e) for e in sheet.errors]
        job = BookingImport(
            number=number,
            file_name=_file_name(file_name),
            stored_as=stored_as,
            sheet_name=sheet_name,
            property_id=property_id,
            layout=sheet.layout,
            total_rows=sheet.total_rows,
            refused_rows=sheet.total_rows - sheet.rows.height,
            errors=errors[:ERRORS_KEPT],
            error_count=len(errors),
            actor_id=actor.id,
        )

        async def decide(s: Session) -> str:
            s.add(job)
            return job.name

        return await self.execute(decide, retry=True)

    async def preview(
        self, actor: Actor, data: bytes, file_name: str, property_id: int | None, sheet_name: str | None
    ) -> tuple[Sheet, Applied]:
        """What an import would do, decided on one session that is never saved (a dry run)."""
        require_admin(actor.role)
        await self._check_property(property_id)
        sheet = await self.read(data, file_name, sheet_name)
        rows = readable_rows(sheet).to_dicts()
        fake = list(range(-1, -len(rows) - 1, -1))  # ids that are never saved
        applier = RowApplier(self.peek(), await self._property_names(), property_id, sheet.layout)
        done = Applied(errors=[asdict(e) for e in sheet.errors])
        done.add(await applier.apply(rows, fake, fake, actor.id))
        return sheet, done

    async def run(self, number: int, progress: Callable[[int, int], None] | None = None) -> None:
        """Apply the rows of import `number` not yet applied, then finish it. Safe to run twice at once: a chunk
        is saved with the import's progress, so only one run saves each chunk."""
        job = await self.peek(fresh=True).get(BookingImport.create_id(number), BookingImport)
        if job is None or job.status != "processing":
            return
        data = await anyio.to_thread.run_sync(self.media.read, job.stored_as)
        if data is None:
            await self._fail(number, "The uploaded file is no longer stored; upload it again.")
            return
        try:
            # The stored name keeps the extension the reader decides by (the shown file name may be cut short).
            sheet = await anyio.to_thread.run_sync(read_bookings, data, job.stored_as, job.sheet_name)
        except BadSpreadsheet as bad:
            await self._fail(number, str(bad))
            return
        rows = readable_rows(sheet)
        names = await self._property_names()
        position = job.position
        try:
            while position < rows.height:
                chunk = rows.slice(position, CHUNK).to_dicts()
                position = await self._chunk(number, position, chunk, names, sheet)
                if progress is not None:
                    progress(position, rows.height)
        except LostRaces:
            raise  # lost races for longer than a retry lasts: the policy runs the import again later
        except Exception:
            log.exception("import %s stopped at row %s", import_name(number), position)
            await self._fail(number, f"The import stopped after {position} rows: an internal error.")
            return
        await self.execute(lambda s: self._finish(s, number), retry=True)

    async def _chunk(
        self, number: int, start: int, rows: list[dict[str, Any]], names: dict[str, list[int]], sheet: Sheet
    ) -> int:
        booking_ids = await self.ids.reserved("booking", len(rows))
        task_ids = await self.ids.reserved("task", len(rows))

        async def decide(s: Session) -> int:
            job = await s.get(BookingImport.create_id(number), BookingImport)
            if job is None or job.status != "processing" or job.position != start:
                return job.position if job is not None else start + len(rows)  # another run has done this chunk
            applier = RowApplier(s, names, job.property_id, sheet.layout)
            done = await applier.apply(rows, booking_ids, task_ids, job.created_by)
            job.chunk_applied(
                start=start,
                end=start + len(rows),
                created=done.created,
                updated=done.updated,
                unchanged=done.unchanged,
                conflicts=done.conflicts,
                errors=done.errors,
            )
            return job.position

        # Checked copies: a row is compared with bookings and calendars another process may have changed.
        return (await self.execute(decide, retry=True, checked=True)).result

    @staticmethod
    async def _finish(s: Session, number: int) -> None:
        job = await s.get(BookingImport.create_id(number), BookingImport)
        if job is not None:
            job.finish()

    async def _fail(self, number: int, reason: str) -> None:
        async def decide(s: Session) -> None:
            job = await s.get(BookingImport.create_id(number), BookingImport)
            if job is not None:
                job.fail(reason)

        await self.execute(decide, retry=True)

    async def resolve(
        self, actor: Actor, name: str, number: int, resolutions: list[tuple[int, str]]
    ) -> Outcome[list[Resolution]]:
        """Apply each resolution in its own transaction (one that fails, such as a new booking that still
        overlaps, leaves its conflict waiting and the others applied)."""
        require_admin(actor.role)
        # From the table: the conflicts were recorded by the process that ran the import.
        job = require_import(await self.peek(fresh=True).get(BookingImport.create_id(number), BookingImport), name)
        check_resolutions(job, resolutions)
        results, last = [], 0
        for row_number, action in resolutions:
            try:
                done = await self._resolve_one(actor, number, row_number, action)
            except (ValidationFailed, OverlapConflict) as refused:
                message = (
                    "; ".join(f"{k}: {' '.join(v)}" for k, v in refused.details.items())
                    if isinstance(refused, ValidationFailed)
                    else str(refused)
                )
                results.append(Resolution(row_number, action, "failed", message))
            else:
                last = max(last, done.position)
                results.append(Resolution(row_number, action, "applied"))
        return Outcome(results, last)

    async def _resolve_one(self, actor: Actor, number: int, row_number: int, action: str) -> Outcome[None]:
        booking_id = await self.ids.next("booking") if action == "create_new" else None
        task_id = await self.ids.next("task") if action == "create_new" else None

        async def decide(s: Session) -> None:
            job = require_import(await s.get(BookingImport.create_id(number), BookingImport), import_name(number))
            conflict = job.conflicts.get(row_number)
            if conflict is None or conflict["resolution"] is not None:
                raise ValidationFailed.one("row_number", "This conflict is no longer waiting.")
            fields = _as_fields(conflict["new_booking"])
            made: int | None = None
            if action == "create_new":
                assert booking_id is not None and task_id is not None
                s.add(await new_booking(s, booking_id, task_id, fields, actor.id))
                made = booking_id
            elif action == "update_existing":
                target = await self._target(s, conflict, fields)
                await change_booking(s, target, fields, actor.id)
                made = target.booking_id
            job.resolve(row_number, action, made, actor.id)

        return await self.execute(decide, retry=True, checked=True)

    @staticmethod
    async def _target(s: Session, conflict: dict[str, Any], fields: dict[str, Any]) -> Booking:
        """The booking `update_existing` writes the row onto: the conflict's, or (an in-file duplicate whose first
        row was applied since) the holder of the row's code."""
        existing = conflict["existing_booking"]
        booking_id = existing["id"] if existing else None
        if booking_id is None and fields["external_code"]:
            key = await s.get(_key_id(fields), UniqueKey)
            booking_id = key.owner_id if key is not None else None
        found = await s.get(Booking.create_id(booking_id), Booking) if booking_id is not None else None
        if found is None:
            raise ValidationFailed.one("action", "There is no existing booking to update: use create_new or skip.")
        return found


class ImportPolicy(Policy):
    """Runs each import recorded: the API records it and answers 202; a process that runs projections applies
    it. After a crash the batch is answered again, and each import resumes at its recorded progress."""

    name = "booking-imports"
    event_classes = (BookingImport.Started,)
    batch = 20

    def __init__(self, app: Any, db: Any, commands: ImportCommands):
        super().__init__(app, db)
        self._commands = commands

    async def answer(self, notifications: Sequence[Any]) -> None:
        for n in notifications:
            job = await self._commands.peek(fresh=True).get(n.originator_id, BookingImport)
            if job is not None:
                await self._commands.run(job.number)
