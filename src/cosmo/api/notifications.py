"""The caller's notifications, the staff dashboard and task counts."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from cosmo.api.pages import Page
from cosmo.api.params import BoolParam, PageParam, PageSizeParam, boolean, ordering_param, page_request
from cosmo.api.state import Services
from cosmo.commands.inbox import InboxCommands
from cosmo.domain.actors import Actor
from cosmo.projections.counts import CountQueries, TaskCounts
from cosmo.projections.notifications import (
    NOTIFICATION_ORDERING,
    NotificationOut,
    NotificationQueries,
    UnreadCount,
)
from cosmo.projections.tasks import DASHBOARD_ITEMS, RecentTask, TaskQueries

NotificationOrdering = ordering_param(NOTIFICATION_ORDERING, "-created_at")


class MarkedRead(msgspec.Struct):
    marked_read: int


class Dashboard(msgspec.Struct):
    task_counts: TaskCounts
    recent_tasks: list[RecentTask]
    notifications: list[NotificationOut]


class NotificationsController(Controller):
    path = "/api/notifications"
    tags = ["notifications"]

    @get("/", summary="The caller's notifications, newest first")
    async def list_notifications(
        self,
        request: Request[Any, Any, Any],
        actor: NamedDependency[Actor],
        services: NamedDependency[Services],
        notifications: NamedDependency[NotificationQueries],
        is_read: BoolParam = None,
        ordering: NotificationOrdering = None,
        page: PageParam = None,
        page_size: PageSizeParam = None,
    ) -> Page[NotificationOut]:
        found = await notifications.page(actor, boolean("is_read", is_read), page_request(page, page_size, ordering))
        return services.page(request, found)

    @post("/{notification_id:int}/read/", status_code=200, summary="Mark one notification read")
    async def mark_read(
        self,
        notification_id: FromPath[int],
        actor: NamedDependency[Actor],
        services: NamedDependency[Services],
        inbox: NamedDependency[InboxCommands],
        notifications: NamedDependency[NotificationQueries],
    ) -> NotificationOut:
        await notifications.get(actor, notification_id)  # someone else's is a 404
        await services.run(inbox.mark_read(actor, notification_id))
        return await notifications.get(actor, notification_id)

    @post("/mark-all-read/", status_code=200, summary="Mark every notification read")
    async def mark_all_read(
        self,
        actor: NamedDependency[Actor],
        services: NamedDependency[Services],
        inbox: NamedDependency[InboxCommands],
        notifications: NamedDependency[NotificationQueries],
    ) -> MarkedRead:
        unread = await notifications.unread(actor)
        if unread.newest is not None:
            await services.run(inbox.mark_all_read(actor, unread.newest))
        return MarkedRead(unread.count)

    @get("/unread-count/", summary="How many notifications are unread")
    async def unread_count(
        self, actor: NamedDependency[Actor], notifications: NamedDependency[NotificationQueries]
    ) -> UnreadCount:
        return await notifications.unread_count(actor)


class DashboardController(Controller):
    path = "/api/staff"
    tags = ["staff"]

    @get("/dashboard/", summary="Task counts, recent tasks and notifications")
    async def dashboard(
        self,
        actor: NamedDependency[Actor],
        counts: NamedDependency[CountQueries],
        tasks: NamedDependency[TaskQueries],
        notifications: NamedDependency[NotificationQueries],
    ) -> Dashboard:
        return Dashboard(
            task_counts=await counts.for_actor(actor),
            recent_tasks=await tasks.recent(actor),
            notifications=await notifications.latest(actor, DASHBOARD_ITEMS),
        )

    @get("/task-counts/", summary="Task counts for dashboard updates")
    async def counts(self, actor: NamedDependency[Actor], counts: NamedDependency[CountQueries]) -> TaskCounts:
        return await counts.for_actor(actor)
