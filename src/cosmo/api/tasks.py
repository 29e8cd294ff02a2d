"""Tasks: the manager endpoints under /api/tasks/ and the contract's staff endpoints under /api/staff/tasks/.

Both read the same views through one visibility rule (`visible_to`); a task the caller may not see is a 404, so
ids do not reveal what exists. Writes are decided by the Task aggregate, which answers 403 to anyone but the
assignee or a manager.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, Request, delete, get, patch, post
from litestar.params import FromPath, JSONBody
from msgspec import UNSET, UnsetType

from cosmo.api.pagination import ordering, paginate, query_choice, query_datetime, query_int, query_text
from cosmo.api.photos import task_photos
from cosmo.api.security import CurrentUser
from cosmo.api.state import services_of
from cosmo.api.task_access import TASK_FROM, TASK_SELECT, visible_task, visible_to
from cosmo.api.wire import given
from cosmo.domain.checklists import TASK_TYPES
from cosmo.domain.errors import NotFound
from cosmo.domain.tasks import PRIORITIES, STATUSES


class CreateTaskRequest(msgspec.Struct, forbid_unknown_fields=True):
    title: str
    task_type: str
    description: str = ""
    priority: str = "medium"
    property: int | None = None
    unit: int | None = None
    assigned_to: int | None = None
    due_date: datetime | None = None
    checklist_template: int | None = None


class UpdateTaskRequest(msgspec.Struct, forbid_unknown_fields=True):
    title: str | UnsetType = UNSET
    description: str | UnsetType = UNSET
    task_type: str | UnsetType = UNSET
    priority: str | UnsetType = UNSET
    property: int | UnsetType | None = UNSET
    unit: int | UnsetType | None = UNSET
    assigned_to: int | UnsetType | None = UNSET
    due_date: datetime | UnsetType | None = UNSET
    status: str | UnsetType = UNSET
    notes: str | UnsetType = UNSET


class StaffUpdateRequest(msgspec.Struct, forbid_unknown_fields=True):
    status: str | UnsetType = UNSET
    notes: str | UnsetType = UNSET


class AssignRequest(msgspec.Struct, forbid_unknown_fields=True):
    user: int | None


class ChecklistItemRequest(msgspec.Struct, forbid_unknown_fields=True):
    completed: bool | UnsetType = UNSET
    value: str | int | float | UnsetType | None = UNSET
    notes: str | UnsetType = UNSET


TASK_ORDERING = {
    "due_date": "t.due_date",
    "created_at": "t.created_at",
    "priority": "t.priority_rank",
    "status": "t.status",
    "title": "t.title",
    "id": "t.id",
}
ITEM_SELECT = "id, text, item_type, is_required, room, completed, value, notes, completed_at, completed_by, task_id"
# Field names on the wire -> the aggregate's.
TASK_FIELDS = {"property": "property_id", "unit": "unit_id"}


def progress(completed: int, total: int) -> dict[str, int]:
    return {
        "percentage": round(100 * completed / total) if total else 0,
        "completed": completed,
        "total": total,
        "remaining": total - completed,
    }


def task_out(row: dict[str, Any]) -> dict[str, Any]:
    has_checklist = row["checklist_template_id"] is not None or row["checklist_total"] > 0
    return {
        "id": row["id"],
        "title": row["title"],
        "description": row["description"],
        "status": row["status"],
        "task_type": row["task_type"],
        "priority": row["priority"],
        "assigned_to": row["assigned_to"],
        "assigned_to_username": row["assignee"],
        "property": row["property_id"],
        "property_name": row["property_name"],
        "unit": row["unit_id"],
        "unit_number": row["unit_number"],
        "due_date": row["due_date"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "checklist_id": row["id"] if has_checklist else None,
        "checklist_template": row["checklist_template_name"],
        "checklist_progress": progress(int(row["checklist_completed"]), int(row["checklist_total"])),
    }


def item_out(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "text": row["text"],
        "item_type": row["item_type"],
        "is_required": bool(row["is_required"]),
        "room": row["room"],
        "completed": bool(row["completed"]),
        "completed_at": row["completed_at"],
        "completed_by": row["completed_by"],
        "value": row["value"],
        "notes": row["notes"],
    }


async def task_detail(request: Request[CurrentUser, Any, Any], task_id: int) -> dict[str, Any]:
    row = await visible_task(request, task_id)
    items = await services_of(request).reader.fetchall(
        f"SELECT {ITEM_SELECT} FROM task_checklist_items_view WHERE task_id = %s ORDER BY position", (task_id,)
    )
    out = task_out(row)
    out["checklist"] = (
        {"id": row["id"], "template": row["checklist_template_name"], "items": [item_out(i) for i in items]}
        if out["checklist_id"] is not None
        else None
    )
    out["notes"] = row["notes"]
    out["created_by"] = row["created_by"]
    out["images"] = await task_photos(request, task_id)
    return out


async def list_tasks(request: Request[CurrentUser, Any, Any]) -> dict[str, Any]:
    condition, params = visible_to(request.user)
    where = [condition]
    for name, column, valid in (
        ("status", "t.status", STATUSES),
        ("task_type", "t.task_type", TASK_TYPES),
        ("priority", "t.priority", PRIORITIES),
    ):
        value = query_choice(request, name, valid)
        if value:
            where.append(f"{column} = %s")
            params.append(value)
    for name, column in (("assigned_to", "t.assigned_to"), ("property", "t.property_id")):
        number = query_int(request, name)
        if number is not None:
            where.append(f"{column} = %s")
            params.append(number)
    for name, op in (("due_before", "<"), ("due_after", ">")):
        moment = query_datetime(request, name)
        if moment is not None:
            where.append(f"t.due_date {op} %s")
            params.append(moment)
    search = query_text(request, "search")
    if search:
        where.append("(lower(t.title) LIKE %s OR lower(t.description) LIKE %s)")
        pattern = f"%{search.lower()}%"
        params += [pattern, pattern]
    return await paginate(
        request,
        services_of(request).reader,
        select=TASK_SELECT,
        from_where=f"{TASK_FROM} WHERE {' AND '.join(where)}",
        params=params,
        order_by=ordering(request, TASK_ORDERING, "-created_at") + ", t.id DESC",
        shape=task_out,
    )


def _task_fields(fields: dict[str, Any]) -> dict[str, Any]:
    return {TASK_FIELDS.get(k, k): v for k, v in fields.items()}


class TasksController(Controller):
    """Managers create, edit, assign and delete; staff claim. Lists and details as the staff endpoints."""

    path = "/api/tasks"
    tags = ["tasks"]

    @get("/", summary="Tasks the caller may see")
    async def list_all(self, request: Request[CurrentUser, Any, Any]) -> dict[str, Any]:
        return await list_tasks(request)

    @post("/", status_code=201, summary="Create a task")
    async def create(
        self, request: Request[CurrentUser, Any, Any], data: JSONBody[CreateTaskRequest]
    ) -> dict[str, Any]:
        services = services_of(request)
        commands, actor = services.runtime.tasks, request.user.actor()
        fields = _task_fields(msgspec.structs.asdict(data))
        task_id = await services.run(commands.create(actor, fields))
        return await task_detail(request, task_id)

    @get("/{task_id:int}/", summary="A task")
    async def detail(self, request: Request[CurrentUser, Any, Any], task_id: FromPath[int]) -> dict[str, Any]:
        return await task_detail(request, task_id)

    @patch("/{task_id:int}/", summary="Edit a task (managers)")
    async def update(
        self, request: Request[CurrentUser, Any, Any], task_id: FromPath[int], data: JSONBody[UpdateTaskRequest]
    ) -> dict[str, Any]:
        services = services_of(request)
        commands, actor = services.runtime.tasks, request.user.actor()
        names = ("title", "description", "task_type", "priority", "property", "unit", "assigned_to", "due_date")
        changes = _task_fields(given(data, *names, "status", "notes"))
        await services.run(commands.update(actor, task_id, changes))
        return await task_detail(request, task_id)

    @delete("/{task_id:int}/", status_code=204, summary="Delete a task (managers; its history stays in the log)")
    async def remove(self, request: Request[CurrentUser, Any, Any], task_id: FromPath[int]) -> None:
        services = services_of(request)
        commands, actor = services.runtime.tasks, request.user.actor()
        await services.run(commands.delete(actor, task_id))

    @post("/{task_id:int}/assign/", status_code=200, summary="Assign (or, with null, unassign) a task")
    async def assign(
        self, request: Request[CurrentUser, Any, Any], task_id: FromPath[int], data: JSONBody[AssignRequest]
    ) -> dict[str, Any]:
        services = services_of(request)
        commands, actor = services.runtime.tasks, request.user.actor()
        await services.run(commands.assign(actor, task_id, data.user))
        return await task_detail(request, task_id)

    @post("/{task_id:int}/claim/", status_code=200, summary="Take an unassigned task of your group (staff)")
    async def claim(self, request: Request[CurrentUser, Any, Any], task_id: FromPath[int]) -> dict[str, Any]:
        services = services_of(request)
        commands, actor = services.runtime.tasks, request.user.actor()
        await services.run(commands.claim(actor, task_id))
        return await task_detail(request, task_id)


class StaffTasksController(Controller):
    path = "/api/staff/tasks"
    tags = ["staff"]

    @get("/", summary="Tasks the caller may see (the contract's staff list)")
    async def list_visible(self, request: Request[CurrentUser, Any, Any]) -> dict[str, Any]:
        return await list_tasks(request)

    @get("/{task_id:int}/", summary="A task with its checklist and photos")
    async def detail(self, request: Request[CurrentUser, Any, Any], task_id: FromPath[int]) -> dict[str, Any]:
        return await task_detail(request, task_id)

    @patch("/{task_id:int}/", summary="Change status or notes (the assignee or a manager)")
    async def work(
        self, request: Request[CurrentUser, Any, Any], task_id: FromPath[int], data: JSONBody[StaffUpdateRequest]
    ) -> dict[str, Any]:
        services = services_of(request)
        commands, actor = services.runtime.tasks, request.user.actor()
        fields = given(data, "status", "notes")
        return await services.run(commands.work(actor, task_id, fields.get("status"), fields.get("notes")))

    @get("/{task_id:int}/progress/", summary="Checklist progress")
    async def progress(self, request: Request[CurrentUser, Any, Any], task_id: FromPath[int]) -> dict[str, int]:
        row = await visible_task(request, task_id)
        return progress(int(row["checklist_completed"]), int(row["checklist_total"]))

    @patch("/{task_id:int}/checklist/{item_id:int}/", summary="Check an item, or give its value or notes")
    async def update_item(
        self,
        request: Request[CurrentUser, Any, Any],
        task_id: FromPath[int],
        item_id: FromPath[int],
        data: JSONBody[ChecklistItemRequest],
    ) -> dict[str, Any]:
        services = services_of(request)
        commands, actor = services.runtime.tasks, request.user.actor()
        changes = given(data, "completed", "value", "notes")
        await services.run(commands.update_item(actor, task_id, item_id, changes))
        row = await visible_task(request, task_id)
        item = await services.reader.fetchone(
            f"SELECT {ITEM_SELECT} FROM task_checklist_items_view WHERE id = %s AND task_id = %s", (item_id, task_id)
        )
        if item is None:
            raise NotFound(f"checklist item {item_id}")
        return {**item_out(item), "progress": progress(int(row["checklist_completed"]), int(row["checklist_total"]))}
