"""Webhook endpoints: where superusers ask for events to be delivered, with what secret, and what they asked of
the delivery worker (a test, a replay, a redelivery). Deliveries themselves are not events: they live in the
outbox read model, so an endpoint's stream grows only with what people do to it.

The rules that need no I/O live here: the URL's shape, the event types, the secret's format, the retry schedule.
Whether a host resolves to an address deliveries may reach is the egress guard's (live/egress.py).
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from cosmo.domain.actors import Actor, require_superuser
from cosmo.domain.checks import Check, changed, check_text, field_problems
from cosmo.domain.errors import NotFound, ValidationFailed
from cosmo.domain.ids import SNAPSHOT_EVERY, aggregate_id

EVENT_TYPES = (
    "task.created",
    "task.assigned",
    "task.status_changed",
    "task.completed",
    "booking.created",
    "booking.updated",
    "booking.cancelled",
    "booking.import_completed",
    "photo.uploaded",
    "photo.reviewed",
    "message.created",
)
TEST_EVENT = "webhook.test"
URL_MAX = 2000
DESCRIPTION_MAX = 500
SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
SECRET_BYTES = 32
# After a rotation the old secret signs beside the new one for this long, so receivers can switch without a gap.
ROTATION_OVERLAP = timedelta(hours=24)
# Seconds before each retry after a failed attempt (the first attempt is immediate): 8 attempts in all.
RETRY_SCHEDULE = (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600)
# An endpoint with no successful delivery for this long, while deliveries kept failing, is disabled.
FAILING_LIMIT = timedelta(days=5)


def new_secret(random_bytes: bytes) -> str:
    if len(random_bytes) < 24:
        raise ValueError("a signing secret needs at least 24 random bytes")
    return SECRET_PREFIX + base64.b64encode(random_bytes).decode()


def url_problems(url: str, allow_hosts: frozenset[str]) -> list[str]:
    """What is wrong with the URL's shape: https (http only to an allow-listed host), a host, no credentials or
    fragment. Where the host points is checked apart, by resolving it."""
    problems = check_text(url, URL_MAX, required=True)
    if problems:
        return problems
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return ["Enter a valid URL."]
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return ["Enter an https:// URL."]
    if parts.scheme == "http" and host_of(url) not in allow_hosts:
        return ["Enter an https:// URL (http is accepted only for hosts the operator allow-lists)."]
    if parts.username is not None or parts.password is not None:
        return ["A webhook URL may not carry credentials; the signature authenticates deliveries."]
    if "#" in url:
        return ["A webhook URL may not have a fragment (#...)."]
    if parts.port == 0:
        return ["Enter a port between 1 and 65535."]
    if any(c.isspace() for c in url.strip()):
        return ["Enter a valid URL."]
    return []


def host_of(url: str) -> str:
    return (urlsplit(url.strip()).hostname or "").lower()


def event_type_problems(types: list[str]) -> list[str]:
    unknown = [t for t in types if t not in EVENT_TYPES]
    if unknown:
        shown = ", ".join(repr(t[:50]) for t in unknown[:5])
        return [f"Unknown event types: {shown}. Valid types: {', '.join(EVENT_TYPES)}."]
    if len(set(types)) != len(types):
        return ["List each event type once."]
    return []


def webhook_problems(fields: dict[str, Any], allow_hosts: frozenset[str]) -> dict[str, list[str]]:
    checks: dict[str, Check] = {
        "url": lambda v: url_problems(v, allow_hosts),
        "event_types": event_type_problems,
        "description": lambda v: check_text(v, DESCRIPTION_MAX, multiline=True),
    }
    return field_problems(fields, checks)


def checked_webhook(fields: dict[str, Any], allow_hosts: frozenset[str]) -> dict[str, Any]:
    problems = webhook_problems(fields, allow_hosts)
    if problems:
        raise ValidationFailed(problems)
    out = dict(fields)
    if "url" in out:
        out["url"] = out["url"].strip()
    if "event_types" in out:
        out["event_types"] = sorted(out["event_types"], key=EVENT_TYPES.index)
    return out


def retry_delay(failed_attempts: int) -> int | None:
    """Seconds to wait after the `failed_attempts`-th failure, or None when the schedule is spent."""
    if failed_attempts < 1 or failed_attempts > len(RETRY_SCHEDULE):
        return None
    return RETRY_SCHEDULE[failed_attempts - 1]


class Webhook(Aggregate):
    snapshot_every = SNAPSHOT_EVERY

    @staticmethod
    def create_id(webhook_id: int) -> UUID:
        return aggregate_id("webhook", webhook_id)

    @event("Registered")
    def __init__(
        self,
        webhook_id: int,
        url: str,
        event_types: list[str],
        is_active: bool,
        description: str,
        secret: str,
        actor_id: int,
    ):
        self.webhook_id = webhook_id
        self.url = url
        self.event_types = event_types
        self.is_active = is_active
        self.description = description
        self.secret = secret
        self.previous_secret: str | None = None
        self.previous_until: datetime | None = None
        self.created_by = actor_id
        self.is_deleted = False
        self.disabled_reason = ""

    @classmethod
    def register(cls, webhook_id: int, fields: dict[str, Any], secret: str, actor: Actor) -> Webhook:
        require_superuser(actor)
        return cls(
            webhook_id=webhook_id,
            url=fields["url"],
            event_types=fields.get("event_types", []),
            is_active=fields.get("is_active", True),
            description=fields.get("description", ""),
            secret=secret,
            actor_id=actor.id,
        )

    def require_live(self, actor: Actor) -> None:
        require_superuser(actor)
        if self.is_deleted:
            raise NotFound(f"webhook {self.webhook_id}")

    def update(self, changes: dict[str, Any], actor: Actor) -> None:
        self.require_live(actor)
        changes = changed(self, changes)
        if changes:
            self._updated(changes, actor.id)

    @event("Updated")
    def _updated(self, changes: dict[str, Any], actor_id: int) -> None:
        for key, value in changes.items():
            setattr(self, key, value)
        if changes.get("is_active"):
            self.disabled_reason = ""

    def delete(self, actor: Actor) -> None:
        self.require_live(actor)
        self._deleted(actor.id)

    @event("Deleted")
    def _deleted(self, actor_id: int) -> None:
        self.is_deleted = True
        self.is_active = False

    def rotate_secret(self, secret: str, now: datetime, actor: Actor) -> None:
        self.require_live(actor)
        self._rotated(secret, self.secret, now + ROTATION_OVERLAP, actor.id)

    @event("SecretRotated")
    def _rotated(self, secret: str, previous_secret: str, previous_until: datetime, actor_id: int) -> None:
        self.secret = secret
        self.previous_secret = previous_secret
        self.previous_until = previous_until

    def disable(self, reason: str, actor: Actor) -> bool:
        """The delivery worker's: the receiver said 410 Gone, or kept failing. False when already inactive."""
        require_superuser(actor)
        if self.is_deleted or not self.is_active:
            return False
        self._disabled(reason, self.created_by, actor.id)
        return True

    @event("Disabled")
    def _disabled(self, reason: str, owner_id: int, actor_id: int) -> None:
        self.is_active = False
        self.disabled_reason = reason

    def _require_active(self, actor: Actor) -> None:
        self.require_live(actor)
        if not self.is_active:
            raise ValidationFailed.one("is_active", "This endpoint is not active; activate it first.")

    def request_test(self, request_id: UUID, actor: Actor) -> None:
        self._require_active(actor)
        self._test_requested(request_id, actor.id)

    @event("TestRequested")
    def _test_requested(self, request_id: UUID, actor_id: int) -> None:
        pass

    def request_replay(self, request_id: UUID, since: datetime, actor: Actor) -> None:
        self._require_active(actor)
        self._replay_requested(request_id, since, actor.id)

    @event("ReplayRequested")
    def _replay_requested(self, request_id: UUID, since: datetime, actor_id: int) -> None:
        pass

    def request_redelivery(self, request_id: UUID, message_id: str, actor: Actor) -> None:
        self._require_active(actor)
        self._redelivery_requested(request_id, message_id, actor.id)

    @event("RedeliveryRequested")
    def _redelivery_requested(self, request_id: UUID, message_id: str, actor_id: int) -> None:
        pass


def require_webhook(found: Webhook | None, webhook_id: int) -> Webhook:
    if found is None or found.is_deleted:
        raise NotFound(f"webhook {webhook_id}")
    return found
