"""Read models of work: checklist templates, tasks (with their checklist progress kept alongside, so lists never
count items per row), and each task's checklist items."""

from __future__ import annotations

import json
from typing import Any

from cosmo.domain.checklists import TASK_TYPES, ChecklistTemplate
from cosmo.domain.tasks import Task
from cosmo.projections.base import Index, Projection, Read, Table, handles, update_row
from cosmo.storage.db import Cursor

TEMPLATE_COLUMNS = """
    id bigint NOT NULL,
    uuid text NOT NULL,
    name text NOT NULL,
    task_type text NOT NULL,
    is_default boolean NOT NULL,
    items text NOT NULL,
    is_deleted boolean NOT NULL,
    created_by bigint NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
"""

TASK_COLUMNS = """
    id bigint NOT NULL,
    uuid text NOT NULL,
    title text NOT NULL,
    description text NOT NULL,
    status text NOT NULL,
    task_type text NOT NULL,
    priority text NOT NULL,
    priority_rank bigint NOT NULL,
    assigned_to bigint,
    property_id bigint,
    unit_id bigint,
    due_date timestamptz,
    notes text NOT NULL,
    checklist_template_id bigint,
    checklist_template_name text,
    checklist_total bigint NOT NULL,
    checklist_completed bigint NOT NULL,
    is_deleted boolean NOT NULL,
    created_by bigint NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
"""

ITEM_COLUMNS = """
    id bigint NOT NULL,
    task_id bigint NOT NULL,
    position bigint NOT NULL,
    text text NOT NULL,
    item_type text NOT NULL,
    is_required boolean NOT NULL,
    room text NOT NULL,
    completed boolean NOT NULL,
    value text,
    notes text NOT NULL,
    completed_at timestamptz,
    completed_by bigint
"""

PHOTO_COLUMNS = """
    id bigint NOT NULL,
    task_id bigint NOT NULL,
    photo_type text NOT NULL,
    photo_status text NOT NULL,
    sequence_number bigint NOT NULL,
    is_primary boolean NOT NULL,
    description text NOT NULL,
    file text NOT NULL,
    thumbnail text NOT NULL,
    size_bytes bigint NOT NULL,
    width bigint NOT NULL,
    height bigint NOT NULL,
    taken_at timestamptz,
    checklist_item_id bigint,
    uploaded_by bigint NOT NULL,
    uploaded_at timestamptz NOT NULL,
    review_note text NOT NULL,
    reviewed_by bigint,
    reviewed_at timestamptz,
    is_deleted boolean NOT NULL
"""

# In a task's noted count scopes: "staff of whatever type the task has" (resolved when the batch ends).
CURRENT_TYPE = "type:?"

# `ordering=priority` sorts by urgency, not alphabetically.
PRIORITY_RANK = {"low": 1, "medium": 2, "high": 3, "urgent": 4}


class ChecklistTemplatesProjection(Projection):
    name = "checklist_templates"
    version = 1
    tables = (
        Table(
            "checklist_templates_view",
            TEMPLATE_COLUMNS,
            "id",
            (Index("uuid", "uuid", unique=True), Index("type", "task_type, is_deleted")),
        ),
    )

    @handles(ChecklistTemplate.Created)
    def created(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        cur.execute(
            f"INSERT INTO {t['checklist_templates_view']} (id, uuid, name, task_type, is_default, items, is_deleted,"
            " created_by, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                e.template_id,
                str(e.originator_id),
                e.name,
                e.task_type,
                e.is_default,
                json.dumps(e.items),
                False,
                e.actor_id,
                e.timestamp,
                e.timestamp,
            ),
        )

    @handles(ChecklistTemplate.Updated)
    def updated(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        columns = {k: (json.dumps(v) if k == "items" else v) for k, v in e.changes.items()}
        columns["updated_at"] = e.timestamp
        update_row(cur, t["checklist_templates_view"], columns, "uuid", str(e.originator_id))

    @handles(ChecklistTemplate.Deleted)
    def deleted(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        cur.execute(
            f"UPDATE {t['checklist_templates_view']} SET is_deleted = %s, is_default = %s, updated_at = %s"
            " WHERE uuid = %s",
            (True, False, e.timestamp, str(e.originator_id)),
        )


class TasksProjection(Projection):
    name = "tasks"
    version = 4

    def __init__(self) -> None:
        super().__init__()
        self._touched: dict[str, set[str]] = {}  # task uuid -> extra count scopes, during a live batch

    tables = (
        Table(
            "tasks_view",
            TASK_COLUMNS,
            "id",
            (
                Index("uuid", "uuid", unique=True),
                Index("assignee", "assigned_to, status, due_date"),
                Index("type", "task_type, status, assigned_to"),
                Index("status", "status, due_date"),
                Index("property", "property_id, status"),
                Index("created", "created_at"),
            ),
        ),
        Table("task_checklist_items_view", ITEM_COLUMNS, "id", (Index("task", "task_id, position"),)),
        Table(
            "task_photos_view",
            PHOTO_COLUMNS,
            "id",
            (
                Index("task", "task_id, is_deleted, photo_type"),
                Index("file", "file"),  # the media route checks a file's photo is not deleted
                Index("thumbnail", "thumbnail"),
            ),
        ),
    )

    @handles(Task.Created)
    def created(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        checklist = e.checklist or {}
        items = checklist.get("items", [])
        cur.execute(
            f"INSERT INTO {t['tasks_view']} (id, uuid, title, description, status, task_type, priority,"
            " priority_rank, assigned_to, property_id, unit_id, due_date, notes, checklist_template_id,"
            " checklist_template_name, checklist_total, checklist_completed, is_deleted, created_by, created_at,"
            " updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                e.task_id,
                str(e.originator_id),
                e.title,
                e.description,
                "pending",
                e.task_type,
                e.priority,
                PRIORITY_RANK[e.priority],
                e.assigned_to,
                e.property_id,
                e.unit_id,
                e.due_date,
                "",
                checklist.get("template_id"),
                checklist.get("template_name"),
                len(items),
                0,
                False,
                e.actor_id,
                e.timestamp,
                e.timestamp,
            ),
        )
        for position, item in enumerate(items):
            cur.execute(
                f"INSERT INTO {t['task_checklist_items_view']} (id, task_id, position, text, item_type, is_required,"
                " room, completed, value, notes, completed_at, completed_by)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, NULL, %s, NULL, NULL)",
                (
                    item["id"],
                    e.task_id,
                    position,
                    item["text"],
                    item["item_type"],
                    item["is_required"],
                    item["room"],
                    False,
                    "",
                ),
            )
        self._counts_changed(e)

    def _counts_changed(self, e: Any, scopes: tuple[str, ...] = ()) -> None:
        """Note a task whose counts may have changed; `scopes` adds what its current row will not show (a previous
        assignee, a previous type)."""
        if self.live:
            self._touched.setdefault(str(e.originator_id), set()).update(scopes)

    def drain(self) -> list[tuple[str, Any]]:
        self._touched = {}  # a batch that failed leaves nothing behind
        return super().drain()

    def announce(self, read: Read, t: dict[str, str], first: int, last: int) -> None:
        """Announce whose counts may have changed: everyone who sees all tasks, each touched task's assignee, or
        staff of its type while it is unassigned; one read for the whole batch."""
        touched, self._touched = self._touched, {}
        if not touched:
            return
        scopes = {"all"}
        for extra in touched.values():
            scopes |= extra - {CURRENT_TYPE}
        marks = ", ".join(["%s"] * len(touched))
        rows = read(
            f"SELECT uuid, assigned_to, task_type FROM {t['tasks_view']} WHERE uuid IN ({marks})", tuple(touched)
        )
        for row in rows:
            scopes.add(f"user:{row['assigned_to']}" if row["assigned_to"] is not None else f"type:{row['task_type']}")
            if CURRENT_TYPE in touched[row["uuid"]]:
                scopes.add(f"type:{row['task_type']}")
        self.emit("task_counts", sorted(scopes))

    def _set(self, cur: Cursor, t: dict[str, str], e: Any, columns: dict[str, Any]) -> None:
        update_row(cur, t["tasks_view"], {**columns, "updated_at": e.timestamp}, "uuid", str(e.originator_id))

    @handles(Task.Updated)
    def updated(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        if "task_type" in e.changes:
            # The previous type is not in the event: staff of every type recount (a rare edit).
            self._counts_changed(e, tuple(f"type:{task_type}" for task_type in TASK_TYPES))
        columns = dict(e.changes)
        if "priority" in columns:
            columns["priority_rank"] = PRIORITY_RANK[columns["priority"]]
        self._set(cur, t, e, columns)

    @handles(Task.Deleted)
    def deleted(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        self._counts_changed(e)
        self._set(cur, t, e, {"is_deleted": True})

    @handles(Task.NotesChanged)
    def notes_changed(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        self._set(cur, t, e, {"notes": e.notes})

    @handles(Task.Assigned)
    def assigned(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        # Before, it counted for its previous assignee, or (unassigned) for staff of its type.
        self._counts_changed(e, (f"user:{e.previous_id}",) if e.previous_id is not None else (CURRENT_TYPE,))
        self._set(cur, t, e, {"assigned_to": e.assignee_id})

    @handles(Task.StatusChanged)
    def status_changed(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        self._counts_changed(e)
        self._set(cur, t, e, {"status": e.status})

    @handles(Task.ChecklistItemUpdated)
    def item_updated(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        columns = dict(e.changes)
        if "completed" in columns:
            columns["completed_at"] = e.timestamp if columns["completed"] else None
            columns["completed_by"] = e.actor_id if columns["completed"] else None
        update_row(cur, t["task_checklist_items_view"], columns, "id", e.item_id)
        items = t["task_checklist_items_view"]
        cur.execute(
            f"UPDATE {t['tasks_view']} SET updated_at = %s, checklist_completed ="
            f" (SELECT count(*) FROM {items} i WHERE i.task_id = {t['tasks_view']}.id AND i.completed)"
            " WHERE uuid = %s",
            (e.timestamp, str(e.originator_id)),
        )

    @handles(Task.PhotoAdded)
    def photo_added(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        p = e.photo
        cur.execute(
            f"INSERT INTO {t['task_photos_view']} (id, task_id, photo_type, photo_status, sequence_number, is_primary,"
            " description, file, thumbnail, size_bytes, width, height, taken_at, checklist_item_id, uploaded_by,"
            f" uploaded_at, review_note, reviewed_by, reviewed_at, is_deleted) SELECT %s, id, %s, %s, %s, %s, %s, %s,"
            f" %s, %s, %s, %s, %s, %s, %s, %s, %s, NULL, NULL, %s FROM {t['tasks_view']} WHERE uuid = %s",
            (
                e.photo_id,
                p["photo_type"],
                "pending",
                e.sequence_number,
                e.is_primary,
                p["description"],
                p["file"],
                p["thumbnail"],
                p["size_bytes"],
                p["width"],
                p["height"],
                p["taken_at"],
                p["checklist_item_id"],
                e.actor_id,
                e.timestamp,
                "",
                False,
                str(e.originator_id),
            ),
        )
        self._set(cur, t, e, {})

    @handles(Task.PhotoReviewed)
    def photo_reviewed(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        cur.execute(
            f"UPDATE {t['task_photos_view']} SET photo_status = %s, review_note = %s, reviewed_by = %s,"
            " reviewed_at = %s WHERE id = %s",
            (e.status, e.note, e.actor_id, e.timestamp, e.photo_id),
        )
        self._set(cur, t, e, {})

    @handles(Task.PhotoDeleted)
    def photo_deleted(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        photos = t["task_photos_view"]
        cur.execute(f"UPDATE {photos} SET is_deleted = %s, is_primary = %s WHERE id = %s", (True, False, e.photo_id))
        if e.new_primary_id is not None:
            cur.execute(f"UPDATE {photos} SET is_primary = %s WHERE id = %s", (True, e.new_primary_id))
        self._set(cur, t, e, {})


ALL = (ChecklistTemplatesProjection, TasksProjection)
