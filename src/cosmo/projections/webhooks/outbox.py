"""The delivery worker's side of the outbox: which deliveries are due, where they go, and what became of them.

A delivery is due when it is open (pending or retrying), its time has come, and it is the first open delivery of
its endpoint and entity: a task's `task.completed` never overtakes its `task.created`, even while that one waits
for a retry. One process delivers at a time, holding the `webhooks` lease.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cosmo.projections.webhooks.projection import DELIVERIES, IS_OPEN
from cosmo.storage.db import AsyncDatabase

ERROR_MAX = 500


@dataclass(frozen=True)
class Due:
    id: str
    webhook_id: int
    message_id: str
    event_type: str
    attempts: int
    originator_id: str
    originator_version: int
    occurred_at: datetime
    extra: dict[str, Any]


@dataclass(frozen=True)
class Endpoint:
    id: int
    url: str
    secrets: tuple[str, ...]  # the current secret, and the previous one while it still signs
    is_active: bool
    created_by: int


_DUE = (
    "SELECT d.id, d.webhook_id, d.message_id, d.event_type, d.attempts, m.originator_id, m.originator_version,"
    " m.occurred_at, m.extra FROM ("
    # Each endpoint's due heads in turn order; an endpoint contributes at most `per_endpoint` of them, so a long
    # backlog at one (a slow or failing receiver) cannot fill the batch and starve the others.
    "  SELECT h.*, row_number() OVER (PARTITION BY h.webhook_id ORDER BY h.next_attempt_at, h.source_position, h.seq)"
    "  AS turn FROM ("
    "   SELECT id, webhook_id, message_id, event_type, attempts, next_attempt_at, source_position, seq,"
    "   row_number() OVER (PARTITION BY webhook_id, entity ORDER BY source_position, seq) AS place"
    f"   FROM {DELIVERIES} WHERE {IS_OPEN}"
    "  ) h WHERE h.place = 1 AND h.next_attempt_at <= %s"
    ") d JOIN webhook_messages_view m ON m.message_id = d.message_id"
    " WHERE d.turn <= %s ORDER BY d.next_attempt_at, d.source_position, d.seq LIMIT %s"
)


class Outbox:
    def __init__(self, db: AsyncDatabase):
        self._db = db

    async def due(self, now: datetime, limit: int, per_endpoint: int) -> list[Due]:
        """What may be sent now: the first open delivery of each endpoint and entity, at most `per_endpoint` of an
        endpoint's (those in flight included: they are still open)."""
        rows = await self._db.fetchall(_DUE, (now, per_endpoint, limit))
        return [
            Due(
                id=r["id"],
                webhook_id=r["webhook_id"],
                message_id=r["message_id"],
                event_type=r["event_type"],
                attempts=r["attempts"],
                originator_id=r["originator_id"],
                originator_version=r["originator_version"],
                occurred_at=r["occurred_at"],
                extra=json.loads(r["extra"]),
            )
            for r in rows
        ]

    async def endpoints(self, ids: list[int], now: datetime) -> dict[int, Endpoint]:
        if not ids:
            return {}
        marks = ", ".join(["%s"] * len(ids))
        rows = await self._db.fetchall(
            "SELECT id, url, secret, previous_secret, previous_until, is_active, created_by FROM webhooks_view"
            f" WHERE id IN ({marks})",
            ids,
        )
        found = {}
        for r in rows:
            keys = [r["secret"]]
            if r["previous_secret"] and r["previous_until"] is not None and r["previous_until"] > now:
                keys.append(r["previous_secret"])
            found[r["id"]] = Endpoint(r["id"], r["url"], tuple(keys), bool(r["is_active"]), r["created_by"])
        return found

    async def delivered(self, delivery_id: str, now: datetime, status: int, ms: int) -> None:
        await self._db.write(
            f"UPDATE {DELIVERIES} SET status = 'delivered', attempts = attempts + 1, delivered_at = %s,"
            " first_attempt_at = coalesce(first_attempt_at, %s), last_attempt_at = %s, response_status = %s,"
            " response_ms = %s, last_error = NULL, next_attempt_at = NULL"
            f" WHERE id = %s AND {IS_OPEN}",
            (now, now, now, status, ms, delivery_id),
        )

    async def failed(
        self, delivery_id: str, now: datetime, status: int | None, ms: int | None, error: str, retry_at: datetime | None
    ) -> None:
        """An attempt failed: retried at `retry_at`, or given up (None)."""
        await self._db.write(
            f"UPDATE {DELIVERIES} SET status = %s, attempts = attempts + 1, next_attempt_at = %s,"
            " first_attempt_at = coalesce(first_attempt_at, %s), last_attempt_at = %s, response_status = %s,"
            f" response_ms = %s, last_error = %s WHERE id = %s AND {IS_OPEN}",
            ("retrying" if retry_at else "failed", retry_at, now, now, status, ms, error[:ERROR_MAX], delivery_id),
        )

    async def cancelled(self, delivery_id: str) -> None:
        await self._db.write(
            f"UPDATE {DELIVERIES} SET status = 'cancelled', next_attempt_at = NULL WHERE id = %s AND {IS_OPEN}",
            (delivery_id,),
        )

    async def healthy(self, webhook_id: int, now: datetime) -> None:
        await self._db.write(
            "INSERT INTO webhook_health (webhook_id, failing_since, healthy_since) VALUES (%s, NULL, %s)"
            " ON CONFLICT (webhook_id) DO UPDATE SET failing_since = NULL, healthy_since = excluded.healthy_since",
            (webhook_id, now),
        )

    async def failing_since(self, webhook_id: int, now: datetime) -> datetime:
        """Record a failure; returns since when the endpoint has been failing without a success."""
        row = await self._db.write_one(
            "INSERT INTO webhook_health (webhook_id, failing_since, healthy_since) VALUES (%s, %s, NULL)"
            " ON CONFLICT (webhook_id) DO UPDATE SET failing_since = coalesce(webhook_health.failing_since,"
            " excluded.failing_since) RETURNING failing_since",
            (webhook_id, now),
        )
        return row["failing_since"] if row and row["failing_since"] is not None else now

    async def hold_lease(self, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
        """Take or renew the lease `name` for `holder` until now + ttl; False while another holder's is live."""
        row = await self._db.write_one(
            "INSERT INTO worker_leases (name, holder, expires_at) VALUES (%s, %s, %s)"
            " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at"
            " WHERE worker_leases.holder = excluded.holder OR worker_leases.expires_at < %s RETURNING holder",
            (name, holder, now + ttl, now),
        )
        return row is not None and row["holder"] == holder

    async def release_lease(self, name: str, holder: str) -> None:
        await self._db.write("DELETE FROM worker_leases WHERE name = %s AND holder = %s", (name, holder))
