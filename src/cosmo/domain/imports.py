"""A bookings import: a spreadsheet's rows applied chunk by chunk, each chunk's bookings saved with the record of
the import's progress, so an import interrupted by a crash resumes at the first row it had not applied and
creates nothing twice. Conflicting rows wait for a person's decision (`resolve`)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from cosmo.domain.errors import NotFound, ValidationFailed
from cosmo.domain.ids import SNAPSHOT_EVERY, aggregate_id

ACTIONS = ("update_existing", "create_new", "skip")
# The row errors an import keeps (a file of 100,000 bad rows is told by its count and its first errors).
ERRORS_KEPT = 1000
PREFIX = "imp_"


def import_name(number: int) -> str:
    return f"{PREFIX}{number}"


def import_number(name: str) -> int | None:
    digits = name[len(PREFIX) :] if name.startswith(PREFIX) else ""
    return int(digits) if digits.isascii() and digits.isdigit() and len(digits) <= 18 else None


class BookingImport(Aggregate):
    snapshot_every = SNAPSHOT_EVERY

    @staticmethod
    def create_id(number: int) -> UUID:
        return aggregate_id("booking-import", number)

    @event("Started")
    def __init__(
        self,
        number: int,
        file_name: str,
        stored_as: str,
        sheet_name: str | None,
        property_id: int | None,
        layout: str,
        total_rows: int,
        refused_rows: int,
        errors: list[dict[str, Any]],
        error_count: int,
        actor_id: int,
    ):
        """`refused_rows`: how many rows the spreadsheet reader refused; `errors`: why, {row_number, field,
        message} (at most ERRORS_KEPT); `error_count`: how many errors there were."""
        self.number = number
        self.file_name = file_name
        self.stored_as = stored_as
        self.sheet_name = sheet_name
        self.property_id = property_id
        self.layout = layout
        self.total_rows = total_rows
        self.refused_rows = refused_rows
        self.errors = errors
        self.error_count = error_count
        self.created_by = actor_id
        self.status = "processing"
        self.position = 0  # how many of the readable rows are applied
        self.created = self.updated = self.unchanged = 0
        self.conflicts: dict[int, dict[str, Any]] = {}  # row number -> conflict (with its `resolution`)
        self.reason = ""

    @property
    def name(self) -> str:
        return import_name(self.number)

    def open_conflicts(self) -> list[int]:
        return [row for row, c in self.conflicts.items() if c["resolution"] is None]

    @event("ChunkApplied")
    def chunk_applied(
        self,
        start: int,
        end: int,
        created: int,
        updated: int,
        unchanged: int,
        conflicts: list[dict[str, Any]],
        errors: list[dict[str, Any]],
    ) -> None:
        """Rows `start` to `end` (of the readable rows) applied: the counts, the rows that wait for review, and the
        rows refused while applying (an unknown unit, say)."""
        self.position = end
        self.created += created
        self.updated += updated
        self.unchanged += unchanged
        for conflict in conflicts:
            self.conflicts[conflict["row_number"]] = {**conflict, "resolution": None}
        room = max(0, ERRORS_KEPT - len(self.errors))
        self.errors = self.errors + errors[:room]
        self.error_count += len(errors)

    def finish(self) -> None:
        if self.status == "processing":
            self._finished("needs_review" if self.open_conflicts() else "completed")

    @event("Finished")
    def _finished(self, status: str) -> None:
        self.status = status

    def fail(self, reason: str) -> None:
        if self.status == "processing":
            self._failed(reason[:1000])

    @event("Failed")
    def _failed(self, reason: str) -> None:
        self.status = "failed"
        self.reason = reason

    def resolve(self, row_number: int, action: str, booking_id: int | None, actor_id: int) -> None:
        self._resolved(row_number, action, booking_id, actor_id)
        if self.status == "needs_review" and not self.open_conflicts():
            self._finished("completed")  # the last waiting conflict resolved

    @event("ConflictResolved")
    def _resolved(self, row_number: int, action: str, booking_id: int | None, actor_id: int) -> None:
        conflict = self.conflicts[row_number]
        self.conflicts[row_number] = {**conflict, "resolution": action, "resolved_booking": booking_id}
        if action == "update_existing":
            self.updated += 1
        elif action == "create_new":
            self.created += 1


def check_resolutions(found: BookingImport, resolutions: list[tuple[int, str]]) -> None:
    """Refuse the whole request (nothing applied) when a resolution names no waiting conflict or repeats a row."""
    problems: dict[str, list[str]] = {}
    waiting = set(found.open_conflicts())
    seen: set[int] = set()
    for i, (row_number, action) in enumerate(resolutions):
        if action not in ACTIONS:
            problems[f"resolutions[{i}].action"] = [f"Choose one of: {', '.join(ACTIONS)}."]
        if row_number in seen:
            problems[f"resolutions[{i}].row_number"] = ["This row is named twice."]
        elif row_number not in waiting:
            problems[f"resolutions[{i}].row_number"] = ["No conflict of this import waits on this row."]
        seen.add(row_number)
    if not resolutions:
        problems["resolutions"] = ["Name at least one conflict to resolve."]
    if problems:
        raise ValidationFailed(problems)


def require_import(found: BookingImport | None, name: str) -> BookingImport:
    if found is None:
        raise NotFound(f"import {name}")
    return found
