"""What every command shares: the outcome it returns, the session its decision loads through, and the one policy
for losing an optimistic-concurrency race.

A command is a coroutine that takes an `Actor`, allocates what must not change between attempts (ids, password
hashes, stored files), then runs its decision through `Commands.execute`: the decision loads aggregates through a
`Session`, asks them (the domain decides, including who may), and the session's changed aggregates are saved in one
transaction. The command returns an `Outcome`: its result, and the log position the API waits for before
answering (read-your-writes).
"""

from __future__ import annotations

import asyncio
import random
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from cosmo.domain.errors import Conflict, DomainError, ValidationFailed
from cosmo.domain.identity import UniqueKey, normalise_key
from cosmo.domain.ids import unique_key_id
from cosmo.storage.event_store import EventStore
from cosmo.storage.ids import IdAllocator

T = TypeVar("T")
A = TypeVar("A", bound=Aggregate)

RETRY_SECONDS = 5.0  # how long a retried command keeps re-deciding after lost races
RETRY_LATER = "The resource was changed by another request; please retry."
RELOAD_AND_RETRY = "The resource was changed by another request; reload it and try again."


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T]):
    """A command's result, and the position of its last event (0: it changed nothing). The position carries the
    topics of the events saved (`storage.written.Written`): read-your-writes needs both."""

    result: T
    position: int = 0


def backoff(attempt: int) -> float:
    """Seconds to wait before retry `attempt` (1-based): random, growing to at most 50 ms."""
    return random.uniform(0, min(0.05, 0.001 * 2**attempt))  # noqa: S311 - jitter, not a secret


class LostRaces(Conflict):
    """409: a retried command kept losing races for RETRY_SECONDS (worth trying again later, unlike a refusal)."""


class Session:
    """The aggregates one decision loaded or created, each once (a second `get` of an id returns the same
    object), and what of them changed."""

    def __init__(self, store: EventStore, fresh: bool, changed_since: datetime | None, checked: bool = False):
        self._store = store
        self._fresh = fresh
        # Cached copies are checked against the table's versions before use: for decisions that act on aggregates
        # they read but do not save (a policy following bookings), where no version clash would catch a stale copy.
        self._checked = checked
        # After a lost race: a decision that must not be re-made on someone else's write refuses one made since.
        self._changed_since = changed_since
        self._touched: dict[UUID, Aggregate] = {}
        self._absent: set[UUID] = set()  # ids looked up and not found, so not asked for again
        self.cached = False  # whether any aggregate came from the store's cache (so may have been stale)

    async def get(self, aggregate_id: UUID, cls: type[A]) -> A | None:
        if aggregate_id not in self._touched:
            if aggregate_id in self._absent:
                return None
            if self._checked and not self._fresh:
                await self.prefetch([aggregate_id])
                return await self.get(aggregate_id, cls)
            try:
                aggregate, cached = await self._store.get(aggregate_id, self._fresh)
            except AggregateNotFoundError:
                self._absent.add(aggregate_id)
                return None
            self._keep(aggregate, cached)
        found = self._touched[aggregate_id]
        return found if isinstance(found, cls) else None

    async def prefetch(self, aggregate_ids: Sequence[UUID]) -> None:
        """Load these aggregates in one go, so the `get`s that follow cost no round trip each."""
        wanted = [i for i in dict.fromkeys(aggregate_ids) if i not in self._touched and i not in self._absent]
        if not wanted:
            return
        found = await self._store.get_many(wanted, self._fresh, check=self._checked)
        for aggregate_id in wanted:
            if aggregate_id in found:
                self._keep(*found[aggregate_id])
            else:
                self._absent.add(aggregate_id)

    def _keep(self, aggregate: Aggregate, cached: bool) -> None:
        if self._changed_since is not None and aggregate.modified_on >= self._changed_since:
            raise Conflict(RELOAD_AND_RETRY)
        self.cached |= cached
        self._touched[aggregate.id] = aggregate

    def add(self, *aggregates: Aggregate | None) -> None:
        """New aggregates to save with the others."""
        for aggregate in aggregates:
            if aggregate is not None:
                self._touched.setdefault(aggregate.id, aggregate)
                self._absent.discard(aggregate.id)

    def changed(self) -> list[Aggregate]:
        return [a for a in self._touched.values() if a.pending_events]

    async def claim(self, scope: str, value: str, owner_id: int, field: str, message: str) -> UniqueKey:
        """The unique key for `value`, held by `owner_id` (a 400 on `field` when someone else holds it). Two commands
        claiming a new value at once collide on the key's id when saving: uniqueness is decided by the write."""
        key = await self.get(unique_key_id(scope, normalise_key(value)), UniqueKey)
        if key is None:
            key = UniqueKey(scope=scope, value=normalise_key(value), owner_id=owner_id)
            self.add(key)
            return key
        if key.owner_id is not None and key.owner_id != owner_id:
            raise ValidationFailed.one(field, message)
        if key.owner_id is None:
            key.reclaim(owner_id)
        return key

    async def release(self, scope: str, value: str, owner_id: int) -> None:
        """Give `value` up if `owner_id` holds it (saved with the change that gives it up)."""
        key = await self.get(unique_key_id(scope, normalise_key(value)), UniqueKey)
        if key is not None and key.owner_id == owner_id:
            key.release()


Decision = Callable[[Session], Awaitable[T]]


class Commands:
    """Base of every command family: the event store, id allocation, and `execute`."""

    def __init__(self, store: EventStore, ids: IdAllocator):
        self.store = store
        self.ids = ids
        self._queues: weakref.WeakValueDictionary[UUID, asyncio.Lock] = weakref.WeakValueDictionary()

    def peek(self, fresh: bool = False, checked: bool = False) -> Session:
        """A session for looking before deciding (nothing it loads is saved): to refuse early, before costly work
        such as decoding an upload, what the decision proper would refuse too. `fresh`: read the table, for a
        refusal that no later decision would correct; `checked`: cached copies only if current (see `Session`)."""
        return Session(self.store, fresh, None, checked)

    async def execute(
        self, decide: Decision[T], *, retry: bool, queue_on: UUID | None = None, checked: bool = False
    ) -> Outcome[T]:
        """Run `decide` and save what it changed, in one transaction.

        Losing a race (a version clash on save) is the one policy here:
        - a decision made on a cached copy that was stale is simply made again on what the table holds, as is a
          refusal or a "nothing to do" decided on a cached copy;
        - `retry=True` (additive commands: claiming, checking an item, uploading, registering): the decision is made
          again on the winner's state, for up to RETRY_SECONDS, with a growing random pause (N writers racing for
          one aggregate need up to N rounds);
        - `retry=False` (edits that must not be re-decided on someone else's edit: two managers changing one
          task): a clash with a write made while this request ran is a 409, and the client reloads.

        `queue_on`: retried edits of this aggregate made through this process wait for each other instead of
        racing, so a burst costs no clashes here. `checked`: cached copies are checked against the table first (see
        `Session`)."""
        if queue_on is None:
            return await self._attempts(decide, retry, checked)
        queue = self._queues.get(queue_on)
        if queue is None:
            queue = self._queues[queue_on] = asyncio.Lock()
        async with queue:
            return await self._attempts(decide, retry, checked)

    async def _attempts(self, decide: Decision[T], retry: bool, checked: bool = False) -> Outcome[T]:
        started = datetime.now(UTC)
        deadline = time.monotonic() + RETRY_SECONDS
        fresh, lost, since = False, 0, None
        while True:
            session = Session(self.store, fresh, since, checked)
            try:
                result = await decide(session)
            except DomainError:
                if session.cached:  # refused on copies that may be stale: decide again on what the table holds
                    fresh = True
                    continue
                raise
            changed = session.changed()
            if not changed:
                if session.cached:  # "nothing to do" on copies that may be stale: ask the table
                    fresh = True
                    continue
                return Outcome(result)
            try:
                return Outcome(result, await self.store.save(*changed))
            except IntegrityError:
                was_cached, fresh = session.cached, True
                if not retry:
                    if not was_cached:
                        raise Conflict(RELOAD_AND_RETRY) from None
                    since = started  # stale copy, or a write made meanwhile: the fresh load tells which
                    continue
                if was_cached:  # a stale copy is not a lost race
                    continue
                lost += 1
                if time.monotonic() >= deadline:
                    raise LostRaces(RETRY_LATER) from None
                await asyncio.sleep(backoff(lost))
