"""The staff dashboard: a view over three read models (task counts, recent tasks, notifications), read in one go."""

from __future__ import annotations

import msgspec

from cosmo.domain.actors import Actor
from cosmo.projections.counts import CountQueries, TaskCounts
from cosmo.projections.notifications import NotificationOut, NotificationQueries
from cosmo.projections.queries import Reader
from cosmo.projections.tasks import DASHBOARD_ITEMS, RecentTask, TaskQueries


class Dashboard(msgspec.Struct):
    task_counts: TaskCounts
    recent_tasks: list[RecentTask]
    notifications: list[NotificationOut]


class DashboardQueries:
    def __init__(self, read: Reader, counts: CountQueries, tasks: TaskQueries, notifications: NotificationQueries):
        self._read = read
        self._counts = counts
        self._tasks = tasks
        self._notifications = notifications

    async def for_actor(self, actor: Actor) -> Dashboard:
        # The three reads go together (one round trip on PostgreSQL): the dashboard is polled.
        counts = self._counts.statement(actor)
        recent = self._tasks.recent(actor)
        latest = self._notifications.latest(actor, DASHBOARD_ITEMS)
        rows = await self._read.fetch_many([(s.sql, s.params) for s in (counts, recent, latest)])
        return Dashboard(counts.shape(rows[0]), recent.shape(rows[1]), latest.shape(rows[2]))
