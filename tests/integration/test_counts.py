"""The task counts projection counts a batch's changes once per task (its facts before the batch off, after it on):
tasks created, reassigned, retyped, moved through several statuses and deleted within one batch, and again in
later batches, must leave exactly the counts a recount of the tasks gives. Both backends."""

from __future__ import annotations

from collections import Counter

from cosmo.domain.tasks import Task
from cosmo.runtime import Runtime
from tests.unit.test_tasks_domain import make

BOSS, ANN, BOB = 1, 7, 8


def _task(task_id: int, assigned_to: int | None, task_type: str = "cleaning") -> Task:
    return make(assigned_to=assigned_to, task_type=task_type, task_id=task_id)


def _expected(tasks: list[Task]) -> Counter:
    return Counter(
        (f"user:{t.assigned_to}" if t.assigned_to is not None else f"type:{t.task_type}", t.status)
        for t in tasks
        if not t.is_deleted
    )


def _counted(rt: Runtime) -> Counter:
    rows = rt.db.fetchall("SELECT scope, status, n FROM task_counts_view WHERE n <> 0")
    assert all(int(r["n"]) > 0 for r in rows), rows
    return Counter({(r["scope"], r["status"]): int(r["n"]) for r in rows})


def test_every_change_in_one_batch_counts_once(runtime: Runtime) -> None:
    tasks = [_task(i, ANN if i % 3 else None, "maintenance" if i % 4 == 0 else "cleaning") for i in range(1, 13)]
    for i, t in enumerate(tasks):
        if i % 2 == 0:
            t.assign(BOB if t.assigned_to != BOB else None, BOSS, "manager")
        if t.assigned_to is not None and i % 3 != 2:
            t.change_status("in-progress", BOSS, "manager")
            if i % 4 == 1:
                t.change_status("completed", BOSS, "manager")
        if i % 5 == 0:
            t.update({"task_type": "laundry"}, BOSS, "manager")
        if i % 6 == 5:
            t.delete(BOSS, "manager")
    position = runtime.app.save(*tasks)[-1].notification.id
    runtime.settle(position)
    assert _counted(runtime) == _expected(tasks)

    # Later batches move the same tasks again, one event at a time and several at once.
    live = [t for t in tasks if not t.is_deleted]
    loaded = [runtime.app.repository.get(t.id) for t in live]
    for t in loaded:
        if t.status == "in-progress":
            t.change_status("pending", BOSS, "manager")
        elif t.status == "pending":
            t.delete(BOSS, "manager")
        else:  # completed
            t.change_status("in-progress", BOSS, "manager")
        runtime.settle(runtime.app.save(t)[-1].notification.id)
    fresh = [_task(100 + i, None) for i in range(3)]
    for t in fresh:
        t.assign(ANN, BOSS, "manager")
    runtime.settle(runtime.app.save(*fresh)[-1].notification.id)
    everything = [runtime.app.repository.get(t.id) for t in tasks + fresh]
    assert _counted(runtime) == _expected(everything)

    # And a rebuild from the log (one event at a time through the same handlers) agrees.
    runtime.runner.rebuild("task_counts")
    assert _counted(runtime) == _expected(everything)
