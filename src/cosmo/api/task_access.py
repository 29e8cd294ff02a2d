"""Which tasks a caller may see: the one rule every task, checklist and photo endpoint reads through."""

from __future__ import annotations

from typing import Any

from litestar import Request

from cosmo.api.security import CurrentUser
from cosmo.api.state import services_of
from cosmo.domain.errors import NotFound
from cosmo.domain.tasks import sees_all_tasks, unassigned_types_seen

TASK_FROM = (
    "FROM tasks_view t LEFT JOIN users_view u ON u.id = t.assigned_to"
    " LEFT JOIN properties_view p ON p.id = t.property_id LEFT JOIN units_view un ON un.id = t.unit_id"
)
TASK_SELECT = (
    "t.id, t.title, t.description, t.status, t.task_type, t.priority, t.assigned_to, u.username AS assignee,"
    " t.property_id, p.name AS property_name, t.unit_id, un.unit_number, t.due_date, t.notes,"
    " t.checklist_template_id, t.checklist_template_name, t.checklist_total, t.checklist_completed,"
    " t.created_by, t.created_at, t.updated_at"
)


def visible_to(user: CurrentUser) -> tuple[str, list[Any]]:
    """The SQL condition for the tasks `user` may see: the rule in domain/tasks.py, as SQL."""
    if sees_all_tasks(user.role):
        return "NOT t.is_deleted", []
    types = unassigned_types_seen(user.task_group)
    if not types:
        return "NOT t.is_deleted AND t.assigned_to = %s", [user.id]
    marks = ", ".join(["%s"] * len(types))
    return (
        f"NOT t.is_deleted AND (t.assigned_to = %s OR (t.assigned_to IS NULL AND t.task_type IN ({marks})))",
        [user.id, *types],
    )


async def visible_task(request: Request[CurrentUser, Any, Any], task_id: int) -> dict[str, Any]:
    condition, params = visible_to(request.user)
    row = await services_of(request).reader.fetchone(
        f"SELECT {TASK_SELECT} {TASK_FROM} WHERE t.id = %s AND {condition}", (task_id, *params)
    )
    if row is None:
        raise NotFound(f"task {task_id}")
    return row
