"""A user's notification inbox: which notifications they have read. Notifications themselves are derived (a
projection of task events); reading them is the user's act, so it is an event too.

The inbox keeps "read up to" (mark-all-read) and the most recent READ_KEPT notifications read one by one since:
enough to make re-reading a notification a no-op, without a state that grows with every notification a user ever
opened. Re-reading an older one records another `Read`, which the read side applies as a no-op."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from cosmo.domain.ids import SNAPSHOT_EVERY, aggregate_id

READ_KEPT = 256


class Inbox(Aggregate):
    snapshot_every = SNAPSHOT_EVERY

    @staticmethod
    def create_id(user_id: int) -> UUID:
        return aggregate_id("inbox", user_id)

    @event("Opened")
    def __init__(self, user_id: int):
        self.user_id = user_id
        self.read_up_to = 0  # every notification with an id up to this one is read
        self.read: set[int] = set()

    def is_read(self, notification_id: int) -> bool:
        return notification_id <= self.read_up_to or notification_id in self.read

    def mark_read(self, notification_id: int) -> None:
        if not self.is_read(notification_id):
            self._read(self.user_id, notification_id)

    # Events name the user so the notifications projection needs no lookup to apply them.
    @event("Read")
    def _read(self, user_id: int, notification_id: int) -> None:
        self.read.add(notification_id)
        if len(self.read) > READ_KEPT:
            self.read.remove(min(self.read))

    def mark_all_read(self, up_to: int) -> None:
        if up_to > self.read_up_to:
            self._all_read(self.user_id, up_to)

    @event("AllRead")
    def _all_read(self, user_id: int, up_to: int) -> None:
        self.read_up_to = up_to
        self.read = {n for n in self.read if n > up_to}
