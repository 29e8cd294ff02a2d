"""The event store every command loads from and saves to: one interface, `EventStore`, over both databases.

On PostgreSQL (`PostgresEventStore`) commands load and save on the event loop with the async driver. A command run
in a worker thread pays for the GIL on every round trip: under load, a thread whose query has answered waits for the
interpreter while the event loop and other threads take turns, and each save holds the events table's lock through
that wait. The rows are the library's: the same table, the same mapper (topics, transcoding), the same EXCLUSIVE
lock that orders notification ids, the same NOTIFY. A save is one pipelined round trip (BEGIN, LOCK, INSERT,
NOTIFY, COMMIT), and saves that arrive while another is committing are written together in the next transaction
(group commit); a version clash inside a group is retried save by save, so only the save that lost the race sees
IntegrityError.

Aggregates this process saved are kept (a bounded LRU) and handed out as copies, so the next command on the same
task does not read its events again. A copy is unpickled, or for the classes that say their events only ever replace
attribute values (`shallow_copies`: bookings, their calendars, unique keys) a copy of the attributes: an import
copies hundreds of calendars and bookings a chunk, and pickling them took about a fifth of its event loop's time.
A copy can be stale when another process has written since; its save then clashes on the version, the entry is
dropped, and the caller reloads (`get(fresh=True)`): the version constraint that guards every save is what makes
the cache safe.

On SQLite (`SQLiteEventStore`) there is one writer anyway: the library's recorder does the work in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pickle
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import anyio.to_thread
import psycopg
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from cosmo.storage import snapshots
from cosmo.storage.written import Written

log = logging.getLogger(__name__)

CACHE_SIZE = 10_000
# Saves grouped into one transaction at most; keeps one transaction's size (and a failed group's retry cost) bounded.
MAX_GROUP = 64


class EventStore:
    """What commands need of the event store. `get` raises AggregateNotFoundError; `save` raises IntegrityError
    when another save got to one of these versions first."""

    async def open(self) -> None:
        """Connect, on the event loop that will use the store."""

    async def close(self) -> None:
        """Disconnect (after the saves under way)."""

    async def get(self, aggregate_id: UUID, fresh: bool = False) -> tuple[Aggregate, bool]:
        """The aggregate to decide on (the caller's own copy), and whether it came from a cache rather than the
        table (so may be stale). `fresh`: read the table."""
        raise NotImplementedError

    async def get_many(
        self, aggregate_ids: Sequence[UUID], fresh: bool = False, check: bool = False
    ) -> dict[UUID, tuple[Aggregate, bool]]:
        """`get` for many ids at once (those not found are left out): bulk commands such as an import load a
        chunk's aggregates in one round trip. `check`: a cached copy is used only if the table holds no later
        version (one more round trip), so the copies handed out are current."""
        found = {}
        for aggregate_id in aggregate_ids:
            with contextlib.suppress(AggregateNotFoundError):
                found[aggregate_id] = await self.get(aggregate_id, fresh)
        return found

    async def save(self, *aggregates: Aggregate | None) -> Written:
        """Append the aggregates' pending events in one transaction; the last event's position (0: nothing to
        save)."""
        raise NotImplementedError

    async def head(self) -> int:
        """The position of the log's last event: a command that found what it would have written (a retried
        create) waits for this, so the answer it reads back shows what it found."""
        raise NotImplementedError


def copy_of(aggregate: Any) -> Any:
    """A copy that shares the attributes' values: only for a class whose events replace attributes and never change
    a value in place (`shallow_copies = True`), where that is as good as a deep copy."""
    copy = object.__new__(type(aggregate))
    copy.__dict__.update(aggregate.__dict__)
    copy._pending_events = []
    return copy


def _kept(aggregate: Aggregate) -> Aggregate | bytes:
    """What the cache keeps of a saved aggregate: a copy of it, or its pickle."""
    if getattr(type(aggregate), "shallow_copies", False):
        return copy_of(aggregate)
    return pickle.dumps(aggregate, pickle.HIGHEST_PROTOCOL)


def _handed_out(kept: Aggregate | bytes) -> Any:
    if isinstance(kept, bytes):
        return pickle.loads(kept)  # noqa: S301 - bytes this process pickled itself
    return copy_of(kept)


def _counts(aggregates: Sequence[Aggregate]) -> list[tuple[Aggregate, int]]:
    """Each aggregate with how many events it is about to save (what decides whether a snapshot is due)."""
    return [(a, len(a.pending_events)) for a in aggregates]


class SQLiteEventStore(EventStore):
    def __init__(self, app: Application):
        self._app = app

    async def get(self, aggregate_id: UUID, fresh: bool = False) -> tuple[Aggregate, bool]:
        return await anyio.to_thread.run_sync(snapshots.load, self._app, aggregate_id), False

    async def head(self) -> int:
        return int(await anyio.to_thread.run_sync(self._app.recorder.max_notification_id) or 0)

    async def save(self, *aggregates: Aggregate | None) -> Written:
        counts = _counts([a for a in aggregates if a is not None])
        recordings = await anyio.to_thread.run_sync(lambda: self._app.save(*aggregates))
        if not recordings:
            return Written(0)
        await _snapshot(self._app, counts)
        return Written(recordings[-1].notification.id, {r.notification.topic for r in recordings})


async def _snapshot(app: Application, counts: list[tuple[Aggregate, int]]) -> None:
    """Snapshots of the saved aggregates that crossed their interval. Derived data: a failure is logged, never the
    command's."""
    try:
        taken = snapshots.to_take(counts)
        if taken:
            await anyio.to_thread.run_sync(snapshots.put, app, taken)
    except Exception:
        log.exception("storing snapshots failed")


class _Pending:
    __slots__ = ("events", "future")

    def __init__(self, events: Sequence[StoredEvent], future: asyncio.Future[list[int]]):
        self.events = events
        self.future = future


class PostgresEventStore(EventStore):
    def __init__(self, app: Application, conninfo: str, pool_size: int = 4, cache_size: int = CACHE_SIZE):
        recorder = app.recorder
        if not isinstance(recorder, PostgresApplicationRecorder):
            raise TypeError("PostgresEventStore writes the tables of eventsourcing's PostgreSQL recorder")
        self._app = app
        self._mapper = app.mapper
        table = sql.Identifier(recorder.datastore.schema, recorder.events_table_name)
        assert app.snapshots is not None
        snaps = sql.Identifier(recorder.datastore.schema, app.snapshots.recorder.events_table_name)  # type: ignore[attr-defined]
        # The latest snapshot (kind 0) and the events after it (kind 1), in one round trip.
        self._load_sql = (
            sql.SQL(
                "WITH s AS (SELECT originator_version, topic, state FROM {snaps} WHERE originator_id = %(id)s"
                " ORDER BY originator_version DESC LIMIT 1)"
                " SELECT 0 AS kind, originator_version, topic, state FROM s UNION ALL"
                " SELECT 1, originator_version, topic, state FROM {events} WHERE originator_id = %(id)s"
                " AND originator_version > coalesce((SELECT originator_version FROM s), 0)"
                " ORDER BY kind, originator_version"
            )
            .format(snaps=snaps, events=table)
            .as_string()
        )
        self._load_many_sql = (
            sql.SQL(
                "WITH s AS (SELECT DISTINCT ON (originator_id) originator_id, originator_version, topic, state"
                " FROM {snaps} WHERE originator_id = ANY(%(ids)b) ORDER BY originator_id, originator_version DESC)"
                " SELECT 0 AS kind, originator_id, originator_version, topic, state FROM s UNION ALL"
                " SELECT 1, e.originator_id, e.originator_version, e.topic, e.state FROM {events} e"
                " LEFT JOIN s ON s.originator_id = e.originator_id WHERE e.originator_id = ANY(%(ids)b)"
                " AND e.originator_version > coalesce(s.originator_version, 0)"
                " ORDER BY originator_id, kind, originator_version"
            )
            .format(snaps=snaps, events=table)
            .as_string()
        )
        # Rendered once: psycopg caches the conversion of plain strings, not of composed SQL.
        self._select_sql = (
            sql.SQL(
                "SELECT originator_version, topic, state FROM {} WHERE originator_id = %s ORDER BY originator_version"
            )
            .format(table)
            .as_string()
        )
        self._head_sql = sql.SQL("SELECT max(notification_id) FROM {}").format(table).as_string()
        self._versions_sql = (
            sql.SQL(
                "SELECT originator_id, max(originator_version) FROM {} WHERE originator_id = ANY(%b)"
                " GROUP BY originator_id"
            )
            .format(table)
            .as_string()
        )
        # Arrays rather than the library's composite type: nothing to register on the async connections. The
        # arrays (here and in the reads by id) go in binary: as text, quoting them cost the driver about ten times
        # as much, some 50 us an event, which was a tenth of an import's time.
        self._insert_sql = (
            sql.SQL(
                "INSERT INTO {} (originator_id, originator_version, topic, state)"
                " SELECT * FROM unnest(%b::uuid[], %b::bigint[], %b::text[], %b::bytea[]) RETURNING notification_id"
            )
            .format(table)
            .as_string()
        )
        # What the library's recorder sends around each insert: the lock that keeps notification ids in commit
        # order (subscribers never skip one), and the NOTIFY that wakes them.
        self._lock_sql = sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(table).as_string()
        self._notify_sql = sql.SQL("NOTIFY {}").format(sql.Identifier(recorder.channel_name)).as_string()
        timeout = recorder.datastore.lock_timeout
        self._timeout_sql = f"SET LOCAL lock_timeout = '{int(timeout)}s'" if timeout else None
        self._conninfo = conninfo
        self._pool_size = pool_size
        self._pool: AsyncConnectionPool | None = None
        self._queue: list[_Pending] = []
        self._writer: asyncio.Task[None] | None = None
        # Pickled (unpickling a fresh copy per command is several times cheaper than deepcopy), or see `_kept`.
        self._cache: OrderedDict[UUID, tuple[int, Aggregate | bytes]] = OrderedDict()
        self._cache_size = cache_size

    async def open(self) -> None:
        """Connect, on the event loop that will use the store (an API process's, opened at its start-up)."""
        if self._pool is None:
            self._pool = AsyncConnectionPool(
                self._conninfo,
                min_size=1,
                max_size=self._pool_size,
                kwargs={"autocommit": True},
                open=False,
                name="cosmo-events",
            )
            await self._pool.open()

    async def close(self) -> None:
        if self._writer is not None:
            await asyncio.shield(self._writer)
            self._writer = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def _connection(self) -> Any:
        if self._pool is None:
            raise RuntimeError("AsyncEventStore used before open()")
        return self._pool.connection()

    # -- loading -----------------------------------------------------------------------------------------------

    async def head(self) -> int:
        async with self._connection() as conn:
            cur = await conn.execute(self._head_sql, prepare=True)
            row = await cur.fetchone()
        return int(row[0] or 0) if row else 0

    async def get(self, aggregate_id: UUID, fresh: bool = False) -> tuple[Aggregate, bool]:
        cached = None if fresh else self._cache.get(aggregate_id)
        if cached is not None:
            self._cache.move_to_end(aggregate_id)
            return _handed_out(cached[1]), True
        return await self._load(aggregate_id), False

    async def _load(self, aggregate_id: UUID) -> Aggregate:
        async with self._connection() as conn:
            cur = await conn.execute(self._load_sql, {"id": aggregate_id}, prepare=True)
            rows = await cur.fetchall()
        try:
            aggregate = self._replay(aggregate_id, rows)
        except Exception:
            if not rows or rows[0][0] != 0:
                raise  # no snapshot involved: the events themselves are the problem
            # A snapshot of other code, or one that cannot be read: the events alone say the same.
            async with self._connection() as conn:
                cur = await conn.execute(self._select_sql, (aggregate_id,), prepare=True)
                aggregate = self._replay(aggregate_id, [(1, *row) for row in await cur.fetchall()])
        if aggregate is None:
            raise AggregateNotFoundError(aggregate_id)
        return aggregate

    def _replay(self, aggregate_id: UUID, rows: Sequence[Any]) -> Any:
        """`rows`: (kind, version, topic, state), a snapshot (kind 0) first if there is one."""
        to_domain_event = self._mapper.to_domain_event
        aggregate: Any = None
        for _, version, topic, state in rows:
            event = to_domain_event(StoredEvent(aggregate_id, version, topic, bytes(state)))
            aggregate = event.mutate(aggregate)  # type: ignore[attr-defined]
        return aggregate

    async def get_many(
        self, aggregate_ids: Sequence[UUID], fresh: bool = False, check: bool = False
    ) -> dict[UUID, tuple[Aggregate, bool]]:
        found: dict[UUID, tuple[Aggregate, bool]] = {}
        missing = []
        copies: dict[UUID, tuple[int, Aggregate | bytes]] = {}
        for aggregate_id in dict.fromkeys(aggregate_ids):
            cached = None if fresh else self._cache.get(aggregate_id)
            if cached is None:
                missing.append(aggregate_id)
            else:
                copies[aggregate_id] = cached
        if check and copies:
            async with self._connection() as conn:
                cur = await conn.execute(self._versions_sql, (list(copies),), prepare=True)
                stored = dict(await cur.fetchall())
            for aggregate_id, (version, _) in list(copies.items()):
                if stored.get(aggregate_id, version) != version:
                    missing.append(aggregate_id)  # another process has written since: read the table
                    del copies[aggregate_id]
        for aggregate_id, (_, kept) in copies.items():
            # A checked copy is as good as one read from the table; an unchecked one may be stale.
            found[aggregate_id] = _handed_out(kept), not check
        if not missing:
            return found
        async with self._connection() as conn:
            cur = await conn.execute(self._load_many_sql, {"ids": missing}, prepare=True)
            rows = await cur.fetchall()
        streams: dict[UUID, list[Any]] = {}
        for kind, originator_id, version, topic, state in rows:
            streams.setdefault(originator_id, []).append((kind, version, topic, state))
        for originator_id, stream in streams.items():
            try:
                aggregate = self._replay(originator_id, stream)
            except Exception:
                if stream[0][0] != 0:
                    raise
                aggregate = await self._load(originator_id)
            found[originator_id] = aggregate, False
        return found

    # -- saving ------------------------------------------------------------------------------------------------

    async def save(self, *aggregates: Aggregate | None) -> Written:
        saving = [a for a in aggregates if a is not None]
        counts = _counts(saving)
        events = [e for a in saving for e in a.collect_events()]
        if not events:
            return Written(0)
        stored = [self._mapper.to_stored_event(e) for e in events]
        pending = _Pending(stored, asyncio.get_running_loop().create_future())
        self._queue.append(pending)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        try:
            # The write goes on if this request is cancelled (the client left): a save is never half done.
            ids = await asyncio.shield(pending.future)
        except BaseException:
            for a in saving:
                self._cache.pop(a.id, None)
            raise
        for a in saving:
            self._remember(a)
        await _snapshot(self._app, counts)
        return Written(ids[-1], {e.topic for e in stored})

    def _remember(self, aggregate: Aggregate) -> None:
        known = self._cache.get(aggregate.id)
        if known is not None and known[0] >= aggregate.version:
            return  # saves can finish out of order: never go back to an older version
        self._cache[aggregate.id] = (aggregate.version, _kept(aggregate))
        self._cache.move_to_end(aggregate.id)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    async def _drain(self) -> None:
        """Write whatever queued up while the previous transaction was committing, as one transaction."""
        while self._queue:
            group, self._queue = self._queue[:MAX_GROUP], self._queue[MAX_GROUP:]
            if len(group) > 1:
                try:
                    ids = await self._write([e for p in group for e in p.events])
                except IntegrityError:
                    pass  # someone in the group lost a race: find out who, one save at a time
                except BaseException as exc:
                    for p in group:
                        p.future.set_exception(exc)
                    continue
                else:
                    start = 0
                    for p in group:
                        p.future.set_result(ids[start : start + len(p.events)])
                        start += len(p.events)
                    continue
            for p in group:
                try:
                    p.future.set_result(await self._write(p.events))
                except BaseException as exc:
                    p.future.set_exception(exc)

    async def _write(self, events: Sequence[StoredEvent]) -> list[int]:
        params = (
            [e.originator_id for e in events],
            [e.originator_version for e in events],
            [e.topic for e in events],
            [e.state for e in events],
        )
        async with self._connection() as conn:
            try:
                async with conn.pipeline() as pipeline:
                    control = conn.cursor()
                    await control.execute("BEGIN")
                    if self._timeout_sql is not None:
                        await control.execute(self._timeout_sql)
                    await control.execute(self._lock_sql, prepare=True)
                    insert = conn.cursor()
                    await insert.execute(self._insert_sql, params, prepare=True)
                    await control.execute(self._notify_sql, prepare=True)
                    await control.execute("COMMIT")
                    await pipeline.sync()
                    return [row[0] for row in await insert.fetchall()]
            except psycopg.errors.UniqueViolation as exc:
                await _rollback(conn)
                raise IntegrityError(exc) from exc
            except psycopg.Error:
                await _rollback(conn)
                raise


async def _rollback(conn: psycopg.AsyncConnection[Any]) -> None:
    if not conn.closed and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        await conn.execute("ROLLBACK")
