"""Marking notifications read. Safe to re-run after a lost race: reading is idempotent."""

from __future__ import annotations

from cosmo.commands.base import CommandHandler
from cosmo.domain.ids import aggregate_id
from cosmo.domain.inbox import Inbox


class InboxCommands(CommandHandler):
    def _inbox(self, user_id: int) -> Inbox:
        return self._find(aggregate_id("inbox", user_id), Inbox) or Inbox(user_id=user_id)

    def mark_read(self, user_id: int, notification_id: int) -> int:
        def decide() -> int:
            inbox = self._inbox(user_id)
            inbox.mark_read(notification_id)
            return self._save(inbox)

        return self._retrying(decide)

    def mark_all_read(self, user_id: int, up_to: int) -> int:
        def decide() -> int:
            inbox = self._inbox(user_id)
            inbox.mark_all_read(up_to)
            return self._save(inbox)

        return self._retrying(decide)
