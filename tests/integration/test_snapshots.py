"""Snapshots, on both backends: a load replays at most SNAPSHOT_EVERY events however long the stream; deleting every
snapshot changes nothing but the work; a snapshot taken by other code is ignored, never loaded wrongly; and a
scripted stretch of heavy use leaves no aggregate of `domain/` replaying more than the stated bound."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.domain import Aggregate

import cosmo.domain as domain_package
from cosmo.domain.actors import SYSTEM, Actor
from cosmo.domain.ids import SNAPSHOT_EVERY, aggregate_id
from cosmo.domain.imports import BookingImport
from cosmo.runtime import Runtime
from cosmo.storage import snapshots

PASSWORD = "Pass-word-1"
# What one load may decode: the snapshot and the events after it.
BOUND = SNAPSHOT_EVERY + 1


def _user(rt: Runtime, name: str, role: str, group: str = "none") -> Actor:
    uid = rt.command(
        lambda: rt.commands.identity.create_user(
            SYSTEM, username=name, email=f"{name}@example.com", password=PASSWORD, role=role, task_group=group
        )
    )
    return Actor(uid, role, group)


@contextmanager
def decoded(rt: Runtime) -> Iterator[list[int]]:
    """Counts the stored events and snapshots decoded meanwhile (the work of a load)."""
    mapper = rt.app.mapper
    original = mapper.to_domain_event
    count = [0]

    def counting(stored: Any) -> Any:
        count[0] += 1
        return original(stored)

    mapper.to_domain_event = counting  # type: ignore[method-assign]
    try:
        yield count
    finally:
        mapper.to_domain_event = original  # type: ignore[method-assign]


def fresh(rt: Runtime, aggregate_id: UUID) -> Any:
    return rt.call(lambda: rt.store.get(aggregate_id, fresh=True))[0]


def state(aggregate: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(aggregate).items() if k != "_pending_events"}


def replayed(rt: Runtime, aggregate_id: UUID) -> Any:
    """The aggregate from all its events, no snapshot."""
    aggregate = None
    for event in rt.app.events.get(aggregate_id):
        aggregate = event.mutate(aggregate)
    return aggregate


def clear_snapshots(rt: Runtime) -> None:
    assert rt.app.snapshots is not None
    table = rt.app.snapshots.recorder.events_table_name  # type: ignore[attr-defined]
    rt.db.execute(f"DELETE FROM {table}")


def test_an_inbox_loads_from_its_snapshot(runtime: Runtime) -> None:
    reader = _user(runtime, "rita", "staff", "cleaning")
    for n in range(1, 251):
        runtime.command(lambda n=n: runtime.commands.inbox.mark_read(reader, n))
    inbox_id = aggregate_id("inbox", reader.id)
    with decoded(runtime) as count:
        loaded = fresh(runtime, inbox_id)
    assert loaded.version == 251 and loaded.read == set(range(1, 251))
    assert count[0] <= BOUND  # a snapshot at version 200 and 51 events, not 251 events
    assert state(loaded) == state(replayed(runtime, inbox_id))
    # Snapshots are derived: without them, the same aggregate, from every event.
    clear_snapshots(runtime)
    with decoded(runtime) as count:
        again = fresh(runtime, inbox_id)
    assert state(again) == state(loaded) and count[0] == 251
    # And they come back with use.
    runtime.command(lambda: runtime.commands.inbox.mark_all_read(reader, 300))
    for n in range(301, 400):
        runtime.command(lambda n=n: runtime.commands.inbox.mark_read(reader, n))
    with decoded(runtime) as count:
        assert fresh(runtime, inbox_id).version == 351
    assert count[0] <= BOUND


def test_bulk_loads_use_snapshots_too(runtime: Runtime) -> None:
    readers = [_user(runtime, name, "staff", "cleaning") for name in ("rita", "sam")]
    for n in range(1, 131):
        runtime.command(lambda n=n: runtime.commands.inbox.mark_read(readers[0], n))
    runtime.command(lambda: runtime.commands.inbox.mark_read(readers[1], 1))
    ids = [aggregate_id("inbox", r.id) for r in readers]
    with decoded(runtime) as count:
        found = runtime.call(lambda: runtime.store.get_many([*ids, aggregate_id("inbox", 999_999)], fresh=True))
    assert set(found) == set(ids)
    assert found[ids[0]][0].version == 131 and found[ids[1]][0].version == 2
    assert state(found[ids[0]][0]) == state(replayed(runtime, ids[0]))
    assert count[0] <= BOUND + 2


def test_a_snapshot_from_other_code_is_ignored(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    reader = _user(runtime, "rita", "staff", "cleaning")
    for n in range(1, 121):
        runtime.command(lambda n=n: runtime.commands.inbox.mark_read(reader, n))
    inbox_id = aggregate_id("inbox", reader.id)
    # There is a snapshot to ignore (else the replay below would prove nothing).
    assert runtime.app.snapshots is not None
    table = runtime.app.snapshots.recorder.events_table_name  # type: ignore[attr-defined]
    assert runtime.db.fetchone(f"SELECT count(*) AS n FROM {table}")["n"] >= 1
    # The class changed since the snapshot was taken (its fingerprint differs): the snapshot is not used.
    real = snapshots.fingerprint

    def changed(cls: type) -> str:
        return "0" * 16 if cls.__name__ == "Inbox" else real(cls)

    monkeypatch.setattr(snapshots, "fingerprint", changed)
    with decoded(runtime) as count:
        loaded = fresh(runtime, inbox_id)
    assert count[0] > 120 and loaded.read == set(range(1, 121))


def test_int_keyed_state_survives_a_snapshot(runtime: Runtime) -> None:
    boss = _user(runtime, "boss", "manager")
    prop = runtime.command(lambda: runtime.commands.properties.create(boss, {"name": "Alfama"}))
    units = [
        runtime.command(
            lambda n=n: runtime.commands.properties.add_unit(boss, prop, {"unit_number": str(n), "status": "vacant"})
        )
        for n in range(3)
    ]
    for i in range(110):
        status = ("maintenance", "vacant")[i % 2]
        runtime.command(
            lambda i=i, s=status: runtime.commands.properties.update_unit(boss, prop, units[i % 3], {"status": s})
        )
    prop_id = aggregate_id("property", prop)
    loaded = fresh(runtime, prop_id)
    assert state(loaded) == state(replayed(runtime, prop_id))
    assert all(isinstance(k, int) for k in loaded.units)


def test_every_aggregate_declares_its_snapshot_interval() -> None:
    found = []
    for module_info in __import__("pkgutil").iter_modules(domain_package.__path__):
        module = __import__(f"cosmo.domain.{module_info.name}", fromlist=["*"])
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, Aggregate) and cls is not Aggregate and cls.__module__ == module.__name__:
                found.append(cls)
                assert 0 < getattr(cls, "snapshot_every", 0) <= SNAPSHOT_EVERY, cls
    assert len(found) >= 14


def test_a_busy_year_never_loads_more_than_the_bound(runtime: Runtime) -> None:
    """Each command that lengthens a stream, driven past the interval; then every aggregate touched is loaded
    from the table and its decoding counted."""
    rt = runtime
    rt.call(rt.deliverer.stop)  # the webhook below points nowhere reachable
    boss = _user(rt, "boss", "superuser")
    cleo = _user(rt, "cleo", "staff", "cleaning")
    touched: set[UUID] = set()

    # An unlimited invite, used by many registrations.
    invite = rt.command(
        lambda: rt.commands.identity.create_invite(boss, {"role": "staff", "task_group": "cleaning", "max_uses": 0})
    )
    code = rt.call(lambda: rt.store.get(aggregate_id("invite", invite), fresh=True))[0].code
    for n in range(110):
        rt.command(
            lambda n=n: rt.commands.identity.register(
                {
                    "username": f"u{n}",
                    "email": f"u{n}@example.com",
                    "password": PASSWORD,
                    "password_confirm": PASSWORD,
                    "invite_code": code,
                }
            )
        )
    touched.add(aggregate_id("invite", invite))
    # A task worked on at length.
    task = rt.command(
        lambda: rt.commands.tasks.create(boss, {"title": "Long job", "task_type": "cleaning", "assigned_to": cleo.id})
    )
    for n in range(110):
        rt.command(lambda n=n: rt.commands.tasks.work(cleo, task, None, f"note {n}"))
    touched.add(aggregate_id("task", task))
    # A chat room with people coming and going, and a reader's marker moving with each message.
    room, _ = rt.command(
        lambda: rt.commands.chat.create_room(boss, {"room_type": "group", "name": "Ops", "participant_ids": []})
    )
    for _ in range(55):
        rt.command(lambda: rt.commands.chat.add_participant(boss, room, cleo.id, False))
        rt.command(lambda: rt.commands.chat.send(cleo, room, "hi"))
        rt.command(lambda: rt.commands.chat.mark_room_read(boss, room))
        rt.command(lambda: rt.commands.chat.remove_participant(boss, room, cleo.id))
    touched.add(room)
    # A unit's calendar through many bookings.
    prop = rt.command(lambda: rt.commands.properties.create(boss, {"name": "Alfama"}))
    for n in range(60):
        day = 1 + (n % 28)
        month = 1 + n // 28
        booking = rt.command(
            lambda d=day, m=month: rt.commands.bookings.create(
                boss,
                {
                    "property_id": prop,
                    "guest_name": "Ana",
                    "check_in_date": f"2031-{m:02d}-{d:02d}",
                    "check_out_date": f"2031-{m:02d}-{d:02d}T23:00:00",
                },
            )
        )
        rt.command(lambda b=booking: rt.commands.bookings.cancel(boss, b))
    # A webhook endpoint tested again and again.
    hook, _ = rt.command(lambda: rt.commands.webhooks.create(boss, {"url": "https://93.184.216.34/hook"}))
    for _ in range(110):
        rt.command(lambda: rt.commands.webhooks.test(boss, hook))
    touched.add(aggregate_id("webhook", hook))

    # An import of a long file: one event per chunk applied (as the import job records them), some with conflicts.
    started = BookingImport(
        number=1,
        file_name="year.xlsx",
        stored_as="imports/imp_1.xlsx",  # never written: the import job fails it, as it would a lost upload
        sheet_name=None,
        property_id=prop,
        layout="airbnb",
        total_rows=150_000,
        refused_rows=0,
        errors=[],
        error_count=0,
        actor_id=boss.id,
    )
    for chunk in range(150):
        conflicts = [{"row_number": chunk * 1000 + 1, "kind": "overlap"}] if chunk % 10 == 0 else []
        started.chunk_applied(chunk * 1000, (chunk + 1) * 1000, 990, 5, 5, conflicts, [])
    rt.call(lambda: rt.store.save(started))
    touched.add(started.id)

    # Let the policies and projections finish with all that (they decode events too, and would be counted).
    while rt.call(rt.imports.run_until_idle) + rt.call(rt.turnover.run_until_idle):
        pass
    rt.settle(rt.runner.head())

    # Everything any of it wrote, each loaded fresh.
    streams = rt.db.fetchall(
        f"SELECT originator_id, max(originator_version) AS v FROM {rt.app.recorder.events_table_name}"  # type: ignore[attr-defined]
        " GROUP BY originator_id"
    )
    longest = max(int(r["v"]) for r in streams)
    assert longest > SNAPSHOT_EVERY  # the script did lengthen streams past the interval
    for row in streams:
        found = UUID(str(row["originator_id"]))
        with decoded(rt) as count:
            aggregate = fresh(rt, found)
        assert count[0] <= BOUND, (type(aggregate).__name__, int(row["v"]), count[0])
    for found in touched:
        assert fresh(rt, found).version > SNAPSHOT_EVERY
