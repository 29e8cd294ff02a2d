"""The caller's notifications, the staff dashboard and task counts."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from cosmo.api.deps import Context
from cosmo.api.pages import Page
from cosmo.api.params import BoolParam, PageParam, PageSizeParam, boolean, ordering_param, page_request
from cosmo.projections.counts import TaskCounts
from cosmo.projections.dashboard import Dashboard
from cosmo.projections.notifications import (
    NOTIFICATION_ORDERING,
    NotificationOut,
    UnreadCount,
)

NotificationOrdering = ordering_param(NOTIFICATION_ORDERING, "-created_at")


class MarkedRead(msgspec.Struct):
    marked_read: int


class NotificationsController(Controller):
    path = "/api/notifications"
    tags = ["notifications"]

    @get("/", summary="The caller's notifications, newest first")
    async def list_notifications(
        self,
        request: Request[Any, Any, Any],
        ctx: NamedDependency[Context],
        is_read: BoolParam = None,
        ordering: NotificationOrdering = None,
        page: PageParam = None,
        page_size: PageSizeParam = None,
    ) -> Page[NotificationOut]:
        found = await ctx.notifications.page(
            ctx.actor, boolean("is_read", is_read), page_request(page, page_size, ordering)
        )
        return ctx.services.page(request, found)

    @post("/{notification_id:int}/read/", status_code=200, summary="Mark one notification read")
    async def mark_read(
        self,
        notification_id: FromPath[int],
        ctx: NamedDependency[Context],
    ) -> NotificationOut:
        await ctx.notifications.get(ctx.actor, notification_id)  # someone else's is a 404
        await ctx.services.run(ctx.inbox.mark_read(ctx.actor, notification_id))
        return await ctx.notifications.get(ctx.actor, notification_id)

    @post("/mark-all-read/", status_code=200, summary="Mark every notification read")
    async def mark_all_read(
        self,
        ctx: NamedDependency[Context],
    ) -> MarkedRead:
        unread = await ctx.notifications.unread(ctx.actor)
        if unread.newest is not None:
            await ctx.services.run(ctx.inbox.mark_all_read(ctx.actor, unread.newest))
        return MarkedRead(unread.count)

    @get("/unread-count/", summary="How many notifications are unread")
    async def unread_count(
        self,
        ctx: NamedDependency[Context],
    ) -> UnreadCount:
        return await ctx.notifications.unread_count(ctx.actor)


class DashboardController(Controller):
    path = "/api/staff"
    tags = ["staff"]

    @get("/dashboard/", summary="Task counts, recent tasks and notifications")
    async def dashboard(self, ctx: NamedDependency[Context]) -> Dashboard:
        return await ctx.dashboard.for_actor(ctx.actor)

    @get("/task-counts/", summary="Task counts for dashboard updates")
    async def counts(self, ctx: NamedDependency[Context]) -> TaskCounts:
        return await ctx.counts.for_actor(ctx.actor)
