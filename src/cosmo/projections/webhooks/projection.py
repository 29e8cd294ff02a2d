"""The webhook outbox: endpoints, the log's events as webhook messages, and a delivery row for each message each
subscribed endpoint should get.

Messages and endpoints are ordinary projection tables, rebuilt from the log. Delivery rows (`webhook_deliveries`)
are not: the delivery worker writes their progress (attempts, status), so a rebuild must not reset them. Their ids
are derived from the log (the position that asked for the delivery, the message, the endpoint), inserts skip rows
that exist, and a rebuild leaves alone every delivery at or before the newest one already there: what was
delivered is never sent again, and what was still to send keeps its place.

A message's `seq` is its event's position times MESSAGES_PER_EVENT plus its index among that event's messages (a
status change to completed is two: task.status_changed and task.completed). Deliveries of one endpoint and entity
go out in (source_position, seq) order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from uuid import NAMESPACE_URL, uuid5

from cosmo.domain.bookings import Booking
from cosmo.domain.chat import ChatMessage
from cosmo.domain.imports import BookingImport
from cosmo.domain.tasks import Task
from cosmo.domain.webhooks import TEST_EVENT, Webhook
from cosmo.projections.base import Index, Projection, Table, handles
from cosmo.storage.db import Cursor

DELIVERIES = "webhook_deliveries"  # created by migration 0004: not rebuilt (see the module's docstring)
MESSAGES_PER_EVENT = 4
IS_OPEN = "status IN ('pending', 'retrying')"  # still to send (the migration's partial index says the same)
_MESSAGE_NS = uuid5(NAMESPACE_URL, "https://cosmo/webhook-messages")

WEBHOOK_COLUMNS = """
    id bigint NOT NULL,
    uuid text NOT NULL,
    url text NOT NULL,
    event_types text NOT NULL,
    is_active boolean NOT NULL,
    description text NOT NULL,
    secret text NOT NULL,
    previous_secret text,
    previous_until timestamptz,
    disabled_reason text NOT NULL,
    created_by bigint NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
"""

MESSAGE_COLUMNS = """
    message_id text NOT NULL,
    seq bigint NOT NULL,
    event_type text NOT NULL,
    entity text NOT NULL,
    originator_id text NOT NULL,
    originator_version bigint NOT NULL,
    occurred_at timestamptz NOT NULL,
    extra text NOT NULL,
    webhook_id bigint
"""

DELIVERY_FIELDS = (
    "id, webhook_id, message_id, event_type, entity, source_position, seq, request_id, created_at, status, attempts,"
    " next_attempt_at"
)


def message_id(e: Any, event_type: str) -> str:
    """The `webhook-id` receivers deduplicate on: the same for every attempt, redelivery and replay of a message,
    and derived from the event itself (its entity, version and instant), so it stays the same through a rebuild and
    differs between deployments whose integer ids coincide."""
    return "msg_" + uuid5(_MESSAGE_NS, f"{e.originator_id}:{e.originator_version}:{event_type}:{e.timestamp}").hex


def type_filter(types: list[str]) -> str:
    """Event types as the view stores them: ",a,b," (matched with LIKE '%,type,%'), "" for every type."""
    return f",{','.join(types)}," if types else ""


@dataclass(frozen=True)
class Message:
    event_type: str
    entity: str
    extra: dict[str, Any]


def _task_messages(e: Any) -> list[Message]:
    entity = f"task:{e.originator_id}"
    name = type(e).__name__
    if name == "Created":
        return [Message("task.created", entity, {})]
    if name == "Assigned":
        return [Message("task.assigned", entity, {"previous_assigned_to": e.previous_id})]
    if name == "StatusChanged":
        found = [Message("task.status_changed", entity, {"previous_status": e.previous})]
        if e.status == "completed":
            found.append(Message("task.completed", entity, {}))
        return found
    if name == "PhotoAdded":
        return [Message("photo.uploaded", entity, {"photo_id": e.photo_id})]
    if name == "PhotoReviewed":
        return [Message("photo.reviewed", entity, {"photo_id": e.photo_id, "review_note": e.note})]
    return []


class WebhookProjection(Projection):
    name = "webhooks"
    version = 1
    tables = (
        Table("webhooks_view", WEBHOOK_COLUMNS, "id", (Index("uuid", "uuid", unique=True),)),
        Table(
            "webhook_messages_view",
            MESSAGE_COLUMNS,
            "message_id",
            (Index("seq", "seq", unique=True), Index("occurred", "occurred_at, seq")),
        ),
    )

    def __init__(self) -> None:
        super().__init__()
        self._horizon: int | None = None

    # -- deliveries ------------------------------------------------------------------------------------------------

    def _writes_deliveries(self, cur: Cursor) -> bool:
        """Live processing writes deliveries; a rebuild only past the newest delivery it found (see module doc)."""
        if self.live:
            self._horizon = None
            return True
        if self._horizon is None:
            row = cur.execute(f"SELECT max(source_position) AS p FROM {DELIVERIES}").fetchone()
            self._horizon = int(row["p"] or 0) if row else 0
        return self.position > self._horizon

    def _messages(self, cur: Cursor, t: dict[str, str], e: Any, found: list[Message], webhook_id: int | None = None):
        writes = self._writes_deliveries(cur)
        for index, m in enumerate(found):
            seq = self.position * MESSAGES_PER_EVENT + index
            named = message_id(e, m.event_type)
            insert = (
                f"INSERT INTO {t['webhook_messages_view']} (message_id, seq, event_type, entity, originator_id,"
                " originator_version, occurred_at, extra, webhook_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
            )
            params = (
                named,
                seq,
                m.event_type,
                m.entity,
                str(e.originator_id),
                e.originator_version,
                e.timestamp,
                json.dumps(m.extra),
                webhook_id,
            )
            if not (writes and webhook_id is None):
                cur.execute(insert, params)
            elif cur.is_postgres:
                # One statement for the message and its deliveries: consecutive events then repeat one statement,
                # which a batch sends as a single run (two alternating statements are sent one by one).
                cur.execute(
                    f"WITH m AS ({insert}) {self._deliveries_sql(t)}", (*params, *self._deliveries(seq, named, m, e))
                )
            else:
                cur.execute(insert, params)
                cur.execute(self._deliveries_sql(t), self._deliveries(seq, named, m, e))

    @staticmethod
    def _deliveries_sql(t: dict[str, str]) -> str:
        return (
            f"INSERT INTO {DELIVERIES} ({DELIVERY_FIELDS})"
            f" SELECT %s || CAST(w.id AS text), w.id, %s, %s, %s, %s, %s, NULL, %s, 'pending', 0, %s"
            f" FROM {t['webhooks_view']} w WHERE w.is_active AND (w.event_types = '' OR w.event_types LIKE %s)"
            " ON CONFLICT (id) DO NOTHING"
        )

    def _deliveries(self, seq: int, named: str, m: Message, e: Any) -> tuple[Any, ...]:
        return (
            f"d{self.position}-{seq}-",
            named,
            m.event_type,
            m.entity,
            self.position,
            seq,
            e.timestamp,
            e.timestamp,
            f"%,{m.event_type},%",
        )

    # -- the events webhooks carry -----------------------------------------------------------------------------------

    @handles(Task.Created, Task.Assigned, Task.StatusChanged, Task.PhotoAdded, Task.PhotoReviewed)
    def task_event(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        self._messages(cur, t, e, _task_messages(e))

    @handles(Booking.Created)
    def booking_created(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        self._messages(cur, t, e, [Message("booking.created", f"booking:{e.originator_id}", {})])

    @handles(Booking.Updated)
    def booking_updated(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        self._messages(cur, t, e, [Message("booking.updated", f"booking:{e.originator_id}", {})])

    @handles(Booking.Cancelled)
    def booking_cancelled(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        extra = {"previous_status": e.previous}
        self._messages(cur, t, e, [Message("booking.cancelled", f"booking:{e.originator_id}", extra)])

    @handles(BookingImport.Finished, BookingImport.Failed)
    def import_finished(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        self._messages(cur, t, e, [Message("booking.import_completed", f"import:{e.originator_id}", {})])

    @handles(ChatMessage.Sent)
    def message_sent(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        # A room's messages are one entity: receivers get them in the room's order.
        self._messages(cur, t, e, [Message("message.created", f"chat_room:{e.room_id}", {})])

    # -- endpoints -----------------------------------------------------------------------------------------------

    @handles(Webhook.Registered)
    def registered(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        cur.execute(
            f"INSERT INTO {t['webhooks_view']} (id, uuid, url, event_types, is_active, description, secret,"
            " previous_secret, previous_until, disabled_reason, created_by, created_at, updated_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, NULL, NULL, '', %s, %s, %s)",
            (
                e.webhook_id,
                str(e.originator_id),
                e.url,
                type_filter(e.event_types),
                e.is_active,
                e.description,
                e.secret,
                e.actor_id,
                e.timestamp,
                e.timestamp,
            ),
        )

    def _update(self, cur: Cursor, t: dict[str, str], e: Any, columns: dict[str, Any]) -> None:
        assignments = ", ".join(f"{c} = %s" for c in columns)
        cur.execute(
            f"UPDATE {t['webhooks_view']} SET {assignments}, updated_at = %s WHERE uuid = %s",
            (*columns.values(), e.timestamp, str(e.originator_id)),
        )

    def _cancel_open(self, cur: Cursor, t: dict[str, str], e: Any) -> None:
        """An endpoint switched off, disabled or deleted: what it still had to receive is not sent."""
        if self._writes_deliveries(cur):
            cur.execute(
                f"UPDATE {DELIVERIES} SET status = 'cancelled', next_attempt_at = NULL"
                f" WHERE {IS_OPEN}"
                f" AND webhook_id = (SELECT id FROM {t['webhooks_view']} WHERE uuid = %s)",
                (str(e.originator_id),),
            )

    @handles(Webhook.Updated)
    def updated(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        columns = dict(e.changes)
        if "event_types" in columns:
            columns["event_types"] = type_filter(columns["event_types"])
        if columns.get("is_active"):
            columns["disabled_reason"] = ""
        self._update(cur, t, e, columns)
        if columns.get("is_active") is False:
            self._cancel_open(cur, t, e)
        if columns.get("is_active") and self._writes_deliveries(cur):
            # Switched back on: its failing days start again from its next failure.
            cur.execute(
                f"UPDATE webhook_health SET failing_since = NULL WHERE webhook_id ="
                f" (SELECT id FROM {t['webhooks_view']} WHERE uuid = %s)",
                (str(e.originator_id),),
            )

    @handles(Webhook.SecretRotated)
    def rotated(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        columns = {"secret": e.secret, "previous_secret": e.previous_secret, "previous_until": e.previous_until}
        self._update(cur, t, e, columns)

    @handles(Webhook.Disabled)
    def disabled(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        self._update(cur, t, e, {"is_active": False, "disabled_reason": e.reason})
        self._cancel_open(cur, t, e)

    @handles(Webhook.Deleted)
    def deleted(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        self._cancel_open(cur, t, e)
        cur.execute(f"DELETE FROM {t['webhooks_view']} WHERE uuid = %s", (str(e.originator_id),))

    # -- what superusers ask of the outbox -------------------------------------------------------------------------

    @handles(Webhook.TestRequested)
    def test_requested(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        row = cur.execute(f"SELECT id FROM {t['webhooks_view']} WHERE uuid = %s", (str(e.originator_id),)).fetchone()
        if row is None:
            return
        webhook_id = int(row["id"])
        # Each test its own entity: a new test never waits behind an old one still being retried.
        test = Message(TEST_EVENT, f"webhook-test:{e.request_id}", {"webhook_id": webhook_id})
        self._messages(cur, t, e, [test], webhook_id)
        if self._writes_deliveries(cur):
            self._request(cur, t, e, "m.seq = %s", (self.position * MESSAGES_PER_EVENT,))

    @handles(Webhook.ReplayRequested)
    def replay_requested(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        if self._writes_deliveries(cur):
            self._request(
                cur,
                t,
                e,
                "m.occurred_at > %s AND m.webhook_id IS NULL"
                " AND (w.event_types = '' OR w.event_types LIKE %s || m.event_type || %s)",
                (e.since, "%,", ",%"),
            )

    @handles(Webhook.RedeliveryRequested)
    def redelivery_requested(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        if self._writes_deliveries(cur):
            self._request(cur, t, e, "m.message_id = %s", (e.message_id,))

    def _request(self, cur: Cursor, t: dict[str, str], e: Any, condition: str, params: tuple[Any, ...] = ()) -> None:
        """Deliveries of the messages `condition` picks, to one active endpoint, named by this request."""
        cur.execute(
            f"INSERT INTO {DELIVERIES} ({DELIVERY_FIELDS})"
            f" SELECT %s || CAST(m.seq AS text), w.id, m.message_id, m.event_type, m.entity, %s, m.seq, %s, %s,"
            f" 'pending', 0, %s FROM {t['webhook_messages_view']} m, {t['webhooks_view']} w"
            f" WHERE w.uuid = %s AND w.is_active AND m.seq < %s AND {condition} ON CONFLICT (id) DO NOTHING",
            (
                f"r{self.position}-",
                self.position,
                str(e.request_id),
                e.timestamp,
                e.timestamp,
                str(e.originator_id),
                (self.position + 1) * MESSAGES_PER_EVENT,
                *params,
            ),
        )
