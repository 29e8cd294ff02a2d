"""Tasks: the manager endpoints under /api/tasks/ and the contract's staff endpoints under /api/staff/tasks/.

Both read through the tasks read model's one visibility rule: a task the caller may not see is a 404, so ids do not
reveal what exists. Writes are decided by the Task aggregate, which answers 403 to anyone but the assignee or a
manager.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from msgspec import UNSET, UnsetType

from cosmo.api.deps import Context
from cosmo.api.pages import Page
from cosmo.api.params import (
    IdParam,
    MomentParam,
    PageParam,
    PageSizeParam,
    SearchParam,
    choice,
    choices,
    integer,
    moment,
    ordering_param,
    page_request,
    text,
)
from cosmo.api.wire import Id, given, one_of
from cosmo.api.wire import text as max_text
from cosmo.commands.tasks import TaskState
from cosmo.domain.checklists import TASK_TYPES
from cosmo.domain.tasks import DESCRIPTION_MAX, NOTES_MAX, PRIORITIES, STATUSES, TITLE_MAX, VALUE_MAX
from cosmo.projections.tasks import (
    TASK_ORDERING,
    ItemWithProgress,
    Progress,
    TaskDetail,
    TaskFilters,
    TaskOut,
)


class CreateTaskRequest(msgspec.Struct, forbid_unknown_fields=True):
    title: max_text(TITLE_MAX)
    task_type: one_of(TASK_TYPES)
    description: max_text(DESCRIPTION_MAX) = ""
    priority: one_of(PRIORITIES) = "medium"
    property: Id | None = None
    unit: Id | None = None
    assigned_to: Id | None = None
    due_date: datetime | None = None
    checklist_template: Id | None = None


class UpdateTaskRequest(msgspec.Struct, forbid_unknown_fields=True):
    title: max_text(TITLE_MAX) | UnsetType = UNSET
    description: max_text(DESCRIPTION_MAX) | UnsetType = UNSET
    task_type: one_of(TASK_TYPES) | UnsetType = UNSET
    priority: one_of(PRIORITIES) | UnsetType = UNSET
    property: Id | UnsetType | None = UNSET
    unit: Id | UnsetType | None = UNSET
    assigned_to: Id | UnsetType | None = UNSET
    due_date: datetime | UnsetType | None = UNSET
    status: one_of(STATUSES) | UnsetType = UNSET
    notes: max_text(NOTES_MAX) | UnsetType = UNSET


class StaffUpdateRequest(msgspec.Struct, forbid_unknown_fields=True):
    status: one_of(STATUSES) | UnsetType = UNSET
    notes: max_text(NOTES_MAX) | UnsetType = UNSET


class AssignRequest(msgspec.Struct, forbid_unknown_fields=True):
    user: Id | None  # null unassigns


class ChecklistItemRequest(msgspec.Struct, forbid_unknown_fields=True):
    completed: bool | UnsetType = UNSET
    value: max_text(VALUE_MAX) | int | float | UnsetType | None = UNSET
    notes: max_text(NOTES_MAX) | UnsetType = UNSET


# Field names on the wire -> the aggregate's.
TASK_FIELDS = {"property": "property_id", "unit": "unit_id"}
StatusParam = Annotated[str | None, choices("Only tasks in this status.", STATUSES)]
TypeParam = Annotated[str | None, choices("Only tasks of this type.", TASK_TYPES)]
PriorityParam = Annotated[str | None, choices("Only tasks of this priority.", PRIORITIES)]
TaskOrdering = ordering_param(TASK_ORDERING, "-created_at")


def _task_fields(fields: dict[str, Any]) -> dict[str, Any]:
    return {TASK_FIELDS.get(k, k): v for k, v in fields.items()}


@get(["/api/tasks/", "/api/staff/tasks/"], tags=["tasks", "staff"], summary="Tasks the caller may see")
async def list_tasks(
    request: Request[Any, Any, Any],
    ctx: NamedDependency[Context],
    status: StatusParam = None,
    task_type: TypeParam = None,
    priority: PriorityParam = None,
    assigned_to: IdParam = None,
    property: IdParam = None,
    due_before: MomentParam = None,
    due_after: MomentParam = None,
    search: SearchParam = None,
    ordering: TaskOrdering = None,
    page: PageParam = None,
    page_size: PageSizeParam = None,
) -> Page[TaskOut]:
    """The contract's staff list, and the same at /api/tasks/."""
    filters = TaskFilters(
        status=choice("status", status, STATUSES),
        task_type=choice("task_type", task_type, TASK_TYPES),
        priority=choice("priority", priority, PRIORITIES),
        assigned_to=integer("assigned_to", assigned_to),
        property=integer("property", property),
        due_before=moment("due_before", due_before),
        due_after=moment("due_after", due_after),
        search=text("search", search),
    )
    found = await ctx.tasks.page(ctx.actor, filters, page_request(page, page_size, ordering))
    return ctx.services.page(request, found)


@get(
    ["/api/tasks/{task_id:int}/", "/api/staff/tasks/{task_id:int}/"],
    tags=["tasks", "staff"],
    summary="A task with its checklist and photos",
)
async def task_detail(task_id: FromPath[int], ctx: NamedDependency[Context]) -> TaskDetail:
    return await ctx.tasks.detail(ctx.actor, task_id)


class TasksController(Controller):
    """Managers create, edit, assign and delete; staff claim. The list and the detail are `list_tasks` and
    `task_detail`, at both /api/tasks/ and /api/staff/tasks/."""

    path = "/api/tasks"
    tags = ["tasks"]

    @post("/", status_code=201, summary="Create a task")
    async def create(
        self,
        data: JSONBody[CreateTaskRequest],
        ctx: NamedDependency[Context],
    ) -> TaskDetail:
        task_id = await ctx.services.run(
            ctx.task_commands.create(ctx.actor, _task_fields(msgspec.structs.asdict(data)))
        )
        return await ctx.tasks.detail(ctx.actor, task_id)

    @patch("/{task_id:int}/", summary="Edit a task (managers)")
    async def update(
        self,
        task_id: FromPath[int],
        data: JSONBody[UpdateTaskRequest],
        ctx: NamedDependency[Context],
    ) -> TaskDetail:
        names = ("title", "description", "task_type", "priority", "property", "unit", "assigned_to", "due_date")
        changes = _task_fields(given(data, *names, "status", "notes"))
        await ctx.services.run(ctx.task_commands.update(ctx.actor, task_id, changes))
        return await ctx.tasks.detail(ctx.actor, task_id)

    @delete("/{task_id:int}/", status_code=204, summary="Delete a task (managers; its history stays in the log)")
    async def remove(
        self,
        task_id: FromPath[int],
        ctx: NamedDependency[Context],
    ) -> None:
        await ctx.services.run(ctx.task_commands.delete(ctx.actor, task_id))

    @post("/{task_id:int}/assign/", status_code=200, summary="Assign (or, with null, unassign) a task")
    async def assign(
        self,
        task_id: FromPath[int],
        data: JSONBody[AssignRequest],
        ctx: NamedDependency[Context],
    ) -> TaskDetail:
        await ctx.services.run(ctx.task_commands.assign(ctx.actor, task_id, data.user))
        return await ctx.tasks.detail(ctx.actor, task_id)

    @post("/{task_id:int}/claim/", status_code=200, summary="Take an unassigned task of your group (staff)")
    async def claim(
        self,
        task_id: FromPath[int],
        ctx: NamedDependency[Context],
    ) -> TaskDetail:
        await ctx.services.run(ctx.task_commands.claim(ctx.actor, task_id))
        return await ctx.tasks.detail(ctx.actor, task_id)


class StaffTasksController(Controller):
    path = "/api/staff/tasks"
    tags = ["staff"]

    @patch("/{task_id:int}/", summary="Change status or notes (the assignee or a manager)")
    async def work(
        self,
        task_id: FromPath[int],
        data: JSONBody[StaffUpdateRequest],
        ctx: NamedDependency[Context],
    ) -> TaskState:
        fields = given(data, "status", "notes")
        return await ctx.services.run(
            ctx.task_commands.work(ctx.actor, task_id, fields.get("status"), fields.get("notes"))
        )

    @get("/{task_id:int}/progress/", summary="Checklist progress")
    async def progress(
        self,
        task_id: FromPath[int],
        ctx: NamedDependency[Context],
    ) -> Progress:
        return await ctx.tasks.progress(ctx.actor, task_id)

    @patch("/{task_id:int}/checklist/{item_id:int}/", summary="Check an item, or give its value or notes")
    async def update_item(
        self,
        task_id: FromPath[int],
        item_id: FromPath[int],
        data: JSONBody[ChecklistItemRequest],
        ctx: NamedDependency[Context],
    ) -> ItemWithProgress:
        changes = given(data, "completed", "value", "notes")
        await ctx.services.run(ctx.task_commands.update_item(ctx.actor, task_id, item_id, changes))
        return await ctx.tasks.item(ctx.actor, task_id, item_id)
