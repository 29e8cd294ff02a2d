"""What superusers read of webhooks: endpoints (never their secrets) and their deliveries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec

from cosmo.domain.actors import Actor, require_superuser
from cosmo.domain.errors import NotFound
from cosmo.projections.queries import PageRequest, Reader, Slice, page_of
from cosmo.projections.webhooks.projection import DELIVERIES

DELIVERY_STATUSES = ("pending", "retrying", "delivered", "failed", "cancelled")


class WebhookOut(msgspec.Struct):
    id: int
    url: str
    event_types: list[str]
    is_active: bool
    description: str
    disabled_reason: str
    previous_secret_expires_at: datetime | None  # while set, the old secret still signs beside the new one
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookOut):
    secret: str  # shown once, at creation


class SecretOut(msgspec.Struct):
    secret: str
    previous_secret_expires_at: datetime | None


class DeliveryOut(msgspec.Struct):
    id: str
    webhook: int
    message_id: str  # the `webhook-id` header: the same on every attempt, redelivery and replay
    event_type: str
    status: str
    attempts: int
    response_status: int | None
    response_ms: int | None
    last_error: str | None
    created_at: datetime
    first_attempt_at: datetime | None
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    request_id: str | None  # the test, replay or redelivery that asked for it


class Requested(msgspec.Struct):
    """What a test, replay or redelivery queued."""

    request_id: str
    deliveries: int
    results: list[DeliveryOut]


WEBHOOK_SELECT = "id, url, event_types, is_active, description, disabled_reason, previous_until, created_at, updated_at"
DELIVERY_SELECT = (
    "id, webhook_id, message_id, event_type, status, attempts, response_status, response_ms, last_error, created_at,"
    " first_attempt_at, last_attempt_at, next_attempt_at, delivered_at, request_id"
)


def types_of(stored: str) -> list[str]:
    return [t for t in stored.split(",") if t]


def webhook_out(row: dict, now: datetime | None = None) -> WebhookOut:
    until = row["previous_until"]
    now = now or datetime.now(UTC)
    return WebhookOut(
        id=row["id"],
        url=row["url"],
        event_types=types_of(row["event_types"]),
        is_active=bool(row["is_active"]),
        description=row["description"],
        disabled_reason=row["disabled_reason"],
        previous_secret_expires_at=until if until is not None and until > now else None,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def delivery_out(row: dict) -> DeliveryOut:
    return DeliveryOut(
        id=row["id"],
        webhook=row["webhook_id"],
        message_id=row["message_id"],
        event_type=row["event_type"],
        status=row["status"],
        attempts=row["attempts"],
        response_status=row["response_status"],
        response_ms=row["response_ms"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        first_attempt_at=row["first_attempt_at"],
        last_attempt_at=row["last_attempt_at"],
        next_attempt_at=row["next_attempt_at"],
        delivered_at=row["delivered_at"],
        request_id=row["request_id"],
    )


@dataclass(frozen=True)
class DeliveryFilters:
    status: str | None = None


class WebhookQueries:
    def __init__(self, read: Reader):
        self._read = read

    async def page(self, actor: Actor, request: PageRequest) -> Slice[WebhookOut]:
        require_superuser(actor)
        return await page_of(
            self._read,
            request,
            select=WEBHOOK_SELECT,
            from_where="FROM webhooks_view",
            params=(),
            order_by="id",
            shape=webhook_out,
        )

    async def detail(self, actor: Actor, webhook_id: int) -> WebhookOut:
        require_superuser(actor)
        row = await self._read.fetchone(f"SELECT {WEBHOOK_SELECT} FROM webhooks_view WHERE id = %s", (webhook_id,))
        if row is None:
            raise NotFound(f"webhook {webhook_id}")
        return webhook_out(row)

    async def deliveries(
        self, actor: Actor, webhook_id: int, filters: DeliveryFilters, request: PageRequest
    ) -> Slice[DeliveryOut]:
        """Newest first."""
        await self.detail(actor, webhook_id)
        where, params = ["webhook_id = %s"], [webhook_id]
        if filters.status is not None:
            where.append("status = %s")
            params.append(filters.status)
        return await page_of(
            self._read,
            request,
            select=DELIVERY_SELECT,
            from_where=f"FROM {DELIVERIES} WHERE {' AND '.join(where)}",
            params=params,
            order_by="created_at DESC, source_position DESC, seq DESC",
            shape=delivery_out,
        )

    async def delivery(self, actor: Actor, webhook_id: int, delivery_id: str) -> DeliveryOut:
        require_superuser(actor)
        row = await self._read.fetchone(
            f"SELECT {DELIVERY_SELECT} FROM {DELIVERIES} WHERE id = %s AND webhook_id = %s", (delivery_id, webhook_id)
        )
        if row is None:
            raise NotFound(f"delivery {delivery_id}")
        return delivery_out(row)

    async def requested(self, actor: Actor, request_id: str, shown: int = 20) -> Requested:
        """The deliveries a test, replay or redelivery queued (the first `shown` of them, oldest message first)."""
        require_superuser(actor)
        count = await self._read.fetchone(
            f"SELECT count(*) AS n FROM {DELIVERIES} WHERE request_id = %s", (request_id,)
        )
        rows = await self._read.fetchall(
            f"SELECT {DELIVERY_SELECT} FROM {DELIVERIES} WHERE request_id = %s ORDER BY seq LIMIT %s",
            (request_id, shown),
        )
        return Requested(request_id, int(count["n"]) if count else 0, [delivery_out(r) for r in rows])
