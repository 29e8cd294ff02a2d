"""Aggregates the command side hands out as shallow copies (`shallow_copies = True`, see
`storage.event_store.copy_of`) must never change a value in place: a change made on the copy a command decides on
would otherwise show in the cached original, and every later command would decide on a state no event recorded.
Each test runs every kind of change on a copy and checks the original kept its state."""

from __future__ import annotations

import copy
import importlib
import pickle
import pkgutil
import uuid
from collections.abc import Callable
from typing import Any

from cosmo.domain.bookings import Booking, Calendar
from cosmo.domain.chat import ChatRoom
from cosmo.domain.identity import UniqueKey
from cosmo.domain.tasks import Task
from cosmo.storage.event_store import copy_of
from tests.unit.test_tasks_domain import BOSS, STAFF, item, make, photo


def _state(aggregate: Any) -> dict[str, Any]:
    return {k: copy.deepcopy(v) for k, v in vars(aggregate).items() if k != "_pending_events"}


def _changes_leave_the_original(original: Any, change: Callable[[Any], None]) -> None:
    before = _state(original)
    changed = copy_of(original)
    change(changed)
    assert changed.pending_events, "the change under test made no event"
    assert _state(original) == before
    # And the copy is the state its events describe: replaying them onto a pickled original agrees.
    replayed = pickle.loads(pickle.dumps(original))  # noqa: S301 - made here
    for event in changed.collect_events():
        event.mutate(replayed)
    assert _state(replayed) == _state(changed)


def _task() -> Task:
    task = make([item(1)])
    task.collect_events()
    return task


def test_task_changes_leave_the_cached_original() -> None:
    task = _task()
    task.add_photo(1, photo(), STAFF, "staff")
    task.add_photo(2, photo(), STAFF, "staff")
    task.update_item(1, {"notes": "first"}, STAFF, "staff")
    task.collect_events()
    changes: list[Callable[[Task], None]] = [
        lambda t: t.change_status("in-progress", STAFF, "staff"),
        lambda t: t.set_notes("n", STAFF, "staff"),
        lambda t: t.update_item(1, {"completed": True, "notes": "done"}, STAFF, "staff"),
        lambda t: t.add_photo(3, photo(), STAFF, "staff"),
        lambda t: t.add_photo(4, photo("after"), STAFF, "staff"),
        lambda t: t.review_photo(1, "approved", "", BOSS, "manager"),
        lambda t: t.delete_photo(1, STAFF, "staff"),  # the primary: photo 2 takes its place
        lambda t: t.update({"title": "new"}, BOSS, "manager"),
        lambda t: t.delete(BOSS, "manager"),
    ]
    for change in changes:
        _changes_leave_the_original(task, change)


def test_chat_room_changes_leave_the_cached_original() -> None:
    room = ChatRoom(
        room_id=uuid.uuid4(),
        room_type="group",
        name="Team",
        task_id=None,
        property_id=None,
        participants=[{"user_id": u, "participant_id": 10 + u, "is_admin": u == 1} for u in (1, 2, 3)],
        actor_id=1,
    )
    room.collect_events()
    changes: list[Callable[[ChatRoom], None]] = [
        lambda r: r.add(4, 14, False, 1),
        lambda r: r.remove(3, 1),
        lambda r: r.leave(1, 2),
        lambda r: r.mute(2, 2, True, None),
        lambda r: r.archive(1),
    ]
    for change in changes:
        _changes_leave_the_original(room, change)


def test_every_shallow_copied_class_is_covered_here() -> None:
    """A class that starts being handed out as a shallow copy gets its changes tried above (or, like these, has
    only plain values that events replace)."""
    import cosmo.domain

    modules = [importlib.import_module(m.name) for m in pkgutil.iter_modules(cosmo.domain.__path__, "cosmo.domain.")]
    shallow = {
        cls
        for module in modules
        for cls in vars(module).values()
        if isinstance(cls, type) and vars(cls).get("shallow_copies")
    }
    assert shallow == {Task, ChatRoom, Booking, UniqueKey, Calendar}
