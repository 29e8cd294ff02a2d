"""What auditors (and superusers) read of the log: events by cursor with filters, one entity's history with what
changed between versions, the export's pages, and the audit chain's latest seal and verification. An entity as of
an instant is rebuilt from the event store (states.py); this module finds the version."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from cosmo.domain.actors import Actor
from cosmo.domain.errors import NotFound, PermissionDenied, ValidationFailed
from cosmo.projections.queries import Reader

AUDIT_ROLES = ("auditor", "superuser", "system")
MAX_PAGE = 500
EXPORT_CHUNK = 1000


def check_range(after: datetime | None, before: datetime | None) -> None:
    """An export's range: `after` (inclusive) must come before `before` (exclusive)."""
    if after is not None and before is not None and after >= before:
        raise ValidationFailed.one("before", "Must be later than after.")


def require_auditor(actor: Actor) -> None:
    if actor.role not in AUDIT_ROLES:
        raise PermissionDenied("auditors and superusers only")


class AuditEvent(msgspec.Struct):
    cursor: int
    entity: str
    entity_id: str
    version: int
    type: str
    timestamp: datetime
    actor: int | None
    data: dict[str, Any]
    hash: str | None  # the event's link in the audit chain (hex); None until the chain has reached it


class Seal(msgspec.Struct):
    seq: int
    up_to: int  # the cursor of the last event it seals
    events: int  # events since the previous seal
    running: str  # the running hash over every link up to `up_to` (hex)
    key_id: str
    signature: str
    sealed_at: datetime


class Problem(msgspec.Struct):
    kind: str
    cursor: int
    message: str


class Verification(msgspec.Struct):
    started_at: datetime
    finished_at: datetime
    since: int
    up_to: int
    events: int
    seals: int
    unchained: int
    ok: bool
    problem: Problem | None


class ChainStatus(msgspec.Struct):
    chained_up_to: int  # the cursor the chain has reached
    latest_seal: Seal | None
    last_verification: Verification | None


class EventPage(msgspec.Struct):
    results: list[AuditEvent]
    next_cursor: int | None  # pass as `cursor` for the next page; None: no more


class Change(msgspec.Struct):
    before: Any
    after: Any


class HistoryEntry(msgspec.Struct):
    cursor: int
    version: int
    type: str
    timestamp: datetime
    actor: int | None
    data: dict[str, Any]
    hash: str | None
    changes: dict[str, Change]  # what the event changed in the entity's state


class History(msgspec.Struct):
    entity: str
    entity_id: str
    versions: list[HistoryEntry]


@dataclass(frozen=True)
class EventFilters:
    entity: str | None = None
    entity_id: str | None = None
    type: str | None = None
    actor: int | None = None
    after: datetime | None = None
    before: datetime | None = None
    since: int | None = None  # a cursor: only events after it


SELECT = (
    "e.position, x.entity, x.entity_id, e.version, e.event_type, e.occurred_at, e.actor, e.data, c.hash"
    " FROM audit_events_view e JOIN audit_entities_view x ON x.originator_id = e.originator_id"
    " LEFT JOIN audit_chain c ON c.position = e.position"
)
_data = msgspec.json.Decoder(dict[str, Any])


def event_out(row: dict[str, Any]) -> AuditEvent:
    return AuditEvent(
        cursor=row["position"],
        entity=row["entity"],
        entity_id=row["entity_id"],
        version=row["version"],
        type=row["event_type"],
        timestamp=row["occurred_at"],
        actor=row["actor"],
        data=_data.decode(row["data"]),
        hash=bytes(row["hash"]).hex() if row["hash"] is not None else None,
    )


def _where(filters: EventFilters) -> tuple[list[str], list[Any]]:
    where, params = [], []
    for column, value in (
        ("x.entity", filters.entity),
        ("x.entity_id", filters.entity_id),
        ("e.event_type", filters.type),
        ("e.actor", filters.actor),
    ):
        if value is not None:
            where.append(f"{column} = %s")
            params.append(value)
    if filters.after is not None:
        where.append("e.occurred_at >= %s")
        params.append(filters.after)
    if filters.before is not None:
        where.append("e.occurred_at < %s")
        params.append(filters.before)
    if filters.since is not None:
        where.append("e.position > %s")
        params.append(filters.since)
    return where, params


class AuditQueries:
    def __init__(self, read: Reader):
        self._read = read

    async def events(
        self, actor: Actor, filters: EventFilters, newest_first: bool, cursor: int | None, size: int
    ) -> EventPage:
        require_auditor(actor)
        where, params = _where(filters)
        if cursor is not None:
            where.append("e.position < %s" if newest_first else "e.position > %s")
            params.append(cursor)
        size = max(1, min(size, MAX_PAGE))
        rows = await self._read.fetchall(
            f"SELECT {SELECT} WHERE {' AND '.join(where) or 'TRUE'}"
            f" ORDER BY e.position {'DESC' if newest_first else 'ASC'} LIMIT %s",
            (*params, size + 1),
        )
        more = len(rows) > size
        results = [event_out(r) for r in rows[:size]]
        return EventPage(results, results[-1].cursor if more else None)

    async def originator(self, actor: Actor, entity: str, entity_id: str) -> str:
        """The aggregate id behind an entity (404 when there is none)."""
        require_auditor(actor)
        row = await self._read.fetchone(
            "SELECT originator_id FROM audit_entities_view WHERE entity = %s AND entity_id = %s", (entity, entity_id)
        )
        if row is None:
            raise NotFound(f"{entity} {entity_id}")
        return row["originator_id"]

    async def history(
        self, actor: Actor, entity: str, entity_id: str, changed: list[dict[str, dict[str, Any]]]
    ) -> History:
        """`changed`: what each version changed (from the event store, secrets hidden), in version order."""
        originator = await self.originator(actor, entity, entity_id)
        rows = await self._read.fetchall(
            f"SELECT {SELECT} WHERE e.originator_id = %s ORDER BY e.version", (originator,)
        )
        versions = []
        for row, changes in zip(rows, changed, strict=False):
            event = event_out(row)
            versions.append(
                HistoryEntry(
                    event.cursor,
                    event.version,
                    event.type,
                    event.timestamp,
                    event.actor,
                    event.data,
                    event.hash,
                    {k: Change(v["before"], v["after"]) for k, v in changes.items()},
                )
            )
        return History(entity, entity_id, versions)

    async def version_at(self, actor: Actor, entity: str, entity_id: str, moment: datetime) -> tuple[str, int]:
        """The aggregate id and its last version at or before `moment` (404 before the entity existed)."""
        originator = await self.originator(actor, entity, entity_id)
        row = await self._read.fetchone(
            "SELECT max(version) AS v FROM audit_events_view WHERE originator_id = %s AND occurred_at <= %s",
            (originator, moment),
        )
        if row is None or row["v"] is None:
            raise NotFound(f"{entity} {entity_id} did not exist at {moment.isoformat()}")
        return originator, int(row["v"])

    async def export(self, actor: Actor, after: datetime | None, before: datetime | None) -> AsyncIterator[AuditEvent]:
        """Every event in the time range, oldest first, read a chunk at a time (never the whole log at once)."""
        require_auditor(actor)
        position = 0
        while True:
            where, params = _where(EventFilters(after=after, before=before, since=position))
            rows = await self._read.fetchall(
                f"SELECT {SELECT} WHERE {' AND '.join(where)} ORDER BY e.position LIMIT %s", (*params, EXPORT_CHUNK)
            )
            for row in rows:
                yield event_out(row)
            if len(rows) < EXPORT_CHUNK:
                return
            position = rows[-1]["position"]

    async def chain_status(self, actor: Actor) -> ChainStatus:
        require_auditor(actor)
        head, seal, check = await self._read.fetch_many(
            [
                ("SELECT position FROM audit_chain_head WHERE id = 1", ()),
                ("SELECT * FROM audit_seals ORDER BY seq DESC LIMIT 1", ()),
                ("SELECT * FROM audit_verifications ORDER BY id DESC LIMIT 1", ()),
            ]
        )
        latest = None
        if seal:
            s = seal[0]
            latest = Seal(
                s["seq"],
                s["up_to"],
                s["events"],
                bytes(s["running"]).hex(),
                s["key_id"],
                s["signature"],
                s["sealed_at"],
            )
        last = None
        if check:
            v = check[0]
            problem = Problem(v["problem_kind"], v["problem_position"], v["problem"]) if v["problem_kind"] else None
            last = Verification(
                v["started_at"],
                v["finished_at"],
                v["since"],
                v["up_to"],
                v["events"],
                v["seals"],
                v["unchained"],
                bool(v["ok"]),
                problem,
            )
        return ChainStatus(int(head[0]["position"]) if head else 0, latest, last)
