"""The tasks read model: tasks (with their checklist progress kept alongside, so lists never count items per
row), each task's checklist items and photos; and the queries that read them, through the one visibility rule."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec

from cosmo.domain.actors import Actor
from cosmo.domain.errors import NotFound
from cosmo.domain.photos import PHOTO_STATUS_DISPLAY, PHOTO_TYPE_DISPLAY
from cosmo.domain.tasks import Task, sees_all_tasks, unassigned_types_seen
from cosmo.projections.base import Index, Projection, Table, handles, update_row
from cosmo.projections.counts import CountQueries
from cosmo.projections.queries import (
    Packed,
    PageRequest,
    Reader,
    Slice,
    Statement,
    ensure_page,
    equals,
    like,
    order_clause,
)
from cosmo.storage.db import Cursor

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

# `ordering=priority` sorts by urgency, not alphabetically.
PRIORITY_RANK = {"low": 1, "medium": 2, "high": 3, "urgent": 4}


class TasksProjection(Projection):
    name = "tasks"
    version = 8

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
                # A staff member's lists read their own tasks, and their group's unassigned ones type by type, as
                # ordered index scans (see `visible_parts`): newest first, and most recently changed first for the
                # dashboard.
                # The id completes each order (the lists' tie-breaker), so a page comes off the index sorted.
                Index("assignee_created", "assigned_to, created_at, id"),
                Index("unassigned_created", "task_type, status, created_at, id", where="assigned_to IS NULL"),
                Index("assignee_updated", "assigned_to, updated_at, id"),
                Index("unassigned_updated", "task_type, updated_at, id", where="assigned_to IS NULL"),
                Index("updated", "updated_at, id"),
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

    def _set(self, cur: Cursor, t: dict[str, str], e: Any, columns: dict[str, Any]) -> None:
        update_row(cur, t["tasks_view"], {**columns, "updated_at": e.timestamp}, "uuid", str(e.originator_id))

    @handles(Task.Updated)
    def updated(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        columns = dict(e.changes)
        if "priority" in columns:
            columns["priority_rank"] = PRIORITY_RANK[columns["priority"]]
        self._set(cur, t, e, columns)

    @handles(Task.Deleted)
    def deleted(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        self._set(cur, t, e, {"is_deleted": True})

    @handles(Task.NotesChanged)
    def notes_changed(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        self._set(cur, t, e, {"notes": e.notes})

    @handles(Task.Assigned)
    def assigned(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        self._set(cur, t, e, {"assigned_to": e.assignee_id})

    @handles(Task.StatusChanged)
    def status_changed(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
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


ALL = (TasksProjection,)


# -- queries -------------------------------------------------------------------------------------------------------


class Progress(msgspec.Struct):
    percentage: int
    completed: int
    total: int
    remaining: int

    @classmethod
    def of(cls, completed: int, total: int) -> Progress:
        return cls(round(100 * completed / total) if total else 0, completed, total, total - completed)


class TaskOut(msgspec.Struct):
    id: int
    title: str
    description: str
    status: str
    task_type: str
    priority: str
    assigned_to: int | None
    assigned_to_username: str | None
    property: int | None
    property_name: str | None
    unit: int | None
    unit_number: str | None
    due_date: datetime | None
    created_at: datetime
    updated_at: datetime
    checklist_id: int | None
    checklist_template: str | None
    checklist_progress: Progress


class ItemOut(msgspec.Struct):
    id: int
    text: str
    item_type: str
    is_required: bool
    room: str
    completed: bool
    completed_at: datetime | None
    completed_by: int | None
    value: str | None
    notes: str


class ItemWithProgress(ItemOut):
    progress: Progress | None = None


class ChecklistOut(msgspec.Struct):
    id: int
    template: str | None
    items: list[ItemOut]


class PhotoOut(msgspec.Struct):
    id: int
    task: int
    image: str
    thumbnail: str
    photo_type: str
    photo_type_display: str
    photo_status: str
    photo_status_display: str
    sequence_number: int
    is_primary: bool
    description: str
    checklist_item: int | None
    uploaded_at: datetime
    uploaded_by: int
    uploaded_by_username: str | None
    size_bytes: int
    width: int
    height: int
    taken_at: datetime | None
    review_note: str
    reviewed_by: int | None
    reviewed_at: datetime | None


class PhotoList(msgspec.Struct):
    count: int
    results: list[PhotoOut]


class TaskDetail(TaskOut):
    checklist: ChecklistOut | None = None
    notes: str = ""
    created_by: int = 0
    images: list[PhotoOut] = []


class RecentTask(msgspec.Struct):
    id: int
    title: str
    status: str
    priority: str
    due_date: datetime | None


class TaskFilters(msgspec.Struct):
    status: str | None = None
    task_type: str | None = None
    priority: str | None = None
    assigned_to: int | None = None
    property: int | None = None
    due_before: datetime | None = None
    due_after: datetime | None = None
    search: str = ""


TASK_JOINS = (
    "LEFT JOIN users_view u ON u.id = t.assigned_to"
    " LEFT JOIN properties_view p ON p.id = t.property_id LEFT JOIN units_view un ON un.id = t.unit_id"
)
TASK_FROM = f"FROM tasks_view t {TASK_JOINS}"
TASK_SELECT = (
    "t.id, t.title, t.description, t.status, t.task_type, t.priority, t.assigned_to, u.username AS assignee,"
    " t.property_id, p.name AS property_name, t.unit_id, un.unit_number, t.due_date, t.notes,"
    " t.checklist_template_id, t.checklist_template_name, t.checklist_total, t.checklist_completed,"
    " t.created_by, t.created_at, t.updated_at"
)
TASK_ORDERING = {
    "due_date": "t.due_date",
    "created_at": "t.created_at",
    "priority": "t.priority_rank",
    "status": "t.status",
    "title": "t.title",
    "id": "t.id",
}
TASK_FILTERS = {
    "status": "t.status",
    "task_type": "t.task_type",
    "priority": "t.priority",
    "assigned_to": "t.assigned_to",
    "property": "t.property_id",
}
ITEM_SELECT = "id, text, item_type, is_required, room, completed, value, notes, completed_at, completed_by, task_id"
PHOTO_SELECT = (
    "ph.id, ph.task_id, ph.photo_type, ph.photo_status, ph.sequence_number, ph.is_primary, ph.description, ph.file,"
    " ph.thumbnail, ph.size_bytes, ph.width, ph.height, ph.taken_at, ph.checklist_item_id, ph.uploaded_by,"
    " u.username AS uploaded_by_username, ph.uploaded_at, ph.review_note, ph.reviewed_by, ph.reviewed_at"
)
PHOTO_FROM = "FROM task_photos_view ph LEFT JOIN users_view u ON u.id = ph.uploaded_by"
DASHBOARD_ITEMS = 5
RECENT_TASKS = msgspec.json.Decoder(list[RecentTask])


def visible_parts(actor: Actor) -> list[tuple[str, list[Any]]]:
    """The tasks `actor` may see, as conditions whose union is the rule of domain/tasks.py (`sees_task`): all live
    tasks for who sees all; for staff, their own, and the unassigned tasks of their group's types. This is the one
    place the read side has the rule. Each part is answered by one index, in order (see `TaskQueries._rows`)."""
    if sees_all_tasks(actor.role):
        return [("NOT t.is_deleted", [])]
    parts: list[tuple[str, list[Any]]] = [("NOT t.is_deleted AND t.assigned_to = %s", [actor.id])]
    # One part per task type, not one `IN`: an index gives each type's tasks in order, but not several types' merged.
    for task_type in unassigned_types_seen(actor.task_group):
        parts.append(("NOT t.is_deleted AND t.assigned_to IS NULL AND t.task_type = %s", [task_type]))
    return parts


def visible_to(actor: Actor) -> tuple[str, list[Any]]:
    """`visible_parts` as one SQL condition (for a single task, or a count)."""
    parts = visible_parts(actor)
    condition = " OR ".join(f"({c})" for c, _ in parts)
    return f"({condition})", [p for _, params in parts for p in params]


def _task(row: dict[str, Any]) -> TaskOut:
    has_checklist = row["checklist_template_id"] is not None or row["checklist_total"] > 0
    return TaskOut(
        id=row["id"],
        title=row["title"],
        description=row["description"],
        status=row["status"],
        task_type=row["task_type"],
        priority=row["priority"],
        assigned_to=row["assigned_to"],
        assigned_to_username=row["assignee"],
        property=row["property_id"],
        property_name=row["property_name"],
        unit=row["unit_id"],
        unit_number=row["unit_number"],
        due_date=row["due_date"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        checklist_id=row["id"] if has_checklist else None,
        checklist_template=row["checklist_template_name"],
        checklist_progress=Progress.of(int(row["checklist_completed"]), int(row["checklist_total"])),
    )


def _item(row: dict[str, Any]) -> ItemOut:
    return ItemOut(
        id=row["id"],
        text=row["text"],
        item_type=row["item_type"],
        is_required=bool(row["is_required"]),
        room=row["room"],
        completed=bool(row["completed"]),
        completed_at=row["completed_at"],
        completed_by=row["completed_by"],
        value=row["value"],
        notes=row["notes"],
    )


Sign = Callable[[str], str]  # a stored file's name -> its signed absolute URL


class TaskQueries:
    """Tasks, their checklists and photos, through the one visibility rule: a task the actor may not see is a 404,
    so ids do not reveal what exists."""

    def __init__(self, read: Reader, sign: Sign, counts: CountQueries):
        self._read = read
        self._sign = sign
        self._counts = counts

    async def _row(self, actor: Actor, task_id: int) -> dict[str, Any]:
        condition, params = visible_to(actor)
        row = await self._read.fetchone(
            f"SELECT {TASK_SELECT} {TASK_FROM} WHERE t.id = %s AND {condition}", (task_id, *params)
        )
        if row is None:
            raise NotFound(f"task {task_id}")
        return row

    async def get(self, actor: Actor, task_id: int) -> TaskOut:
        return _task(await self._row(actor, task_id))

    async def detail(self, actor: Actor, task_id: int) -> TaskDetail:
        row = await self._row(actor, task_id)
        task = _task(row)
        items = await self._read.fetchall(
            f"SELECT {ITEM_SELECT} FROM task_checklist_items_view WHERE task_id = %s ORDER BY position", (task_id,)
        )
        checklist = (
            ChecklistOut(row["id"], row["checklist_template_name"], [_item(i) for i in items])
            if task.checklist_id is not None
            else None
        )
        fields = msgspec.structs.asdict(task)
        return TaskDetail(
            **fields,
            checklist=checklist,
            notes=row["notes"],
            created_by=row["created_by"],
            images=await self._photos(task_id),
        )

    async def progress(self, actor: Actor, task_id: int) -> Progress:
        return (await self.get(actor, task_id)).checklist_progress

    async def item(self, actor: Actor, task_id: int, item_id: int) -> ItemWithProgress:
        task = await self.get(actor, task_id)
        row = await self._read.fetchone(
            f"SELECT {ITEM_SELECT} FROM task_checklist_items_view WHERE id = %s AND task_id = %s", (item_id, task_id)
        )
        if row is None:
            raise NotFound(f"checklist item {item_id}")
        return ItemWithProgress(**msgspec.structs.asdict(_item(row)), progress=task.checklist_progress)

    @staticmethod
    def _rows_sql(
        actor: Actor, select: str, joins: str, extra: list[str], params: list[Any], order_by: str, page: PageRequest
    ) -> tuple[str, tuple[Any, ...]]:
        """One page of the visible tasks matching `extra`. A staff member's visible tasks are two sets (their own,
        their group's unassigned); each is read in order through its own index, as far as the page needs, and the
        two are merged: the cost follows the page, not the number of tasks (one OR condition would make the
        database gather every visible task to sort them)."""
        filters = "".join(f" AND {c}" for c in extra)
        parts = visible_parts(actor)
        if len(parts) == 1:
            condition, visible = parts[0]
            return (
                f"SELECT {select} FROM tasks_view t {joins} WHERE {condition}{filters}"
                f" ORDER BY {order_by} LIMIT %s OFFSET %s",
                (*visible, *params, page.limit, page.offset),
            )
        subqueries, args = [], []
        for n, (condition, visible) in enumerate(parts):
            subqueries.append(
                f"SELECT * FROM (SELECT t.* FROM tasks_view t WHERE {condition}{filters}"
                f" ORDER BY {order_by} LIMIT %s) AS part{n}"
            )
            args += [*visible, *params, page.offset + page.limit]
        return (
            f"SELECT {select} FROM ({' UNION ALL '.join(subqueries)}) t {joins} ORDER BY {order_by} LIMIT %s OFFSET %s",
            (*args, page.limit, page.offset),
        )

    async def page(self, actor: Actor, filters: TaskFilters, request: PageRequest) -> Slice[TaskOut]:
        extra, params = equals(filters, TASK_FILTERS)
        for name, op in (("due_before", "<"), ("due_after", ">")):
            moment = getattr(filters, name)
            if moment is not None:
                extra.append(f"t.due_date {op} %s")
                params.append(moment)
        if filters.search:
            extra.append("(lower(t.title) LIKE %s ESCAPE '\\' OR lower(t.description) LIKE %s ESCAPE '\\')")
            params += [like(filters.search)] * 2
        order_by = order_clause(request.ordering, TASK_ORDERING, "-created_at") + ", t.id DESC"
        if set(extra) <= {"t.status = %s"}:  # what the counts projection counts: no need to count rows
            count = self._counts.visible_statement(actor, filters.status)
        else:
            condition, visible = visible_to(actor)
            count = Statement(
                f"SELECT count(*) AS n FROM tasks_view t WHERE {' AND '.join([condition, *extra])}",
                (*visible, *params),
                lambda rows: int(rows[0]["n"]) if rows else 0,
            )
        rows_sql, rows_params = self._rows_sql(actor, TASK_SELECT, TASK_JOINS, extra, params, order_by, request)
        # Count and page in one round trip; a page past the end is found out afterwards.
        counted, rows = await self._read.fetch_many([(count.sql, count.params), (rows_sql, rows_params)])
        total = count.shape(counted)
        ensure_page(request, total)
        return Slice(total, [_task(r) for r in rows], request)

    def recent(self, actor: Actor) -> Packed[list[RecentTask]]:
        """The few most recently changed tasks the actor may see (the dashboard's)."""
        sql, params = self._rows_sql(
            actor,
            "t.id, t.title, t.status, t.priority, t.due_date",
            "",
            [],
            [],
            "t.updated_at DESC, t.id DESC",
            PageRequest(size=DASHBOARD_ITEMS),
        )
        return Packed(sql, params, RecentTask.__struct_fields__, RECENT_TASKS.decode)

    # -- photos ----------------------------------------------------------------------------------------------------

    def _photo(self, row: dict[str, Any]) -> PhotoOut:
        return PhotoOut(
            id=row["id"],
            task=row["task_id"],
            image=self._sign(row["file"]),
            thumbnail=self._sign(row["thumbnail"]),
            photo_type=row["photo_type"],
            photo_type_display=PHOTO_TYPE_DISPLAY[row["photo_type"]],
            photo_status=row["photo_status"],
            photo_status_display=PHOTO_STATUS_DISPLAY[row["photo_status"]],
            sequence_number=row["sequence_number"],
            is_primary=bool(row["is_primary"]),
            description=row["description"],
            checklist_item=row["checklist_item_id"],
            uploaded_at=row["uploaded_at"],
            uploaded_by=row["uploaded_by"],
            uploaded_by_username=row["uploaded_by_username"],
            size_bytes=row["size_bytes"],
            width=row["width"],
            height=row["height"],
            taken_at=row["taken_at"],
            review_note=row["review_note"],
            reviewed_by=row["reviewed_by"],
            reviewed_at=row["reviewed_at"],
        )

    async def _photos(self, task_id: int) -> list[PhotoOut]:
        rows = await self._read.fetchall(
            f"SELECT {PHOTO_SELECT} {PHOTO_FROM} WHERE ph.task_id = %s AND NOT ph.is_deleted"
            " ORDER BY ph.photo_type, ph.sequence_number, ph.id",
            (task_id,),
        )
        return [self._photo(r) for r in rows]

    async def photos(self, actor: Actor, task_id: int) -> PhotoList:
        await self._row(actor, task_id)
        photos = await self._photos(task_id)
        return PhotoList(len(photos), photos)

    async def photo(self, actor: Actor, task_id: int, photo_id: int) -> PhotoOut:
        await self._row(actor, task_id)
        row = await self._read.fetchone(
            f"SELECT {PHOTO_SELECT} {PHOTO_FROM} WHERE ph.id = %s AND ph.task_id = %s AND NOT ph.is_deleted",
            (photo_id, task_id),
        )
        if row is None:
            raise NotFound(f"photo {photo_id}")
        return self._photo(row)

    async def file_is_live(self, name: str) -> bool:
        """Whether a stored file belongs to a photo that is not deleted (its links work only while it is not)."""
        row = await self._read.fetchone(
            "SELECT 1 AS live FROM task_photos_view WHERE (file = %s OR thumbnail = %s) AND NOT is_deleted",
            (name, name),
        )
        return row is not None
