"""Marking notifications read: the caller's own inbox. Safe to re-run after a lost race: reading is idempotent."""

from __future__ import annotations

from cosmo.commands.base import Commands, Outcome, Session
from cosmo.domain.actors import Actor
from cosmo.domain.ids import aggregate_id
from cosmo.domain.inbox import Inbox


async def _inbox(s: Session, user_id: int) -> Inbox:
    inbox = await s.get(aggregate_id("inbox", user_id), Inbox)
    if inbox is None:
        inbox = Inbox(user_id=user_id)
        s.add(inbox)
    return inbox


class InboxCommands(Commands):
    async def mark_read(self, actor: Actor, notification_id: int) -> Outcome[None]:
        async def decide(s: Session) -> None:
            (await _inbox(s, actor.id)).mark_read(notification_id)

        return await self.execute(decide, retry=True)

    async def mark_all_read(self, actor: Actor, up_to: int) -> Outcome[None]:
        async def decide(s: Session) -> None:
            (await _inbox(s, actor.id)).mark_all_read(up_to)

        return await self.execute(decide, retry=True)
