"""What every command handler shares: load aggregates, re-decide after losing a race, save atomically.

Every command returns the notification id of its last event (0 when nothing changed), which the API waits on so
the caller's next read sees the write.

Commands that need only the aggregate they change also run as coroutines (`_edit`): on PostgreSQL they load and
save through `AsyncEventStore` on the event loop; on SQLite the same decision runs in a worker thread.
"""

from __future__ import annotations

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

T = TypeVar("T")
A = TypeVar("A", bound=Aggregate)

RETRIES = 5
RETRY_LATER = "The resource was changed by another request; please retry."
RELOAD_AND_RETRY = "The resource was changed by another request; reload it and try again."


class CommandHandler:
    def __init__(self, app: Application, ids: IdAllocator, events: AsyncEventStore | None = None):
        self.app = app
        self.ids = ids
        self.events = events

    def _save(self, *aggregates: Aggregate | None) -> int:
        recordings = self.app.save(*aggregates)
        return recordings[-1].notification.id if recordings else 0

    @staticmethod
    def _retrying(decide: Callable[[], T]) -> T:
        """Re-run a command that lost an optimistic-concurrency race. Safe because `decide` reloads and re-decides
        from the winner's state (e.g. finds the username now taken, or the invite now used up)."""
        for _ in range(RETRIES):
            try:
                return decide()
            except IntegrityError:
                continue
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
        started = datetime.now(UTC)
        attempts, fresh, clashed = RETRIES if retry else 1, False, False
        while attempts:
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
                    attempts -= 1
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
