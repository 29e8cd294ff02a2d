"""The audit log: every stored event, in log order, as auditors read it: which entity it belongs to, its type, who
acted, when, and its data with secrets taken out.

It is a projection like any other (rebuilt from the log, tracked exactly once), so the event store stays the only
source of truth; what it adds is an index by entity, type, actor and time, and data already redacted, so the audit
endpoints and the export never decode the log per request and can never leak a secret by forgetting a rule.
"""

from __future__ import annotations

import inspect
from typing import Any

import msgspec
from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic

from cosmo.domain import aggregate_classes
from cosmo.projections.base import Index, Projection, Table
from cosmo.storage.db import Cursor, storable_params

# The aggregate classes' names as the audit API names entities, and the creation event's attribute that holds the
# entity's id in the contract (None: the aggregate's UUID is its id, as for chat rooms and messages).
ENTITIES: dict[str, tuple[str, str | None]] = {
    "Task": ("task", "task_id"),
    "Booking": ("booking", "booking_id"),
    "Calendar": ("calendar", None),
    "Property": ("property", "property_id"),
    "User": ("user", "user_id"),
    "InviteCode": ("invite_code", "invite_id"),
    "UniqueKey": ("unique_key", None),
    "ChatRoom": ("chat_room", None),
    "ChatMessage": ("chat_message", None),
    "ReadMarker": ("read_marker", None),
    "ChecklistTemplate": ("checklist_template", "template_id"),
    "BookingImport": ("booking_import", "number"),
    "Inbox": ("inbox", "user_id"),
    "Webhook": ("webhook", "webhook_id"),
}
ENTITY_NAMES = tuple(sorted({name for name, _ in ENTITIES.values()}))
# Never shown to anyone: credentials and what stands for them.
REDACTED = frozenset({"password_hash", "password", "secret", "previous_secret", "code", "token", "refresh"})
HIDDEN = "[redacted]"
# Fields that are the event's envelope, shown apart.
ENVELOPE = frozenset({"originator_id", "originator_version", "timestamp", "originator_topic"})
SECRET_SCOPES = ("invite-code",)  # unique keys whose value is a credential

COLUMNS = """
    position bigint NOT NULL,
    originator_id text NOT NULL,
    version bigint NOT NULL,
    entity text NOT NULL,
    event_type text NOT NULL,
    actor bigint,
    occurred_at timestamptz NOT NULL,
    data text NOT NULL
"""
ENTITY_COLUMNS = """
    originator_id text NOT NULL,
    entity text NOT NULL,
    entity_id text NOT NULL
"""


def event_classes(cls: type[Aggregate]) -> list[type]:
    """The aggregate's own event classes (Created, Updated...), as the library's decorators made them."""
    return [
        value
        for value in vars(cls).values()
        if inspect.isclass(value)
        and issubclass(value, Aggregate.Event)
        and value.__qualname__.startswith(f"{cls.__name__}.")
    ]


def hidden(fields: dict[str, Any], aggregate: str) -> dict[str, Any]:
    """`fields` (an event's, or an aggregate's state) with every secret replaced: the one rule for the audit API."""
    out = {k: (HIDDEN if k in REDACTED and v is not None else v) for k, v in fields.items()}
    if aggregate == "UniqueKey" and str(fields.get("scope", "")) in SECRET_SCOPES:
        out["value"] = HIDDEN
    return out


def redacted(fields: dict[str, Any], aggregate: str) -> dict[str, Any]:
    return hidden({k: v for k, v in fields.items() if k not in ENVELOPE}, aggregate)


# Aggregates whose events are the user's own doing and name them as `user_id` (reading, registering, using a code).
SELF_ACTED = ("Inbox", "User", "InviteCode")


def actor_of(fields: dict[str, Any], aggregate: str) -> int | None:
    names = ("actor_id", "sender_id", "created_by", *(("user_id",) if aggregate in SELF_ACTED else ()))
    for name in names:
        value = fields.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


# Total: a value of a type JSON does not know is written as its text rather than stopping the projection (which
# reads every event: one it cannot write would hold up every command waiting to read its own write).
_encoder = msgspec.json.Encoder(decimal_format="string", enc_hook=str)


def encoded(data: dict[str, Any]) -> str:
    return _encoder.encode(data).decode()


class AuditProjection(Projection):
    name = "audit"
    version = 2
    tables = (
        Table(
            "audit_events_view",
            COLUMNS,
            "position",
            (
                Index("entity", "originator_id, version"),
                Index("kind", "entity, position"),
                Index("type", "event_type, position"),
                Index("actor", "actor, position"),
                Index("time", "occurred_at, position"),
            ),
        ),
        Table("audit_entities_view", ENTITY_COLUMNS, "originator_id", (Index("id", "entity, entity_id"),)),
    )

    def __init__(self) -> None:
        super().__init__()
        # Every event of every aggregate: registered here rather than with @handles, one by one.
        for cls in aggregate_classes():
            for event_class in event_classes(cls):
                self._handlers[get_topic(event_class)] = type(self).record
        self._events: list[tuple[Any, ...]] = []  # the batch's rows, written by `flush`
        self._entities: list[tuple[str, str, str]] = []

    def record(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        aggregate = type(e).__qualname__.split(".")[0]
        entity, id_field = ENTITIES.get(aggregate, (aggregate.lower(), None))
        fields = dict(vars(e))
        originator = str(e.originator_id)
        if e.originator_version == 1:
            entity_id = fields.get(id_field) if id_field else None
            self._entities.append((originator, entity, str(entity_id) if entity_id is not None else originator))
        self._events.append(
            (
                self.position,
                originator,
                e.originator_version,
                entity,
                type(e).__qualname__,
                actor_of(fields, aggregate),
                e.timestamp,
                encoded(redacted(fields, aggregate)),
            )
        )

    def flush(self, cur: Cursor, t: dict[str, str]) -> None:
        events, entities = self._events, self._entities
        self.discard()
        if entities:
            _insert(cur, t["audit_entities_view"], ENTITY_INSERT, entities, " ON CONFLICT (originator_id) DO NOTHING")
        if events:
            _insert(cur, t["audit_events_view"], EVENT_INSERT, events)

    def discard(self) -> None:
        self._events, self._entities = [], []


# Column names and, for PostgreSQL's packed insert, the type each JSON element is read as.
ENTITY_INSERT = (("originator_id", "text"), ("entity", "text"), ("entity_id", "text"))
EVENT_INSERT = (
    ("position", "bigint"),
    ("originator_id", "text"),
    ("version", "bigint"),
    ("entity", "text"),
    ("event_type", "text"),
    ("actor", "bigint"),
    ("occurred_at", "timestamptz"),
    ("data", "text"),
)


def _insert(
    cur: Cursor, table: str, columns: tuple[tuple[str, str], ...], rows: list[tuple[Any, ...]], suffix: str = ""
) -> None:
    """The audit view is written for every event in the log: on PostgreSQL a batch's rows go as one JSON text in
    one statement, as psycopg binds each row (or array element) in Python at several times the cost. Each value
    is made storable first, as every parameter is (a huge integer in an old event is clamped, not a stalled
    projection)."""
    names = ", ".join(name for name, _ in columns)
    if not cur.is_postgres:
        marks = ", ".join(["%s"] * len(columns))
        cur.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks}){suffix}", rows)
        return
    values = ", ".join(f"(r->>{i})::{kind}" for i, (_, kind) in enumerate(columns))
    cur.execute(
        f"INSERT INTO {table} ({names}) SELECT {values} FROM json_array_elements(%s::json) AS r{suffix}",
        (_encoder.encode([storable_params(row) for row in rows]).decode(),),
    )
