"""The PostgreSQL event recorder: eventsourcing's, with each save in one round trip and concurrent saves grouped.

Every save takes the events table's EXCLUSIVE lock (so notification ids commit in order), which serialises all
writers. Two things follow. A save should hold the lock for as short a time as possible: the library's recorder
syncs with the server twice per save, ours sends BEGIN, LOCK, INSERT, NOTIFY and COMMIT as one pipeline and waits
once. And throughput under concurrency comes from more events per transaction: saves that arrive while another is
committing queue up, and the next leader writes all of them in one transaction (group commit). If that combined
insert hits a version clash, each save is retried alone, so only the save that lost the race sees IntegrityError.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import psycopg
from eventsourcing.persistence import IntegrityError, InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import retry
from psycopg import sql

# Saves grouped into one transaction at most; keeps one transaction's size (and a failed group's retry cost) bounded.
MAX_GROUP = 64


class _Pending:
    __slots__ = ("error", "events", "ids")

    def __init__(self, events: Sequence[StoredEvent]):
        self.events = events
        self.ids: list[int] | None = None
        self.error: BaseException | None = None


class GroupCommitRecorder(PostgresApplicationRecorder):
    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        table = sql.Identifier(self.datastore.schema, self.events_table_name)
        self.lock_sql = sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(table)
        self.notify_sql = sql.SQL("NOTIFY {}").format(sql.Identifier(self.channel_name))
        self.timeout_sql = (
            sql.SQL("SET LOCAL lock_timeout = '{}s'").format(sql.SQL(str(self.datastore.lock_timeout)))
            if self.datastore.lock_timeout
            else None
        )
        self._cond = threading.Condition()
        self._queue: list[_Pending] = []
        self._writing = False

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        if not stored_events:
            return []
        mine = _Pending(stored_events)
        with self._cond:
            self._queue.append(mine)
            while self._writing and mine.ids is None and mine.error is None:
                self._cond.wait()
            if mine.ids is None and mine.error is None:
                self._writing = True
                group, self._queue = self._queue[:MAX_GROUP], self._queue[MAX_GROUP:]
            else:
                group = []
        if group:
            try:
                self._write_group(group)
            finally:
                with self._cond:
                    self._writing = False
                    self._cond.notify_all()
        if mine.error is not None:
            raise mine.error
        return mine.ids

    def _write_group(self, group: list[_Pending]) -> None:
        if len(group) > 1:
            try:
                ids = self._write([e for p in group for e in p.events])
            except IntegrityError:
                pass  # someone in the group lost a race: find out who, one save at a time
            except BaseException as exc:
                for p in group:
                    p.error = exc
                return
            else:
                start = 0
                for p in group:
                    p.ids = ids[start : start + len(p.events)]
                    start += len(p.events)
                return
        for p in group:
            try:
                p.ids = self._write(p.events)
            except BaseException as exc:  # handed to the waiting caller, raised in its thread
                p.error = exc

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def _write(self, stored_events: Sequence[StoredEvent]) -> list[int]:
        rows = [
            self.construct_pg_stored_event(e.originator_id, e.originator_version, e.topic, e.state)
            for e in stored_events
        ]
        with self.datastore.get_connection() as conn:
            try:
                with conn.pipeline() as pipeline:
                    control = conn.cursor()
                    control.execute("BEGIN")
                    if self.timeout_sql is not None:
                        control.execute(self.timeout_sql)
                    control.execute(self.lock_sql, prepare=True)
                    insert = conn.cursor()
                    insert.execute(self.insert_events_statement, (rows,), prepare=True)
                    control.execute(self.notify_sql, prepare=True)
                    control.execute("COMMIT")
                    pipeline.sync()
                    return [row["notification_id"] for row in insert.fetchall()]
            except psycopg.Error:
                if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE and not conn.closed:
                    conn.execute("ROLLBACK")
                raise
