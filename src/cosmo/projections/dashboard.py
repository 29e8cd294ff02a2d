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
        # The three reads go as one statement: the dashboard is polled, and on PostgreSQL three statements, even
        # pipelined, cost the API process twice what one does.
        counts = self._counts.packed(actor)
        recent = self._tasks.recent(actor)
        latest = self._notifications.latest(actor, DASHBOARD_ITEMS)
        texts = await self._read.fetch_packed([(r.sql, r.params, r.columns) for r in (counts, recent, latest)])
        return Dashboard(counts.decode(texts[0]), recent.decode(texts[1]), latest.decode(texts[2]))
