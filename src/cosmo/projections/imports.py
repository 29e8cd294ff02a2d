"""The bookings imports read model: each import's progress and counts, and its waiting and resolved conflicts and
refused rows, one row each (an import of 100,000 rows may have as many)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import msgspec

from cosmo.domain.actors import Actor, require_admin
from cosmo.domain.errors import NotFound
from cosmo.domain.imports import BookingImport, import_name
from cosmo.projections.base import Index, Projection, Table, handles, update_row
from cosmo.projections.queries import PageRequest, Reader, Slice, page_of
from cosmo.storage.db import Cursor

IMPORT_COLUMNS = """
    id bigint NOT NULL,
    uuid text NOT NULL,
    status text NOT NULL,
    file_name text NOT NULL,
    sheet_name text,
    property_id bigint,
    layout text NOT NULL,
    total_rows bigint NOT NULL,
    processed_rows bigint NOT NULL,
    created bigint NOT NULL,
    updated bigint NOT NULL,
    unchanged bigint NOT NULL,
    error_count bigint NOT NULL,
    conflicts_found bigint NOT NULL,
    reason text NOT NULL,
    created_by bigint NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
"""
# kind: "conflict" (body: the conflict; resolution, resolved_booking once decided) or "error" (body: the error).
ROW_COLUMNS = """
    import_id bigint NOT NULL,
    kind text NOT NULL,
    row_number bigint NOT NULL,
    seq bigint NOT NULL,
    body text NOT NULL,
    resolution text,
    resolved_booking bigint
"""
# What a detail shows inline of each (the counts tell the rest).
SHOWN = 1000


class ImportsProjection(Projection):
    name = "booking_imports"
    version = 1
    tables = (
        Table("booking_imports_view", IMPORT_COLUMNS, "id", (Index("uuid", "uuid", unique=True),)),
        Table("booking_import_rows_view", ROW_COLUMNS, "import_id, kind, row_number, seq"),
    )

    @staticmethod
    def _id(cur: Cursor, t: dict[str, str], e: Any) -> int | None:
        row = cur.execute(f"SELECT id FROM {t['booking_imports_view']} WHERE uuid = %s", (str(e.originator_id),))
        found = row.fetchone()
        return None if found is None else int(found["id"])

    @handles(BookingImport.Started)
    def started(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        row = {
            "id": e.number,
            "uuid": str(e.originator_id),
            "status": "processing",
            "file_name": e.file_name,
            "sheet_name": e.sheet_name,
            "property_id": e.property_id,
            "layout": e.layout,
            "total_rows": e.total_rows,
            "processed_rows": e.refused_rows,
            "created": 0,
            "updated": 0,
            "unchanged": 0,
            "error_count": e.error_count,
            "conflicts_found": 0,
            "reason": "",
            "created_by": e.actor_id,
            "created_at": e.timestamp,
            "updated_at": e.timestamp,
        }
        cur.execute(
            f"INSERT INTO {t['booking_imports_view']} ({', '.join(row)}) VALUES ({', '.join(['%s'] * len(row))})",
            tuple(row.values()),
        )
        self._insert(cur, t, e.number, "error", e.errors)

    @staticmethod
    def _insert(cur: Cursor, t: dict[str, str], import_id: int, kind: str, bodies: list[dict[str, Any]]) -> None:
        """Conflicts or errors; `seq` keeps one row's several errors apart (they all come in one event)."""
        seen: dict[int, int] = {}
        for body in bodies:
            seq = seen[body["row_number"]] = seen.get(body["row_number"], -1) + 1
            cur.execute(
                f"INSERT INTO {t['booking_import_rows_view']} (import_id, kind, row_number, seq, body)"
                " VALUES (%s, %s, %s, %s, %s)",
                (import_id, kind, body["row_number"], seq, json.dumps(body)),
            )

    @handles(BookingImport.ChunkApplied)
    def chunk_applied(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        import_id = self._id(cur, t, e)
        if import_id is None:
            return
        cur.execute(
            f"UPDATE {t['booking_imports_view']} SET processed_rows = processed_rows + %s,"
            " created = created + %s, updated = updated + %s, unchanged = unchanged + %s,"
            " error_count = error_count + %s, conflicts_found = conflicts_found + %s, updated_at = %s WHERE id = %s",
            (
                e.end - e.start,
                e.created,
                e.updated,
                e.unchanged,
                len(e.errors),
                len(e.conflicts),
                e.timestamp,
                import_id,
            ),
        )
        self._insert(cur, t, import_id, "conflict", e.conflicts)
        self._insert(cur, t, import_id, "error", e.errors)

    @handles(BookingImport.Finished)
    def finished(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        update_row(
            cur,
            t["booking_imports_view"],
            {"status": e.status, "updated_at": e.timestamp},
            "uuid",
            str(e.originator_id),
        )

    @handles(BookingImport.Failed)
    def failed(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        columns = {"status": "failed", "reason": e.reason, "updated_at": e.timestamp}
        update_row(cur, t["booking_imports_view"], columns, "uuid", str(e.originator_id))

    @handles(BookingImport.ConflictResolved)
    def resolved(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        import_id = self._id(cur, t, e)
        if import_id is None:
            return
        cur.execute(
            f"UPDATE {t['booking_import_rows_view']} SET resolution = %s, resolved_booking = %s"
            " WHERE import_id = %s AND kind = 'conflict' AND row_number = %s",
            (e.action, e.booking_id, import_id, e.row_number),
        )
        counted = {"update_existing": "updated", "create_new": "created"}.get(e.action)
        bump = f", {counted} = {counted} + 1" if counted else ""
        cur.execute(
            f"UPDATE {t['booking_imports_view']} SET updated_at = %s{bump} WHERE id = %s", (e.timestamp, import_id)
        )


ALL = (ImportsProjection,)


# -- queries -------------------------------------------------------------------------------------------------------


class BookingRef(msgspec.Struct):
    id: int
    external_code: str
    source: str
    guest_name: str
    check_in_date: str | None
    check_out_date: str | None
    property: int
    unit: str | None
    status: str


class ImportConflict(msgspec.Struct):
    row_number: int
    conflict_type: str
    existing_booking: BookingRef | None
    new_booking: dict[str, Any]
    differences: list[str]
    resolution: str | None = None
    resolved_booking: int | None = None


class RowError(msgspec.Struct):
    row_number: int
    field: str
    message: str


class ImportOut(msgspec.Struct):
    """The contract's import body, and what it leaves out: the counts, the refused rows, the outcome."""

    import_id: str
    status: str
    file_name: str
    sheet_name: str | None
    property_id: int | None
    layout: str
    total_rows: int
    processed_rows: int
    conflicts_found: int
    conflicts_waiting: int
    conflicts: list[ImportConflict]
    created: int
    updated: int
    unchanged: int
    error_count: int
    errors: list[RowError]
    reason: str
    created_at: datetime
    updated_at: datetime


class ImportSummary(msgspec.Struct):
    import_id: str
    status: str
    file_name: str
    total_rows: int
    processed_rows: int
    conflicts_found: int
    created: int
    updated: int
    unchanged: int
    error_count: int
    created_at: datetime


IMPORT_SELECT = (
    "id, status, file_name, sheet_name, property_id, layout, total_rows, processed_rows, created, updated,"
    " unchanged, error_count, conflicts_found, reason, created_at, updated_at"
)
_conflict = msgspec.json.Decoder(ImportConflict)
_error = msgspec.json.Decoder(RowError)


def _summary(row: dict[str, Any]) -> ImportSummary:
    return ImportSummary(
        import_id=import_name(row["id"]),
        status=row["status"],
        file_name=row["file_name"],
        total_rows=row["total_rows"],
        processed_rows=row["processed_rows"],
        conflicts_found=row["conflicts_found"],
        created=row["created"],
        updated=row["updated"],
        unchanged=row["unchanged"],
        error_count=row["error_count"],
        created_at=row["created_at"],
    )


class ImportQueries:
    """Superusers and managers read imports (they hold guests' details as the files had them)."""

    def __init__(self, read: Reader):
        self._read = read

    async def detail(self, actor: Actor, number: int) -> ImportOut:
        require_admin(actor.role)
        rows = await self._read.fetch_many(
            [
                (f"SELECT {IMPORT_SELECT} FROM booking_imports_view WHERE id = %s", (number,)),
                (
                    "SELECT kind, body, resolution, resolved_booking FROM booking_import_rows_view"
                    " WHERE import_id = %s AND kind = 'conflict' ORDER BY (resolution IS NULL) DESC, row_number"
                    " LIMIT %s",
                    (number, SHOWN),
                ),
                (
                    "SELECT body FROM booking_import_rows_view WHERE import_id = %s AND kind = 'error'"
                    " ORDER BY row_number, seq LIMIT %s",
                    (number, SHOWN),
                ),
                (
                    "SELECT COUNT(*) AS n FROM booking_import_rows_view"
                    " WHERE import_id = %s AND kind = 'conflict' AND resolution IS NULL",
                    (number,),
                ),
            ]
        )
        if not rows[0]:
            raise NotFound(f"import {import_name(number)}")
        row = rows[0][0]
        conflicts = []
        for c in rows[1]:
            found = _conflict.decode(c["body"])
            found.resolution, found.resolved_booking = c["resolution"], c["resolved_booking"]
            conflicts.append(found)
        return ImportOut(
            import_id=import_name(row["id"]),
            status=row["status"],
            file_name=row["file_name"],
            sheet_name=row["sheet_name"],
            property_id=row["property_id"],
            layout=row["layout"],
            total_rows=row["total_rows"],
            processed_rows=row["processed_rows"],
            conflicts_found=row["conflicts_found"],
            conflicts_waiting=int(rows[3][0]["n"]),
            conflicts=conflicts,
            created=row["created"],
            updated=row["updated"],
            unchanged=row["unchanged"],
            error_count=row["error_count"],
            errors=[_error.decode(r["body"]) for r in rows[2]],
            reason=row["reason"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    async def page(self, actor: Actor, request: PageRequest) -> Slice[ImportSummary]:
        require_admin(actor.role)
        return await page_of(
            self._read,
            request,
            select=IMPORT_SELECT,
            from_where="FROM booking_imports_view WHERE TRUE",
            params=[],
            order_by="created_at DESC, id DESC",
            shape=_summary,
        )
