"""Feeds the ordered event log to projections, exactly once, and rebuilds them.

Each batch runs in one transaction that first locks the projection's row in `projection_state` (SELECT ... FOR
UPDATE on PostgreSQL, the write lock on SQLite), reads the position there, applies the next events and stores the
new position. Whoever runs a batch (the live runner, a runner in another process, a rebuild's final swap) is
therefore serialized, and a crash can neither skip nor repeat an event.

On PostgreSQL one process leads each projection (a session advisory lock); the others stand by. On SQLite every
process runs its own runner and the write lock orders them.

A projection that cannot apply an event is contained: the batch it shared with the others is redone without it,
its events are applied one per transaction up to the one that fails, and that event's position and the error are
recorded in `projection_state` (shown by `cosmo projections status` and `/api/health/ready/`). The others go on;
the failing one is tried again every RETRY_FAILING seconds and is cleared once it gets past the event.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
from eventsourcing.application import Application
from eventsourcing.persistence import Notification
from psycopg import sql

from cosmo.projections.base import Projection
from cosmo.projections.positions import PositionBoard
from cosmo.storage.db import Cursor, Database

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "cosmo_projection"
BATCH = 1000
BUSY = 4  # events in a batch that mean the log is busy...
GATHER = 0.01  # ...and how long (seconds) the next batch then gathers, in a process that also serves requests
LOCK_NAMESPACE = 7302
RETRY_FAILING = 30.0  # seconds between attempts at a projection that failed on an event
ERROR_MAX = 1000  # characters of a failure's message kept in projection_state


def transient(exc: BaseException) -> bool:
    """The database went away or was busy: nothing is wrong with the events, so the same work is tried again later
    rather than blamed on an event."""
    if isinstance(exc, psycopg.OperationalError):
        return True
    if isinstance(exc, sqlite3.OperationalError):
        return any(word in str(exc) for word in ("locked", "busy", "unable to open", "disk I/O"))
    return False


# Part of a position update: a failure is cleared once the projection has applied the event it failed on.
_CLEAR_PASSED = (
    "error = CASE WHEN error_position <= %s THEN NULL ELSE error END,"
    " failed_at = CASE WHEN error_position <= %s THEN NULL ELSE failed_at END,"
    " error_position = CASE WHEN error_position <= %s THEN NULL ELSE error_position END"
)

Progress = Callable[[int, int], None]


def outdated(p: Projection, stored_version: int | None) -> bool:
    """Its tables were built by another version of its code (or not at all): a rebuild is due."""
    return stored_version != p.version


Publish = Callable[[list[tuple[str, Any]]], None]


class ProjectionRunner:
    def __init__(
        self,
        app: Application,
        db: Database,
        projections: Sequence[Projection],
        board: PositionBoard,
        publish: Publish | None = None,
    ):
        self.app = app
        self.publish = publish
        self.db = db
        self.projections = {p.name: p for p in projections}
        self.board = board
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._leader_conn: psycopg.Connection | None = None
        self._led: set[str] = set()
        self._checked: set[str] = set()
        self._failing: dict[str, float] = {}  # projection -> when this process last tried it
        recorder = app.recorder
        if db.is_postgres:
            schema = recorder.datastore.schema  # type: ignore[attr-defined]
            table = sql.Identifier(schema, recorder.events_table_name).as_string()  # as storage/event_store.py names it
            self._log_sql = (
                "SELECT notification_id AS id, originator_id, originator_version, topic, state"
                f" FROM {table} WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
            )
        else:
            self._log_sql = (
                "SELECT rowid AS id, originator_id, originator_version, topic, state"
                f" FROM {recorder.events_table_name} WHERE rowid > %s ORDER BY rowid LIMIT %s"
            )

    # -- set-up and status -------------------------------------------------------------------------------------

    def ensure(self) -> None:
        """Create live tables and state rows for projections seen for the first time."""
        now = datetime.now(UTC)
        for p in self.projections.values():
            with self.db.transaction() as cur:
                if cur.execute("SELECT 1 FROM projection_state WHERE name = %s", (p.name,)).fetchone():
                    continue
                for table in p.tables:
                    cur.execute(table.create_sql(table.name))
                    for sql in table.index_sql(table.name):
                        cur.execute(sql)
                cur.execute(
                    "INSERT INTO projection_state (name, version, position, updated_at) VALUES (%s, %s, 0, %s)",
                    (p.name, p.version, now),
                )

    def positions(self) -> tuple[dict[str, int], dict[str, int]]:
        """Where each projection is, and the event each failing one cannot apply (0: its rebuild failed)."""
        rows = self.db.fetchall("SELECT name, position, error, error_position FROM projection_state")
        positions = {r["name"]: int(r["position"]) for r in rows}
        failing = {r["name"]: int(r["error_position"] or 0) for r in rows if r["error"] is not None}
        return positions, failing

    def status(self) -> list[dict[str, Any]]:
        head = self.head()
        rows = {
            r["name"]: r
            for r in self.db.fetchall(
                "SELECT name, version, position, error, error_position, failed_at FROM projection_state"
            )
        }
        out = []
        for p in self.projections.values():
            row = rows.get(p.name) or {}
            position = int(row.get("position") or 0)
            out.append(
                {
                    "name": p.name,
                    "version": p.version,
                    "stored_version": int(row["version"]) if row else None,
                    "position": position,
                    "lag": max(head - position, 0),
                    "rebuilding": outdated(p, int(row["version"]) if row else None),
                    "error": row.get("error"),
                    "error_position": row.get("error_position"),
                    "failed_at": row.get("failed_at"),
                }
            )
        return out

    def head(self) -> int:
        return int(self.app.recorder.max_notification_id() or 0)

    def stale(self) -> list[str]:
        """Projections whose tables were built by another version of their code (`status()`'s `rebuilding`):
        rebuilt by `cosmo migrate` or by the runner that leads them, and not ready to serve meanwhile."""
        stored = {r["name"]: int(r["version"]) for r in self.db.fetchall("SELECT name, version FROM projection_state")}
        return [p.name for p in self.projections.values() if outdated(p, stored.get(p.name))]

    def _stale(self, p: Projection) -> bool:
        row = self.db.fetchone("SELECT version FROM projection_state WHERE name = %s", (p.name,))
        return outdated(p, int(row["version"]) if row else None)

    # -- processing ----------------------------------------------------------------------------------------------

    def _select(self, after: int, cur: Cursor | None = None, limit: int = BATCH) -> Sequence[Notification]:
        """The log after `after`. Inside a batch (`cur`), read through the batch's own connection: on PostgreSQL
        that saves a pooled connection and a round trip per batch (the table lock every save takes keeps ids
        committed in order, so the batch's snapshot never skips one); on SQLite it is required, as eventsourcing's
        saves queue for its one writer connection, a read through its pool waits in that queue, and waiting there
        while holding the write lock the writer at its head needs is a deadlock."""
        recorder = self.app.recorder
        if cur is None:
            return recorder.select_notifications(start=after, limit=limit, inclusive_of_start=False)
        rows = cur.execute(self._log_sql, (after, limit)).fetchall()
        # PostgreSQL's uuid column arrives as a UUID; SQLite's text is converted as its recorder does.
        convert = getattr(recorder, "convert_originator_id", None) or (lambda value: value)
        return [
            Notification(
                id=row["id"],
                originator_id=convert(row["originator_id"]),
                originator_version=row["originator_version"],
                topic=row["topic"],
                state=bytes(row["state"]),
            )
            for row in rows
        ]

    def _apply(
        self,
        cur: Cursor,
        p: Projection,
        notifications: Sequence[Notification],
        names: dict[str, str],
        live: bool = False,
        decoded: dict[int, Any] | None = None,
        after: int = -1,
    ) -> None:
        """`decoded`: events already decoded in this batch, shared by the projections that read the same event."""
        if p.raw:
            p.live = live
            p.after = after  # -1 where the caller does not know it: the projection then reads it
            p.position = notifications[-1].id
            p.apply_raw(cur, notifications, names)
            return
        topics = p.topics
        to_domain_event = self.app.mapper.to_domain_event
        decoded = {} if decoded is None else decoded
        p.live = live
        try:
            for n in notifications:
                if n.topic in topics:
                    p.position = n.id
                    event = decoded.get(n.id)
                    if event is None:
                        event = decoded[n.id] = to_domain_event(n)
                    p.apply(cur, n.topic, event, names)
            p.flush(cur, names)
        except BaseException:
            p.discard()
            raise

    def _store_failure(self, name: str, position: int, exc: BaseException) -> None:
        message = f"{type(exc).__name__}: {exc}"[:ERROR_MAX]
        with self.db.transaction() as cur:
            cur.execute(
                "UPDATE projection_state SET error = %s, error_position = %s,"
                " failed_at = coalesce(failed_at, %s) WHERE name = %s",
                (message, position or None, datetime.now(UTC), name),
            )
            if self.db.is_postgres:
                cur.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, f"!{name}:{position}"))
        self._failing[name] = time.monotonic()
        self.board.fail(name, position)
        where = f"event {position}" if position else "its rebuild"
        log.error("projection %s is stopped at %s: %s", name, where, message)

    def _lock_state(self, cur: Cursor, name: str) -> int:
        suffix = " FOR UPDATE" if self.db.is_postgres else ""
        row = cur.execute(f"SELECT position FROM projection_state WHERE name = %s{suffix}", (name,)).fetchone()
        if row is None:
            raise LookupError(f"projection {name} has no state row; run `cosmo migrate`")
        return int(row["position"])

    def _lock_states(self, cur: Cursor, names: Sequence[str]) -> dict[str, int]:
        suffix = " FOR UPDATE" if self.db.is_postgres else ""
        marks = ", ".join(["%s"] * len(names))
        rows = cur.execute(
            f"SELECT name, position FROM projection_state WHERE name IN ({marks}) ORDER BY name{suffix}", names
        ).fetchall()
        positions = {r["name"]: int(r["position"]) for r in rows}
        missing = set(names) - set(positions)
        if missing:
            raise LookupError(f"projections {sorted(missing)} have no state row; run `cosmo migrate`")
        return positions

    def _store_positions(self, cur: Cursor, names: Sequence[str], position: int) -> None:
        if not names:
            return
        marks = ", ".join(["%s"] * len(names))
        cur.execute(
            f"UPDATE projection_state SET position = %s, updated_at = %s, {_CLEAR_PASSED} WHERE name IN ({marks})",
            (position, datetime.now(UTC), position, position, position, *names),
        )
        if self.db.is_postgres:
            cur.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, f"{','.join(names)}:{position}"))

    def _store_position(self, cur: Cursor, name: str, position: int, version: int | None = None) -> None:
        now = datetime.now(UTC)
        if version is None:
            cur.execute(
                f"UPDATE projection_state SET position = %s, updated_at = %s, {_CLEAR_PASSED} WHERE name = %s",
                (position, now, position, position, position, name),
            )
        else:
            # A rebuild replayed everything: whatever failed before has been got past, or has failed the rebuild.
            cur.execute(
                "UPDATE projection_state SET position = %s, version = %s, updated_at = %s, error = NULL,"
                " error_position = NULL, failed_at = NULL WHERE name = %s",
                (position, version, now, name),
            )
        if self.db.is_postgres:
            cur.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, f"{name}:{position}"))

    def catch_up(self, *names: str) -> int:
        """Process everything the log holds beyond the named projections' positions, in shared batches (see
        `_together`). When a batch fails on something other than the database itself, each projection goes on
        alone, and one that still fails is stopped at the event it cannot apply (`_isolate`). Returns events seen."""
        names = tuple(sorted(set(names or self.projections)))
        try:
            return self._together(names)
        except Exception as exc:
            if transient(exc):
                raise
            log.warning("a batch of %s failed: applying each projection apart", ", ".join(names), exc_info=True)
        return sum(self._alone(name) for name in names)

    def _alone(self, name: str) -> int:
        try:
            return self._together((name,))
        except Exception as exc:
            if transient(exc):
                raise
            return self._isolate(name)

    def _isolate(self, name: str) -> int:
        """Apply `name`'s next events one relevant event per transaction, so an error surfaces at the statement of
        the event that caused it; record that event as the projection's failure. Returns events seen."""
        p = self.projections[name]
        seen = 0
        while True:
            failed: Notification | None = None
            try:
                with self.db.transaction() as cur:
                    position = self._lock_state(cur, name)
                    batch = self._select(position, cur)
                    if not batch:
                        return seen
                    upto = next((i for i, n in enumerate(batch) if p.raw or n.topic in p.topics), len(batch) - 1)
                    step = batch[: upto + 1]
                    try:
                        self._apply(cur, p, step, p.live_names(), True, None, position)
                    except Exception as exc:
                        if not transient(exc):
                            failed = step[-1]
                        raise
                    self._store_position(cur, name, step[-1].id)
            except Exception as exc:
                p.drain()
                if failed is None:
                    raise
                self._store_failure(name, failed.id, exc)
                return seen
            self.board.post(name, step[-1].id)
            self._announce({name: (step[0].id, step[-1].id)})
            seen += len(step)

    def _together(self, names: tuple[str, ...]) -> int:
        """One transaction per batch locks all the named projections' state rows (in name order), reads the log
        once from the lowest position, gives each projection the events past its own position, and moves them all
        to the batch's end."""
        seen = 0
        while True:
            applied: dict[str, tuple[int, int]] = {}  # projection -> first and last position it applied
            try:
                with self.db.transaction(batched=True) as cur:
                    # Read models are derived: if the server crashed before this commit reached the disk, view and
                    # position would be lost together and simply redone. So the batch does not wait for the flush.
                    if self.db.is_postgres:
                        cur.execute("SET LOCAL synchronous_commit = off")
                    positions = self._lock_states(cur, names)
                    start = min(positions.values())
                    batch = self._select(start, cur)
                    if not batch:
                        break
                    end = batch[-1].id
                    decoded: dict[int, Any] = {}
                    for name in names:
                        p = self.projections[name]
                        mine = [n for n in batch if n.id > positions[name]]
                        if mine:
                            self._apply(cur, p, mine, p.live_names(), True, decoded, positions[name])
                            applied[name] = (mine[0].id, mine[-1].id)
                    self._store_positions(cur, [n for n in names if positions[n] < end], end)
            except BaseException:
                for name in names:  # nothing of a batch that did not commit is announced
                    self.projections[name].drain()
                raise
            self.board.post_many({name: max(end, positions[name]) for name in names})
            self._announce(applied)
            seen += len(batch)
            if len(batch) < BATCH:
                break
        return seen

    def _announce(self, applied: dict[str, tuple[int, int]]) -> None:
        """After the batch committed and waiters were released: let projections read what to announce (outside
        the batch's transaction, so none of it delays the commit), then publish it."""
        effects: list[tuple[str, Any]] = []
        for name, (first, last) in applied.items():
            p = self.projections[name]
            if self.publish is not None:
                try:
                    p.announce(self.db.fetchall, p.live_names(), first, last)
                except Exception:
                    log.exception("collecting live updates from %s failed", name)
            effects += p.drain()
        if effects and self.publish is not None:
            try:
                self.publish(effects)
            except Exception:  # a push that fails must not stop the read models
                log.exception("publishing %d live updates failed", len(effects))

    def rebuild(self, name: str, progress: Progress | None = None) -> int:
        """Replay the whole log into shadow tables, then swap them in under the state lock.

        Readers keep reading the old tables until the swap commits, and the live runner keeps them current; the
        swap catches the shadow up on whatever arrived meanwhile, so no event is lost or applied twice."""
        p = self.projections[name]
        if not p.rebuildable:
            return self._renew(p, progress)
        shadow = p.shadow_names()
        with self.db.transaction(schema=True) as cur:
            for table in p.tables:
                cur.execute(f"DROP TABLE IF EXISTS {shadow[table.name]}")
                cur.execute(table.create_sql(shadow[table.name]))
                # Indexes before the replay, not after: handlers find rows by them (a task by its uuid), and
                # without them every such event scans the shadow table: a rebuild quadratic in its rows.
                for sql in table.index_sql(shadow[table.name]):
                    cur.execute(sql)
        head = self.head()
        position = 0
        while True:
            batch = self._select(position)
            if not batch:
                break
            with self.db.transaction(batched=True) as cur:
                self._apply(cur, p, batch, shadow)
            position = batch[-1].id
            if progress:
                progress(position, max(head, position))
            if len(batch) < BATCH:
                break
        if self.db.is_postgres:
            # Planner statistics go with the table at the swap: the first queries on it are planned from them.
            for table in p.tables:
                self.db.execute(f"ANALYZE {shadow[table.name]}")
        with self.db.transaction(batched=True, schema=True) as cur:
            self._lock_state(cur, name)
            while batch := self._select(position, cur):
                self._apply(cur, p, batch, shadow)
                position = batch[-1].id
            for table in p.tables:
                live, tmp = table.name, shadow[table.name]
                cur.execute(f"DROP TABLE IF EXISTS {live}")
                cur.execute(f"ALTER TABLE {tmp} RENAME TO {live}")
                if self.db.is_postgres:
                    cur.execute(f"ALTER TABLE {live} RENAME CONSTRAINT {tmp}_pk TO {live}_pk")
                    for ix in table.indexes:
                        cur.execute(f"ALTER INDEX {tmp}_{ix.suffix} RENAME TO {live}_{ix.suffix}")
                else:  # SQLite cannot rename an index: the shadow's are made again under the live names
                    for ix in table.indexes:
                        cur.execute(f"DROP INDEX IF EXISTS {tmp}_{ix.suffix}")
                    for sql in table.index_sql(live):
                        cur.execute(sql)
            self._store_position(cur, name, position, version=p.version)
        self.board.post(name, position)
        if progress:
            progress(position, max(head, position))
        return position

    def _renew(self, p: Projection, progress: Progress | None) -> int:
        """A projection whose tables are not derived from the log as it is now is not replayed: it catches up and
        takes its new version."""
        self._together((p.name,))
        with self.db.transaction() as cur:
            position = self._lock_state(cur, p.name)
            self._store_position(cur, p.name, position, version=p.version)
        self.board.post(p.name, position)
        if progress:
            progress(position, max(self.head(), position))
        return position

    # -- the background loop ---------------------------------------------------------------------------------------

    def kick(self) -> None:
        """New events were saved: run now rather than at the next poll."""
        self._wake.set()

    def start(self, poll_interval: float, gather: float = 0.0) -> None:
        """`gather`: under load, how long the next batch waits for more events (see `_run`)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, args=(poll_interval, gather), name="cosmo-projections", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._leader_conn is not None:
            self._leader_conn.close()
            self._leader_conn = None
            self._led.clear()
            self._checked.clear()

    def _lead(self) -> set[str]:
        """The projections this process runs. PostgreSQL: those whose advisory lock it holds."""
        if not self.db.is_postgres:
            return set(self.projections)
        if self._leader_conn is None or self._leader_conn.closed:
            self._led.clear()
            self._checked.clear()
            self._leader_conn = psycopg.connect(self.db.url.conninfo(), autocommit=True)
        for name in self.projections:
            if name not in self._led:
                key = zlib.crc32(name.encode()) & 0x7FFFFFFF
                row = self._leader_conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (LOCK_NAMESPACE, key)).fetchone()
                if row and row[0]:
                    log.info("leading projection %s", name)
                    self._led.add(name)
        return self._led

    def _due(self, name: str) -> bool:
        """Whether a failing projection should be tried again now."""
        return time.monotonic() - self._failing[name] >= RETRY_FAILING

    def run_once(self) -> int:
        led = sorted(self._lead())
        for name in led:
            if name in self._failing:
                if not self._due(name):
                    continue
                del self._failing[name]  # tried afresh below: failing again records it again
            # A projection's version is checked when this process starts leading it, not on every run.
            if name not in self._checked:
                if self._stale(self.projections[name]):
                    log.warning("projection %s changed version: rebuilding from the log", name)
                    try:
                        self.rebuild(name)
                    except Exception as exc:
                        if transient(exc):
                            raise
                        self._store_failure(name, 0, exc)
                        continue
                self._checked.add(name)
        ready = [n for n in led if n in self._checked and n not in self._failing]
        return self.catch_up(*ready) if ready else 0

    def _run(self, poll_interval: float, gather: float) -> None:
        failures = 0
        while not self._stop.is_set():
            self._wake.wait(poll_interval)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                if self.run_once() >= BUSY and gather:
                    # Beside request handlers, under load, let the next batch gather for a moment: each batch
                    # costs a fixed set of round trips, each a wait for the interpreter those handlers hold, so
                    # fewer, larger batches cost less per event. Quiet times (small batches) are never delayed.
                    # A worker does not wait: there the pause was all latency (every read-your-writes request
                    # and chat push waited it out), and measured fewer PATCHes a second, not more.
                    self._stop.wait(gather)
                failures = 0
            except Exception:
                failures += 1
                positions = self.positions() if failures < 3 else {}
                log.exception("projection runner failed (positions %s); retrying", positions)
                if self._leader_conn is not None:
                    self._leader_conn.close()
                    self._leader_conn = None
                time.sleep(min(0.5 * 2**failures, 10))
