"""Notifications, derived from task events: the assignee when a task is given to them; assignee and creator when its
status, due date or a photo review changes; never whoever acted.

A notification's id is derived from the position of the event that caused it (position * 8 + recipient), so a
rebuild gives every notification the id it had before and the inbox's read marks still point at the right ones.
The projection keeps the few task facts it needs in a table of its own, so it never reads another projection's
tables (which may be at another position, or mid-rebuild).
"""

from __future__ import annotations

from typing import Any

from cosmo.domain.inbox import Inbox
from cosmo.domain.tasks import Task
from cosmo.projections.base import Index, Projection, Table, handles
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
FACTS = ("uuid", "id", "title", "assigned_to", "created_by")


class NotificationsProjection(Projection):
    name = "notifications"
    version = 1
    tables = (
        Table(
            "notifications_view",
            NOTIFICATION_COLUMNS,
            "id",
            (Index("user", "user_id, is_read, id"),),
        ),
        Table("notification_task_facts", FACT_COLUMNS, "uuid"),
    )

    def _facts(self, cur: Cursor, t: dict[str, str], e: Any) -> dict[str, Any] | None:
        row = cur.execute(
            f"SELECT {', '.join(FACTS)} FROM {t['notification_task_facts']} WHERE uuid = %s", (str(e.originator_id),)
        ).fetchone()
        return dict(row) if row else None

    def _notify(
        self, cur: Cursor, t: dict[str, str], e: Any, users: list[int | None], verb: str, message: str, task_id: int
    ) -> None:
        recipients = sorted({u for u in users if u is not None and u != e.actor_id})
        for k, user_id in enumerate(recipients[:RECIPIENTS_PER_EVENT]):
            row = {
                "id": self.position * RECIPIENTS_PER_EVENT + k,
                "user_id": user_id,
                "verb": verb,
                "message": message,
                "task_id": task_id,
                "created_at": e.timestamp,
                "is_read": False,
                "read_at": None,
            }
            cur.execute(
                f"INSERT INTO {t['notifications_view']} (id, user_id, verb, message, task_id, created_at, is_read,"
                " read_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                tuple(row.values()),
            )
            self.emit("notification", row)

    @handles(Task.Created)
    def task_created(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        cur.execute(
            f"INSERT INTO {t['notification_task_facts']} ({', '.join(FACTS)}) VALUES (%s, %s, %s, %s, %s)",
            (str(e.originator_id), e.task_id, e.title, e.assigned_to, e.actor_id),
        )
        self._notify(cur, t, e, [e.assigned_to], "assigned", f"New task assigned: {e.title}", e.task_id)

    @handles(Task.Updated)
    def task_updated(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        if "title" in e.changes:
            cur.execute(
                f"UPDATE {t['notification_task_facts']} SET title = %s WHERE uuid = %s",
                (e.changes["title"], str(e.originator_id)),
            )
        if "due_date" in e.changes:
            facts = self._facts(cur, t, e)
            if facts:
                due = e.changes["due_date"]
                when = due.strftime("%Y-%m-%d %H:%M UTC") if due else "none"
                users = [facts["assigned_to"], facts["created_by"]]
                self._notify(
                    cur, t, e, users, "due_date_changed", f"Due date of {facts['title']} is now {when}", facts["id"]
                )

    @handles(Task.Assigned)
    def task_assigned(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        cur.execute(
            f"UPDATE {t['notification_task_facts']} SET assigned_to = %s WHERE uuid = %s",
            (e.assignee_id, str(e.originator_id)),
        )
        facts = self._facts(cur, t, e)
        if facts:
            self._notify(cur, t, e, [e.assignee_id], "assigned", f"New task assigned: {facts['title']}", facts["id"])

    @handles(Task.StatusChanged)
    def task_status_changed(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        facts = self._facts(cur, t, e)
        if facts:
            users = [facts["assigned_to"], facts["created_by"]]
            message = f"{facts['title']}: {e.previous} -> {e.status}"
            self._notify(cur, t, e, users, "status_changed", message, facts["id"])

    @handles(Task.PhotoReviewed)
    def photo_reviewed(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        facts = self._facts(cur, t, e)
        if facts:
            users = [facts["assigned_to"], facts["created_by"]]
            message = f"A photo on {facts['title']} was {e.status}" + (f": {e.note}" if e.note else "")
            self._notify(cur, t, e, users, "photo_reviewed", message, facts["id"])

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
