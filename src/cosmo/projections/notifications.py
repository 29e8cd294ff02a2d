"""Notifications, derived from task events: the assignee when a task is given to them; assignee and creator when its
status, due date or a photo review changes; never whoever acted.

A notification's id is derived from the position of the event that caused it (position * 8 + recipient), so a
rebuild gives every notification the id it had before and the inbox's read marks still point at the right ones.
The projection keeps the few task facts it needs in a table of its own, so it never reads another projection's
tables (which may be at another position, or mid-rebuild).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from cosmo.domain.actors import Actor
from cosmo.domain.errors import NotFound
from cosmo.domain.inbox import Inbox
from cosmo.domain.tasks import Task
from cosmo.domain.webhooks import Webhook
from cosmo.projections.base import Index, Projection, Read, Table, handles
from cosmo.projections.queries import Packed, PageRequest, Reader, Slice, order_clause, page_of
from cosmo.storage.db import Cursor

NOTIFICATION_COLUMNS = """
    id bigint NOT NULL,
    user_id bigint NOT NULL,
    verb text NOT NULL,
    message text NOT NULL,
    task_id bigint,
    created_at timestamptz NOT NULL,
    is_read boolean NOT NULL,
    read_at timestamptz
"""

FACT_COLUMNS = """
    uuid text NOT NULL,
    id bigint NOT NULL,
    title text NOT NULL,
    assigned_to bigint,
    created_by bigint NOT NULL
"""

RECIPIENTS_PER_EVENT = 8
# Recipient slots within an event's block of ids.
ASSIGNEE, CREATOR = 0, 1
BOTH = (ASSIGNEE, CREATOR)
FACTS = ("uuid", "id", "title", "assigned_to", "created_by")
NOTIFICATION_FIELDS = "id, user_id, verb, message, task_id, created_at, is_read, read_at"


class NotificationsProjection(Projection):
    name = "notifications"
    version = 5
    tables = (
        Table(
            "notifications_view",
            NOTIFICATION_COLUMNS,
            "id",
            # A user's newest first, read or unread or either (the lists, the dashboard). They are ordered by
            # creation time, which the primary key does not hold: ordered by id, the planner would walk the primary
            # key back over everybody's newest notifications to find one user's few.
            (
                Index("user", "user_id, is_read, created_at, id"),
                Index("user_newest", "user_id, created_at, id"),
            ),
        ),
        Table("notification_task_facts", FACT_COLUMNS, "uuid"),
    )

    def _notify(
        self, cur: Cursor, t: dict[str, str], e: Any, slots: tuple[int, ...], verb: str, prefix: str, suffix: str
    ) -> None:
        """Insert, straight from the task's facts, a notification for its assignee (slot ASSIGNEE) and/or its
        creator (slot CREATOR) with the message prefix + title + suffix; never for the actor, and the creator only
        when they are not also the assignee. One pure-SQL statement per event, the same text for the same slots, so
        a batch sends consecutive events' notifications as one run without waiting for results."""
        recipients = {
            ASSIGNEE: "f.assigned_to IS NOT NULL AND f.assigned_to <> %s",
            CREATOR: "f.created_by <> %s AND (f.assigned_to IS NULL OR f.assigned_to <> f.created_by)",
        }
        conditions = " OR ".join(f"(s.slot = {slot} AND {recipients[slot]})" for slot in slots)
        cur.execute(
            f"INSERT INTO {t['notifications_view']} ({NOTIFICATION_FIELDS})"
            f" SELECT %s + s.slot, CASE s.slot WHEN {ASSIGNEE} THEN f.assigned_to ELSE f.created_by END,"
            f" %s, %s || f.title || %s, f.id, %s, %s, NULL FROM {t['notification_task_facts']} f"
            f" CROSS JOIN ({' UNION ALL '.join(f'SELECT {slot} AS slot' for slot in slots)}) s"
            f" WHERE f.uuid = %s AND ({conditions})",
            (
                self.position * RECIPIENTS_PER_EVENT,
                verb,
                prefix,
                suffix,
                e.timestamp,
                False,
                str(e.originator_id),
                *[e.actor_id for _ in slots],
            ),
        )

    def announce(self, read: Read, t: dict[str, str], first: int, last: int) -> None:
        """Announce the batch's new notifications (one read for the whole batch)."""
        rows = read(
            f"SELECT {NOTIFICATION_FIELDS} FROM {t['notifications_view']} WHERE id >= %s AND id < %s ORDER BY id",
            (first * RECIPIENTS_PER_EVENT, (last + 1) * RECIPIENTS_PER_EVENT),
        )
        for row in rows:
            self.emit("notification", dict(row))

    @handles(Task.Created)
    def task_created(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        cur.execute(
            f"INSERT INTO {t['notification_task_facts']} ({', '.join(FACTS)}) VALUES (%s, %s, %s, %s, %s)",
            (str(e.originator_id), e.task_id, e.title, e.assigned_to, e.actor_id),
        )
        # The statement would select nothing for a task nobody else was given (an import's turnover cleanings):
        # leaving it out lets a batch send the facts of consecutive new tasks as one run.
        if e.assigned_to is not None and e.assigned_to != e.actor_id:
            self._notify(cur, t, e, (ASSIGNEE,), "assigned", "New task assigned: ", "")

    @handles(Task.Updated)
    def task_updated(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        if "title" in e.changes:
            cur.execute(
                f"UPDATE {t['notification_task_facts']} SET title = %s WHERE uuid = %s",
                (e.changes["title"], str(e.originator_id)),
            )
        if "due_date" in e.changes:
            due = e.changes["due_date"]
            when = due.strftime("%Y-%m-%d %H:%M UTC") if due else "none"
            self._notify(cur, t, e, BOTH, "due_date_changed", "Due date of ", f" is now {when}")

    @handles(Task.Assigned)
    def task_assigned(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        cur.execute(
            f"UPDATE {t['notification_task_facts']} SET assigned_to = %s WHERE uuid = %s",
            (e.assignee_id, str(e.originator_id)),
        )
        self._notify(cur, t, e, (ASSIGNEE,), "assigned", "New task assigned: ", "")

    @handles(Task.StatusChanged)
    def task_status_changed(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        self._notify(cur, t, e, BOTH, "status_changed", "", f": {e.previous} -> {e.status}")

    @handles(Task.BookingCancelled)
    def booking_cancelled(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        suffix = " was cancelled; the task is under way, so it was left open"
        self._notify(cur, t, e, BOTH, "booking_cancelled", "The booking behind ", suffix)

    @handles(Task.PhotoReviewed)
    def photo_reviewed(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        suffix = f" was {e.status}" + (f": {e.note}" if e.note else "")
        self._notify(cur, t, e, BOTH, "photo_reviewed", "A photo on ", suffix)

    @handles(Webhook.Disabled)
    def webhook_disabled(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        """The owner of an endpoint the delivery worker gave up on is told (the system acts, so never "whoever
        acted")."""
        if e.owner_id:
            cur.execute(
                f"INSERT INTO {t['notifications_view']} ({NOTIFICATION_FIELDS})"
                " VALUES (%s, %s, %s, %s, NULL, %s, %s, NULL)",
                (
                    self.position * RECIPIENTS_PER_EVENT,
                    e.owner_id,
                    "webhook_disabled",
                    f"A webhook was disabled: {e.reason}",
                    e.timestamp,
                    False,
                ),
            )

    @handles(Inbox.Read)
    def read(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        cur.execute(
            f"UPDATE {t['notifications_view']} SET is_read = %s, read_at = %s WHERE id = %s AND user_id = %s"
            " AND NOT is_read",
            (True, e.timestamp, e.notification_id, e.user_id),
        )

    @handles(Inbox.AllRead)
    def all_read(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        cur.execute(
            f"UPDATE {t['notifications_view']} SET is_read = %s, read_at = %s WHERE user_id = %s AND id <= %s"
            " AND NOT is_read",
            (True, e.timestamp, e.user_id, e.up_to),
        )


ALL = (NotificationsProjection,)


# -- queries -------------------------------------------------------------------------------------------------------


class NotificationOut(msgspec.Struct):
    id: int
    verb: str
    message: str
    task: int | None
    created_at: datetime
    is_read: bool
    read_at: datetime | None


class UnreadCount(msgspec.Struct):
    unread_count: int


class Unread(msgspec.Struct):
    """The newest unread notification's id (None: none unread), and how many are unread."""

    newest: int | None
    count: int


NOTIFICATION_SELECT = "id, verb, message, task_id, created_at, is_read, read_at"
NOTIFICATION_ORDERING = {"created_at": "created_at", "id": "id"}
# Not strict: SQLite keeps booleans as 0 and 1.
NOTIFICATION_LIST = msgspec.json.Decoder(list[NotificationOut], strict=False)


def notification_out(row: dict[str, Any]) -> NotificationOut:
    return NotificationOut(
        row["id"], row["verb"], row["message"], row["task_id"], row["created_at"], bool(row["is_read"]), row["read_at"]
    )


def _then_by_id(order_by: str) -> str:
    """The order completed by the id, in the direction of its last key: one order for equal times, and the one the
    indexes hold."""
    if order_by.startswith("id ") or ", id " in order_by:
        return order_by
    return f"{order_by}, id {order_by.rsplit(' ', 1)[1]}"


class NotificationQueries:
    """Each user reads their own notifications only: another's is a 404."""

    def __init__(self, read: Reader):
        self._read = read

    async def page(self, actor: Actor, is_read: bool | None, request: PageRequest) -> Slice[NotificationOut]:
        where, params = ["user_id = %s"], [actor.id]
        if is_read is not None:
            where.append("is_read = %s")
            params.append(is_read)
        return await page_of(
            self._read,
            request,
            select=NOTIFICATION_SELECT,
            from_where=f"FROM notifications_view WHERE {' AND '.join(where)}",
            params=params,
            order_by=_then_by_id(order_clause(request.ordering, NOTIFICATION_ORDERING, "-created_at")),
            shape=notification_out,
        )

    async def get(self, actor: Actor, notification_id: int) -> NotificationOut:
        row = await self._read.fetchone(
            f"SELECT {NOTIFICATION_SELECT} FROM notifications_view WHERE id = %s AND user_id = %s",
            (notification_id, actor.id),
        )
        if row is None:
            raise NotFound(f"notification {notification_id}")
        return notification_out(row)

    async def unread(self, actor: Actor) -> Unread:
        row = await self._read.fetchone(
            "SELECT max(id) AS newest, count(*) AS n FROM notifications_view WHERE user_id = %s AND NOT is_read",
            (actor.id,),
        )
        if row is None or row["newest"] is None:
            return Unread(None, 0)
        return Unread(int(row["newest"]), int(row["n"]))

    async def unread_count(self, actor: Actor) -> UnreadCount:
        return UnreadCount((await self.unread(actor)).count)

    def latest(self, actor: Actor, limit: int) -> Packed[list[NotificationOut]]:
        return Packed(
            "SELECT id, verb, message, task_id AS task, created_at, is_read, read_at FROM notifications_view"
            " WHERE user_id = %s ORDER BY created_at DESC, id DESC LIMIT %s",
            (actor.id, limit),
            NotificationOut.__struct_fields__,
            NOTIFICATION_LIST.decode,
        )
