"""The caller's notifications, the staff dashboard and task counts."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath

from cosmo.api.pagination import ordering, paginate, query_bool
from cosmo.api.security import CurrentUser
from cosmo.api.state import services_of
from cosmo.api.task_access import visible_to
from cosmo.domain.errors import NotFound
from cosmo.storage.db import AsyncDatabase

NOTIFICATION_SELECT = "id, verb, message, task_id, created_at, is_read, read_at"
NOTIFICATION_ORDERING = {"created_at": "id", "id": "id"}
DASHBOARD_ITEMS = 5


def notification_out(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "verb": row["verb"],
        "message": row["message"],
        "task": row["task_id"],
        "created_at": row["created_at"],
        "is_read": bool(row["is_read"]),
        "read_at": row["read_at"],
    }


async def task_counts(reader: AsyncDatabase, user: CurrentUser) -> dict[str, int]:
    """Counted over the tasks `user` may see. `total` is the open and completed work (pending + in progress +
    completed); canceled tasks are counted apart."""
    condition, params = visible_to(user)
    rows = await reader.fetchall(
        f"SELECT t.status, count(*) AS n FROM tasks_view t WHERE {condition} GROUP BY t.status", params
    )
    by_status = {r["status"]: int(r["n"]) for r in rows}
    counts = {
        "pending": by_status.get("pending", 0),
        "in_progress": by_status.get("in-progress", 0),
        "completed": by_status.get("completed", 0),
    }
    return {"total": sum(counts.values()), **counts, "canceled": by_status.get("canceled", 0)}


class NotificationsController(Controller):
    path = "/api/notifications"
    tags = ["notifications"]

    @get("/", summary="The caller's notifications, newest first")
    async def list_notifications(self, request: Request[CurrentUser, Any, Any]) -> dict[str, Any]:
        where, params = ["user_id = %s"], [request.user.id]
        is_read = query_bool(request, "is_read")
        if is_read is not None:
            where.append("is_read = %s")
            params.append(is_read)
        return await paginate(
            request,
            services_of(request).reader,
            select=NOTIFICATION_SELECT,
            from_where=f"FROM notifications_view WHERE {' AND '.join(where)}",
            params=params,
            order_by=ordering(request, NOTIFICATION_ORDERING, "-created_at"),
            shape=notification_out,
        )

    @post("/{notification_id:int}/read/", status_code=200, summary="Mark one notification read")
    async def mark_read(
        self, request: Request[CurrentUser, Any, Any], notification_id: FromPath[int]
    ) -> dict[str, Any]:
        services = services_of(request)
        user_id = request.user.id
        sql = f"SELECT {NOTIFICATION_SELECT} FROM notifications_view WHERE id = %s AND user_id = %s"
        if await services.reader.fetchone(sql, (notification_id, user_id)) is None:
            raise NotFound(f"notification {notification_id}")
        commands = services.runtime.inbox
        await services.run(commands.mark_read(request.user.actor(), notification_id))
        row = await services.reader.fetchone(sql, (notification_id, user_id))
        assert row is not None
        return notification_out(row)

    @post("/mark-all-read/", status_code=200, summary="Mark every notification read")
    async def mark_all_read(self, request: Request[CurrentUser, Any, Any]) -> dict[str, int]:
        services = services_of(request)
        user_id = request.user.id
        row = await services.reader.fetchone(
            "SELECT max(id) AS newest, count(*) AS unread FROM notifications_view WHERE user_id = %s AND NOT is_read",
            (user_id,),
        )
        if row is None or row["newest"] is None:
            return {"marked_read": 0}
        newest = int(row["newest"])
        commands = services.runtime.inbox
        await services.run(commands.mark_all_read(request.user.actor(), newest))
        return {"marked_read": int(row["unread"])}

    @get("/unread-count/", summary="How many notifications are unread")
    async def unread_count(self, request: Request[CurrentUser, Any, Any]) -> dict[str, int]:
        row = await services_of(request).reader.fetchone(
            "SELECT count(*) AS n FROM notifications_view WHERE user_id = %s AND NOT is_read", (request.user.id,)
        )
        return {"unread_count": int(row["n"]) if row else 0}


class DashboardController(Controller):
    path = "/api/staff"
    tags = ["staff"]

    @get("/dashboard/", summary="Task counts, recent tasks and notifications")
    async def dashboard(self, request: Request[CurrentUser, Any, Any]) -> dict[str, Any]:
        reader, user = services_of(request).reader, request.user
        condition, params = visible_to(user)
        recent = await reader.fetchall(
            f"SELECT t.id, t.title, t.status, t.priority, t.due_date FROM tasks_view t WHERE {condition}"
            " ORDER BY t.updated_at DESC, t.id DESC LIMIT %s",
            (*params, DASHBOARD_ITEMS),
        )
        notes = await reader.fetchall(
            f"SELECT {NOTIFICATION_SELECT} FROM notifications_view WHERE user_id = %s ORDER BY id DESC LIMIT %s",
            (user.id, DASHBOARD_ITEMS),
        )
        return {
            "task_counts": await task_counts(reader, user),
            "recent_tasks": [dict(r) for r in recent],
            "notifications": [notification_out(n) for n in notes],
        }

    @get("/task-counts/", summary="Task counts for dashboard updates")
    async def counts(self, request: Request[CurrentUser, Any, Any]) -> dict[str, int]:
        return await task_counts(services_of(request).reader, request.user)
