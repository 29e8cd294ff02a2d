"""What every command handler shares: load aggregates, re-decide after losing a race, save atomically.

Every command returns the notification id of its last event (0 when nothing changed), which the API waits on so
the caller's next read sees the write.

Commands that need only the aggregate they change also run as coroutines (`_edit`): on PostgreSQL they load and
save through `AsyncEventStore` on the event loop; on SQLite the same decision runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
import weakref
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar
from uuid import UUID

import anyio.to_thread
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from cosmo.domain.errors import Conflict, ValidationFailed
from cosmo.domain.identity import UniqueKey, normalise_key
from cosmo.domain.ids import unique_key_id
from cosmo.storage.async_events import AsyncEventStore
from cosmo.storage.ids import IdAllocator
from cosmo.storage.written import Written

T = TypeVar("T")
A = TypeVar("A", bound=Aggregate)

RETRY_SECONDS = 5.0  # how long a retried command keeps re-deciding after lost races


def backoff(attempt: int) -> float:
    """Seconds to wait before retry `attempt` (0-based): random, growing to at most 50 ms."""
    return random.uniform(0, min(0.05, 0.001 * 2**attempt))  # noqa: S311 - jitter, not a secret


RETRY_LATER = "The resource was changed by another request; please retry."
RELOAD_AND_RETRY = "The resource was changed by another request; reload it and try again."


class CommandHandler:
    def __init__(self, app: Application, ids: IdAllocator, events: AsyncEventStore | None = None):
        self.app = app
        self.ids = ids
        self.events = events
        self._locks: weakref.WeakValueDictionary[UUID, asyncio.Lock] = weakref.WeakValueDictionary()

    def _save(self, *aggregates: Aggregate | None) -> int:
        recordings = self.app.save(*aggregates)
        if not recordings:
            return 0
        return Written(recordings[-1].notification.id, {r.notification.topic for r in recordings})

    @staticmethod
    def _retrying(decide: Callable[[], T]) -> T:
        """Re-run a command that lost an optimistic-concurrency race. Safe because `decide` reloads and re-decides
        from the winner's state (e.g. finds the username now taken, or the invite now used up). N writers racing
        for one aggregate need up to N rounds, so retries are bounded by time, with jitter to spread the rounds."""
        deadline = time.monotonic() + RETRY_SECONDS
        for attempt in itertools.count():
            try:
                return decide()
            except IntegrityError:
                if time.monotonic() >= deadline:
                    break
                time.sleep(backoff(attempt))
        raise Conflict(RETRY_LATER)

    @staticmethod
    def _once(decide: Callable[[], T]) -> T:
        """Run an edit that must not be re-decided on top of someone else's concurrent edit (two managers changing
        the same task): losing the race is a 409, and the caller reloads and decides again."""
        try:
            return decide()
        except IntegrityError:
            raise Conflict(RELOAD_AND_RETRY) from None

    async def _edit(
        self, aggregate_uuid: UUID, found: Callable[[Aggregate | None], A], change: Callable[[A], T], retry: bool
    ) -> tuple[T, int]:
        """Load one aggregate, let `found` vet it (the 404 rule) and `change` decide, save: the coroutine form of
        `_retrying` (retry=True) or `_once` around a load-change-save. Returns `change`'s result and the position.

        The aggregate may come from the store's cache. If its save clashes, the table is read: a clash with a write
        made before this request started only means the copy was stale, and the change is decided again on the
        current state; a clash with a write made meanwhile is a lost race, as in `_once`."""

        def decide() -> tuple[T, int]:
            target = found(self._find(aggregate_uuid, Aggregate))
            result = change(target)
            return result, self._save(target)

        if self.events is None:
            return await anyio.to_thread.run_sync(self._retrying if retry else self._once, decide)
        if not retry:
            return await self._edit_once(aggregate_uuid, found, change, retry)
        # Retried edits (additive: checking items) of one aggregate queue up in this process instead of racing:
        # each decides on the state the previous one saved, so a burst costs no clashes here. Another process's
        # writes can still clash, and are retried.
        lock = self._locks.get(aggregate_uuid)
        if lock is None:
            lock = self._locks[aggregate_uuid] = asyncio.Lock()
        async with lock:
            return await self._edit_once(aggregate_uuid, found, change, retry)

    async def _edit_once(
        self, aggregate_uuid: UUID, found: Callable[[Aggregate | None], A], change: Callable[[A], T], retry: bool
    ) -> tuple[T, int]:
        assert self.events is not None
        started = datetime.now(UTC)
        deadline = time.monotonic() + RETRY_SECONDS
        attempts, fresh, clashed = 0, False, False
        while attempts == 0 or (retry and time.monotonic() < deadline):
            aggregate: Aggregate | None
            try:
                aggregate, cached = await self.events.get(aggregate_uuid, fresh)
            except AggregateNotFoundError:
                aggregate, cached = None, False
            if clashed and not retry and aggregate is not None and aggregate.modified_on >= started:
                break  # the clash was with a write made while this request ran, not one made before it
            try:
                target = found(aggregate)
                result = change(target)
            except Exception:
                if cached:  # refused on a copy that may be stale: decide again on what the table holds
                    fresh = True
                    continue
                raise
            if cached and not target.pending_events:  # "nothing to do" on a copy that may be stale: ask the table
                fresh = True
                continue
            try:
                return result, await self.events.save(target)
            except IntegrityError:
                fresh = clashed = True
                if not cached:  # a stale copy is not a lost race: reloading costs no attempt
                    if attempts:
                        await asyncio.sleep(backoff(attempts))
                    attempts += 1
        raise Conflict(RETRY_LATER if retry else RELOAD_AND_RETRY)

    def _find(self, aggregate_uuid: UUID, cls: type[A]) -> A | None:
        try:
            aggregate = self.app.repository.get(aggregate_uuid)
        except AggregateNotFoundError:
            return None
        return aggregate if isinstance(aggregate, cls) else None

    def _claim(self, scope: str, value: str, owner_id: int, field: str, message: str) -> UniqueKey:
        key = self._find(unique_key_id(scope, normalise_key(value)), UniqueKey)
        if key is None:
            return UniqueKey(scope=scope, value=normalise_key(value), owner_id=owner_id)
        if key.owner_id is not None and key.owner_id != owner_id:
            raise ValidationFailed.one(field, message)
        if key.owner_id is None:
            key.reclaim(owner_id)
        return key

    def _release(self, scope: str, value: str, owner_id: int) -> UniqueKey | None:
        """The key, released, if `owner_id` holds it (to save with the change that gives the value up)."""
        key = self._find(unique_key_id(scope, normalise_key(value)), UniqueKey)
        if key is None or key.owner_id != owner_id:
            return None
        key.release()
        return key
