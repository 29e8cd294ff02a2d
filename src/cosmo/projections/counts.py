"""The task counts read model: how many live tasks there are per status, per assignee (`user:<id>`) and, for
unassigned tasks, per task type (`type:<type>`). What one user may see is a few of these scopes (their own and
their group's unassigned types; everyone but staff: all), so counting costs the same whatever the number of tasks.

The projection keeps, in a table of its own, the few facts of each task that decide its scope and status (it never
reads another projection's tables, which may be at another position or mid-rebuild), and every change is pure SQL:
take the batch's tasks off their old scopes and statuses, change the facts, put them on the new ones.
"""

from __future__ import annotations

from typing import Any

import msgspec

from cosmo.domain.actors import Actor
from cosmo.domain.checklists import TASK_TYPES
from cosmo.domain.tasks import Task, sees_all_tasks, unassigned_types_seen
from cosmo.projections.base import Projection, Read, Table, handles
from cosmo.projections.queries import Packed, Reader, Statement
from cosmo.storage.db import Cursor

FACT_COLUMNS = """
    uuid text NOT NULL,
    assigned_to bigint,
    task_type text NOT NULL,
    status text NOT NULL,
    is_deleted boolean NOT NULL
"""

COUNT_COLUMNS = """
    scope text NOT NULL,
    status text NOT NULL,
    n bigint NOT NULL
"""

SCOPE = "CASE WHEN f.assigned_to IS NULL THEN 'type:' || f.task_type ELSE 'user:' || f.assigned_to END"
# In a task's noted count scopes: "staff of whatever type the task has" (resolved when the batch ends).
CURRENT_TYPE = "type:?"


class TaskCountsProjection(Projection):
    name = "task_counts"
    version = 1
    tables = (
        Table("task_count_facts", FACT_COLUMNS, "uuid"),
        Table("task_counts_view", COUNT_COLUMNS, "scope, status"),
    )

    def __init__(self) -> None:
        super().__init__()
        self._touched: dict[str, set[str]] = {}  # task uuid -> extra count scopes, during a live batch
        # The batch's fact changes in log order, written by `flush`: (task uuid, column, value), or a new task's row.
        self._changes: list[tuple[str, str, Any]] = []
        self._created: list[tuple[str, int | None, str, str, bool]] = []

    def _change(self, e: Any, column: str, value: Any, extra: tuple[str, ...] = ()) -> None:
        self._changes.append((str(e.originator_id), column, value))
        self._noted(e, extra)

    def _noted(self, e: Any, scopes: tuple[str, ...] = ()) -> None:
        """Note a task whose counts changed; `scopes` adds what its current facts will not show (a previous
        assignee, a previous type)."""
        if self.live:
            self._touched.setdefault(str(e.originator_id), set()).update(scopes)

    @handles(Task.Created)
    def created(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        self._created.append((str(e.originator_id), e.assigned_to, e.task_type, "pending", False))
        self._noted(e)

    @handles(Task.Updated)
    def updated(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        if "task_type" in e.changes:
            # The previous type is not in the event: staff of every type recount (a rare edit).
            self._change(e, "task_type", e.changes["task_type"], tuple(f"type:{x}" for x in TASK_TYPES))

    @handles(Task.Assigned)
    def assigned(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        # Before, it counted for its previous assignee, or (unassigned) for staff of its type.
        before = (f"user:{e.previous_id}",) if e.previous_id is not None else (CURRENT_TYPE,)
        self._change(e, "assigned_to", e.assignee_id, before)

    @handles(Task.StatusChanged)
    def status_changed(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        self._change(e, "status", e.status)

    @handles(Task.Deleted)
    def deleted(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        self._change(e, "is_deleted", True, (CURRENT_TYPE,))

    def flush(self, cur: Cursor, t: dict[str, str]) -> None:
        """The batch's changes, counted once: every touched task is taken off the count of its facts as they were
        before the batch, its facts are changed in log order, and it is put on the count of its facts as they are
        after. However many times a task changed in the batch, that is its one net move (a new task has no facts
        before, a deleted one none after). Three statements and the fact updates, instead of three per event."""
        changes, created = self._changes, self._created
        self.discard()
        if not changes and not created:
            return
        facts, counts = t["task_count_facts"], t["task_counts_view"]
        touched = list(dict.fromkeys([c[0] for c in changes] + [c[0] for c in created]))
        marks = ", ".join(["%s"] * len(touched))
        live_facts = f"SELECT {SCOPE} AS scope, f.status, count(*) AS k FROM {facts} f WHERE f.uuid IN ({marks})"
        live_facts += " AND NOT f.is_deleted GROUP BY 1, 2"
        cur.execute(
            f"UPDATE {counts} SET n = {counts}.n - d.k FROM ({live_facts}) d"
            f" WHERE {counts}.scope = d.scope AND {counts}.status = d.status",
            touched,
        )
        if created:
            cur.executemany(
                f"INSERT INTO {facts} (uuid, assigned_to, task_type, status, is_deleted) VALUES (%s, %s, %s, %s, %s)",
                created,
            )
        for uuid, column, value in changes:
            cur.execute(f"UPDATE {facts} SET {column} = %s WHERE uuid = %s", (value, uuid))
        cur.execute(
            f"INSERT INTO {counts} (scope, status, n) SELECT scope, status, k FROM ({live_facts}) d WHERE true"
            f" ON CONFLICT (scope, status) DO UPDATE SET n = {counts}.n + excluded.n",
            touched,
        )

    def discard(self) -> None:
        self._changes, self._created = [], []

    def drain(self) -> list[tuple[str, Any]]:
        self._touched = {}  # a batch that failed leaves nothing behind
        return super().drain()

    def announce(self, read: Read, t: dict[str, str], first: int, last: int) -> None:
        """Announce whose counts may have changed: everyone who sees all tasks, each touched task's assignee, or
        staff of its type while it is unassigned; one read for the whole batch."""
        touched, self._touched = self._touched, {}
        if not touched:
            return
        scopes = {"all"}
        for extra in touched.values():
            scopes |= extra - {CURRENT_TYPE}
        marks = ", ".join(["%s"] * len(touched))
        rows = read(
            f"SELECT uuid, assigned_to, task_type FROM {t['task_count_facts']} WHERE uuid IN ({marks})",
            tuple(touched),
        )
        for row in rows:
            scopes.add(f"user:{row['assigned_to']}" if row["assigned_to"] is not None else f"type:{row['task_type']}")
            if CURRENT_TYPE in touched[row["uuid"]]:
                scopes.add(f"type:{row['task_type']}")
        self.emit("task_counts", sorted(scopes))


ALL = (TaskCountsProjection,)


class TaskCounts(msgspec.Struct):
    """`total` is the open and completed work (pending + in progress + completed); canceled tasks are apart."""

    total: int
    pending: int
    in_progress: int
    completed: int
    canceled: int


class StatusCount(msgspec.Struct):
    status: str
    n: int


STATUS_COUNTS = msgspec.json.Decoder(list[StatusCount])


def count_scopes(actor: Actor) -> list[str] | None:
    """The count scopes `actor` sees (None: all of them): the task visibility rule of domain/tasks.py."""
    if sees_all_tasks(actor.role):
        return None
    return [f"user:{actor.id}", *(f"type:{x}" for x in unassigned_types_seen(actor.task_group))]


class CountQueries:
    def __init__(self, read: Reader):
        self._read = read

    def by_status(self, actor: Actor) -> Statement[dict[str, int]]:
        scopes = count_scopes(actor)
        if scopes is None:
            sql, params = "SELECT status, sum(n) AS n FROM task_counts_view GROUP BY status", ()
        else:
            marks = ", ".join(["%s"] * len(scopes))
            sql = f"SELECT status, sum(n) AS n FROM task_counts_view WHERE scope IN ({marks}) GROUP BY status"
            params = tuple(scopes)
        return Statement(sql, params, lambda rows: {r["status"]: int(r["n"]) for r in rows})

    def packed(self, actor: Actor) -> Packed[TaskCounts]:
        """The actor's counts, to be read with other reads (the dashboard)."""
        found = self.by_status(actor)
        return Packed(
            found.sql,
            found.params,
            ("status", "n"),
            lambda text: _counts({r.status: r.n for r in STATUS_COUNTS.decode(text)}),
        )

    def statement(self, actor: Actor) -> Statement[TaskCounts]:
        found = self.by_status(actor)
        return Statement(found.sql, found.params, lambda rows: _counts(found.shape(rows)))

    def visible_statement(self, actor: Actor, status: str | None) -> Statement[int]:
        """How many live tasks `actor` may see (in `status`, or in any)."""
        found = self.by_status(actor)

        def shape(rows: list[dict[str, Any]]) -> int:
            by_status = found.shape(rows)
            return by_status.get(status, 0) if status is not None else sum(by_status.values())

        return Statement(found.sql, found.params, shape)

    async def for_actor(self, actor: Actor) -> TaskCounts:
        return await self.statement(actor).run(self._read)


def _counts(by_status: dict[str, int]) -> TaskCounts:
    pending, in_progress = by_status.get("pending", 0), by_status.get("in-progress", 0)
    completed = by_status.get("completed", 0)
    return TaskCounts(pending + in_progress + completed, pending, in_progress, completed, by_status.get("canceled", 0))
