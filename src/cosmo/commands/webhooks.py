"""Webhook commands: superusers register, change, rotate, test, replay and redeliver; the delivery worker disables
endpoints that answer 410 Gone or keep failing."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from cosmo.commands.base import Commands, Outcome, Session
from cosmo.domain.actors import Actor, require_superuser
from cosmo.domain.checks import check_moment, utc
from cosmo.domain.errors import ValidationFailed
from cosmo.domain.webhooks import SECRET_BYTES, Webhook, checked_webhook, new_secret, require_webhook
from cosmo.storage.event_store import EventStore
from cosmo.storage.ids import IdAllocator

CheckUrl = Callable[[str], Awaitable[None]]


async def _webhook(s: Session, webhook_id: int) -> Webhook:
    return require_webhook(await s.get(Webhook.create_id(webhook_id), Webhook), webhook_id)


class WebhookCommands(Commands):
    def __init__(self, store: EventStore, ids: IdAllocator, allow_hosts: frozenset[str], check_url: CheckUrl):
        super().__init__(store, ids)
        self._allow_hosts = allow_hosts
        self._check_url = check_url  # where the URL's host points (the egress guard), checked before any event

    async def _checked(self, fields: dict[str, Any]) -> dict[str, Any]:
        fields = checked_webhook(fields, self._allow_hosts)
        if "url" in fields:
            await self._check_url(fields["url"])
        return fields

    async def create(self, actor: Actor, fields: dict[str, Any]) -> Outcome[tuple[int, str]]:
        """The new endpoint's id and its signing secret (shown once)."""
        require_superuser(actor)
        fields = await self._checked(fields)
        webhook_id = await self.ids.next("webhook")
        secret = new_secret(secrets.token_bytes(SECRET_BYTES))

        async def decide(s: Session) -> tuple[int, str]:
            s.add(Webhook.register(webhook_id, fields, secret, actor))
            return webhook_id, secret

        return await self.execute(decide, retry=True)

    async def update(self, actor: Actor, webhook_id: int, changes: dict[str, Any]) -> Outcome[None]:
        require_superuser(actor)
        changes = await self._checked(changes)

        async def decide(s: Session) -> None:
            (await _webhook(s, webhook_id)).update(changes, actor)

        return await self.execute(decide, retry=False)

    async def delete(self, actor: Actor, webhook_id: int) -> Outcome[None]:
        require_superuser(actor)  # before looking: a 404 would tell others which ids exist

        async def decide(s: Session) -> None:
            (await _webhook(s, webhook_id)).delete(actor)

        return await self.execute(decide, retry=True)

    async def rotate_secret(self, actor: Actor, webhook_id: int) -> Outcome[str]:
        require_superuser(actor)
        secret = new_secret(secrets.token_bytes(SECRET_BYTES))

        async def decide(s: Session) -> str:
            (await _webhook(s, webhook_id)).rotate_secret(secret, datetime.now(UTC), actor)
            return secret

        return await self.execute(decide, retry=False)

    async def disable(self, actor: Actor, webhook_id: int, reason: str) -> Outcome[bool]:
        async def decide(s: Session) -> bool:
            return (await _webhook(s, webhook_id)).disable(reason, actor)

        return await self.execute(decide, retry=True)

    async def test(self, actor: Actor, webhook_id: int) -> Outcome[UUID]:
        """Queue a `webhook.test` delivery; returns the request's id (the outbox names its delivery by it)."""
        require_superuser(actor)
        request_id = uuid4()

        async def decide(s: Session) -> UUID:
            (await _webhook(s, webhook_id)).request_test(request_id, actor)
            return request_id

        return await self.execute(decide, retry=True)

    async def replay(self, actor: Actor, webhook_id: int, since: datetime) -> Outcome[UUID]:
        require_superuser(actor)
        problems = check_moment(since)
        if problems:
            raise ValidationFailed({"since": problems})
        request_id = uuid4()
        since = utc(since) or since

        async def decide(s: Session) -> UUID:
            (await _webhook(s, webhook_id)).request_replay(request_id, since, actor)
            return request_id

        return await self.execute(decide, retry=True)

    async def redeliver(self, actor: Actor, webhook_id: int, message_id: str) -> Outcome[UUID]:
        """Queue the message again (`message_id`: a delivery's, found by the caller in the outbox)."""
        require_superuser(actor)
        request_id = uuid4()

        async def decide(s: Session) -> UUID:
            (await _webhook(s, webhook_id)).request_redelivery(request_id, message_id, actor)
            return request_id

        return await self.execute(decide, retry=True)
