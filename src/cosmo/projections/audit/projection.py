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
from cosmo.storage.db import Cursor

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

    def record(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        aggregate = type(e).__qualname__.split(".")[0]
        entity, id_field = ENTITIES.get(aggregate, (aggregate.lower(), None))
        fields = dict(vars(e))
        originator = str(e.originator_id)
        if e.originator_version == 1:
            entity_id = fields.get(id_field) if id_field else None
            cur.execute(
                f"INSERT INTO {t['audit_entities_view']} (originator_id, entity, entity_id) VALUES (%s, %s, %s)"
                " ON CONFLICT (originator_id) DO NOTHING",
                (originator, entity, str(entity_id) if entity_id is not None else originator),
            )
        cur.execute(
            f"INSERT INTO {t['audit_events_view']} (position, originator_id, version, entity, event_type, actor,"
            " occurred_at, data) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (
                self.position,
                originator,
                e.originator_version,
                entity,
                type(e).__qualname__,
                actor_of(fields, aggregate),
                e.timestamp,
                encoded(redacted(fields, aggregate)),
            ),
        )
