"""Commands called directly (no HTTP), on both backends: outcomes, authorization by the command or the domain, and
the one retry policy."""

from __future__ import annotations

import asyncio

import pytest

from cosmo.commands.tasks import live_task
from cosmo.domain.actors import SYSTEM, Actor
from cosmo.domain.errors import Conflict, PermissionDenied, ValidationFailed
from cosmo.domain.ids import aggregate_id
from cosmo.runtime import Runtime

PASSWORD = "Pass-word-1"


def _user(rt: Runtime, name: str, role: str, group: str = "none") -> Actor:
    uid = rt.command(
        lambda: rt.commands.identity.create_user(
            SYSTEM, username=name, email=f"{name}@example.com", password=PASSWORD, role=role, task_group=group
        )
    )
    return Actor(uid, role, group)


def test_outcomes_carry_results_and_positions(runtime: Runtime) -> None:
    boss = _user(runtime, "boss", "manager")
    done = runtime.call(lambda: runtime.commands.tasks.create(boss, {"title": "T", "task_type": "cleaning"}))
    assert done.result >= 1 and done.position == runtime.runner.head()
    assert "cosmo.domain.tasks:Task.Created" in done.position.topics
    # A change that changes nothing saves nothing: position 0, nothing to wait for.
    same = runtime.call(lambda: runtime.commands.tasks.update(boss, done.result, {"title": "T"}))
    assert same.position == 0


def test_who_may_act_is_decided_by_the_command_side(runtime: Runtime) -> None:
    cleo = _user(runtime, "cleo", "staff", "cleaning")
    viewer = _user(runtime, "vic", "viewer")
    for attempt in (
        lambda: runtime.commands.tasks.create(cleo, {"title": "T", "task_type": "cleaning"}),
        lambda: runtime.commands.properties.create(viewer, {"name": "P"}),
        lambda: runtime.commands.checklists.create(
            cleo, {"name": "C", "task_type": "cleaning", "items": [], "is_default": False}
        ),
        lambda: runtime.commands.identity.create_invite(cleo, {"role": "staff", "task_group": "none"}),
        lambda: runtime.commands.identity.change_access(cleo, viewer.id, {"role": "manager"}),
    ):
        with pytest.raises(PermissionDenied):
            runtime.call(attempt)


def test_bad_input_lists_every_problem(runtime: Runtime) -> None:
    boss = _user(runtime, "boss", "manager")
    with pytest.raises(ValidationFailed) as refused:
        runtime.call(
            lambda: runtime.commands.tasks.create(
                boss, {"title": "", "task_type": "nope", "priority": "whenever", "description": "a\x00"}
            )
        )
    assert set(refused.value.details) == {"title", "task_type", "priority", "description"}


def test_retried_commands_all_land_and_edits_conflict(runtime: Runtime) -> None:
    boss = _user(runtime, "boss", "manager")
    other = _user(runtime, "other", "manager")
    cleo = _user(runtime, "cleo", "staff", "cleaning")
    template = runtime.command(
        lambda: runtime.commands.checklists.create(
            boss,
            {
                "name": "Ten",
                "task_type": "cleaning",
                "is_default": False,
                "items": [
                    {"text": f"Item {n}", "item_type": "check", "is_required": False, "room": ""} for n in range(10)
                ],
            },
        )
    )
    task_id = runtime.command(
        lambda: runtime.commands.tasks.create(
            boss, {"title": "T", "task_type": "cleaning", "assigned_to": cleo.id, "checklist_template": template}
        )
    )
    items = [i.id for i in runtime.call(lambda: runtime.queries.tasks.detail(cleo, task_id)).checklist.items]

    async def check_all() -> list[object]:
        edits = [
            runtime.commands.tasks.update_item(cleo, task_id, items[n % 10], {"completed": True}) for n in range(30)
        ]
        return list(await asyncio.gather(*edits, return_exceptions=True))

    outcomes = runtime.call(check_all)
    assert not [o for o in outcomes if isinstance(o, BaseException)]
    runtime.settle(max(o.position for o in outcomes))
    assert runtime.call(lambda: runtime.queries.tasks.progress(cleo, task_id)).completed == 10

    async def edit_meanwhile() -> object:
        """A manager's edit decided on a version that another manager changes before it saves."""
        gate = asyncio.Event()

        async def decide(s) -> None:
            task = await live_task(s, task_id, boss)
            await gate.wait()
            task.update({"title": "Boss's"}, boss.id, boss.role)

        first = asyncio.create_task(runtime.commands.tasks.execute(decide, retry=False))
        await asyncio.sleep(0.05)
        await runtime.commands.tasks.update(other, task_id, {"title": "Other's"})
        gate.set()
        return (await asyncio.gather(first, return_exceptions=True))[0]

    assert isinstance(runtime.call(edit_meanwhile), Conflict)
    assert runtime.app.repository.get(aggregate_id("task", task_id)).title == "Other's"
