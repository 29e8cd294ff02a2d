"""Queries called directly (no HTTP), on both backends: the visibility rule, pages, counts from the counts
projection against the tasks themselves, and who may read what."""

from __future__ import annotations

import random

import pytest

from cosmo.domain.actors import SYSTEM, Actor
from cosmo.domain.errors import NotFound, PermissionDenied, ValidationFailed
from cosmo.domain.tasks import sees_task
from cosmo.projections.queries import PageRequest
from cosmo.projections.tasks import TaskFilters
from cosmo.projections.users import UserFilters
from cosmo.runtime import Runtime

STATUSES = ("pending", "in-progress", "completed", "canceled")


def _user(rt: Runtime, name: str, role: str, group: str = "none") -> Actor:
    uid = rt.command(
        lambda: rt.commands.identity.create_user(
            SYSTEM, username=name, email=f"{name}@example.com", password="Pass-word-1", role=role, task_group=group
        )
    )
    return Actor(uid, role, group)


@pytest.fixture
def world(runtime: Runtime) -> dict:
    """Forty tasks of three types, some unassigned, moved through random statuses, a few reassigned or deleted."""
    rng = random.Random(3)
    boss = _user(runtime, "boss", "manager")
    staff = [
        _user(runtime, "cleo", "staff", "cleaning"),
        _user(runtime, "mark", "staff", "maintenance"),
        _user(runtime, "gina", "staff", "general"),
        _user(runtime, "nora", "staff", "none"),
    ]
    ids = []
    for n in range(40):
        assignee = rng.choice([None, *[s.id for s in staff]])
        body = {"title": f"Task {n}", "task_type": rng.choice(["cleaning", "maintenance", "laundry"])}
        if assignee is not None:
            body["assigned_to"] = assignee
        task_id = runtime.command(lambda body=body: runtime.commands.tasks.create(boss, body))
        ids.append(task_id)
        steps = rng.choice([(), ("in-progress",), ("in-progress", "completed"), ("canceled",)])
        for status in steps:
            runtime.command(lambda t=task_id, st=status: runtime.commands.tasks.update(boss, t, {"status": st}))
    for task_id in ids[:5]:
        runtime.command(lambda t=task_id: runtime.commands.tasks.assign(boss, t, rng.choice([None, staff[0].id])))
    runtime.command(lambda: runtime.commands.tasks.delete(boss, ids[7]))
    runtime.command(lambda: runtime.commands.tasks.update(boss, ids[8], {"task_type": "cleaning"}))
    return {"boss": boss, "staff": staff, "viewer": _user(runtime, "vic", "viewer"), "ids": ids}


def _all(rt: Runtime, actor: Actor, **filters: object) -> list:
    found = rt.call(lambda: rt.queries.tasks.page(actor, TaskFilters(**filters), PageRequest(size=100)))
    return found.results


def test_each_user_sees_what_the_domain_rule_says(runtime: Runtime, world: dict) -> None:
    everything = _all(runtime, world["viewer"])
    assert len(everything) == 39  # one deleted
    for actor in world["staff"]:
        seen = {t.id for t in _all(runtime, actor)}
        assert seen == {t.id for t in everything if sees_task(actor, t.assigned_to, t.task_type)}
        hidden = next((t.id for t in everything if t.id not in seen), None)
        if hidden is not None:
            with pytest.raises(NotFound):
                runtime.call(lambda a=actor, h=hidden: runtime.queries.tasks.detail(a, h))


def test_counts_projection_matches_the_tasks(runtime: Runtime, world: dict) -> None:
    for actor in (world["viewer"], *world["staff"]):
        tasks = _all(runtime, actor)
        counts = runtime.call(lambda a=actor: runtime.queries.counts.for_actor(a))
        by_status = {s: sum(1 for t in tasks if t.status == s) for s in STATUSES}
        assert (counts.pending, counts.in_progress, counts.completed, counts.canceled) == (
            by_status["pending"],
            by_status["in-progress"],
            by_status["completed"],
            by_status["canceled"],
        )
        assert counts.total == counts.pending + counts.in_progress + counts.completed
    # A rebuild of the counts gives the same numbers.
    before = runtime.call(lambda: runtime.queries.counts.for_actor(world["viewer"]))
    runtime.runner.rebuild("task_counts")
    assert runtime.call(lambda: runtime.queries.counts.for_actor(world["viewer"])) == before


def test_pages_filters_and_ordering(runtime: Runtime, world: dict) -> None:
    viewer = world["viewer"]
    first = runtime.call(
        lambda: runtime.queries.tasks.page(viewer, TaskFilters(), PageRequest(page=1, size=15, ordering="id"))
    )
    second = runtime.call(
        lambda: runtime.queries.tasks.page(viewer, TaskFilters(), PageRequest(page=3, size=15, ordering="id"))
    )
    assert first.count == 39 and first.has_next and len(first.results) == 15
    assert len(second.results) == 9 and not second.has_next
    assert [t.id for t in first.results] == sorted(t.id for t in first.results)
    with pytest.raises(NotFound):
        runtime.call(lambda: runtime.queries.tasks.page(viewer, TaskFilters(), PageRequest(page=4, size=15)))
    with pytest.raises(ValidationFailed):
        runtime.call(lambda: runtime.queries.tasks.page(viewer, TaskFilters(), PageRequest(ordering="nope")))
    pending = _all(runtime, viewer, status="pending")
    assert pending and all(t.status == "pending" for t in pending)
    # LIKE wildcards in a search are taken literally.
    assert _all(runtime, viewer, search="task 1%") == []
    assert {t.title for t in _all(runtime, viewer, search="task 1")} >= {"Task 1", "Task 10"}


def test_admin_only_reads(runtime: Runtime, world: dict) -> None:
    cleo = world["staff"][0]
    with pytest.raises(PermissionDenied):
        runtime.call(lambda: runtime.queries.users.page(cleo, UserFilters(), PageRequest()))
    with pytest.raises(PermissionDenied):
        runtime.call(lambda: runtime.queries.users.get(cleo, world["boss"].id))
    listed = runtime.call(lambda: runtime.queries.users.page(world["boss"], UserFilters(role="staff"), PageRequest()))
    assert {u.username for u in listed.results} == {"cleo", "mark", "gina", "nora"}
