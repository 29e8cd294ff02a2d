"""Storage: the batching cursor projections write through, and the event store's grouped commits."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from eventsourcing.persistence import IntegrityError

from cosmo.domain.identity import UniqueKey
from cosmo.runtime import Runtime
from cosmo.storage.event_store import GroupCommitRecorder, _Pending


def test_batched_transaction_keeps_order_and_answers_reads(runtime: Runtime) -> None:
    db = runtime.db
    with db.transaction() as cur:
        cur.execute("CREATE TABLE t_batch (id bigint PRIMARY KEY, label text, n bigint)")
    with db.transaction(batched=True) as cur:
        for i in range(5):
            cur.execute("INSERT INTO t_batch (id, label, n) VALUES (%s, %s, %s)", (i, f"row{i}", 0))
        cur.execute("UPDATE t_batch SET n = n + 1 WHERE id = %s", (1,))
        cur.execute("UPDATE t_batch SET n = n + 1 WHERE id = %s", (1,))
        # A read inside the batch sees every statement held back before it.
        assert cur.execute("SELECT count(*) AS c FROM t_batch").fetchone()["c"] == 5
        assert cur.execute("SELECT n FROM t_batch WHERE id = %s", (1,)).fetchone()["n"] == 2
        assert cur.execute("UPDATE t_batch SET label = %s WHERE id >= %s", ("x", 3)).rowcount == 2
        cur.execute("INSERT INTO t_batch (id, label, n) VALUES (%s, %s, %s)", (9, "last", 7))
    rows = db.fetchall("SELECT id, label, n FROM t_batch ORDER BY id")
    assert [(r["id"], r["label"], r["n"]) for r in rows] == [
        (0, "row0", 0),
        (1, "row1", 2),
        (2, "row2", 0),
        (3, "x", 0),
        (4, "x", 0),
        (9, "last", 7),
    ]


def test_batched_transaction_failing_at_flush_applies_nothing(runtime: Runtime) -> None:
    db = runtime.db
    with db.transaction() as cur:
        cur.execute("CREATE TABLE t_atomic (id bigint PRIMARY KEY)")
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"), db.transaction(batched=True) as cur:
        for i in (1, 2, 3, 2):
            cur.execute("INSERT INTO t_atomic (id) VALUES (%s)", (i,))
    assert db.fetchall("SELECT id FROM t_atomic") == []


def test_concurrent_saves_all_land_in_order(runtime: Runtime) -> None:
    app = runtime.app
    before = runtime.runner.head()
    start = threading.Barrier(12)

    def writer(w: int) -> list[int]:
        start.wait()
        ids = []
        for i in range(20):
            recordings = app.save(UniqueKey(scope="t", value=f"{w}-{i}", owner_id=i))
            ids.append(recordings[-1].notification.id)
        return ids

    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(writer, range(12)))
    every = sorted(i for ids in results for i in ids)
    # Each save got its own ids, none shared, none skipped, and each writer's saves are ordered as it made them.
    assert every == list(range(before + 1, before + 1 + 240))
    assert all(ids == sorted(ids) for ids in results)
    stored = app.recorder.select_notifications(start=before, limit=1000, inclusive_of_start=False)
    assert [n.id for n in stored] == every


def test_concurrent_writers_of_one_aggregate_one_wins(runtime: Runtime) -> None:
    app = runtime.app
    key = UniqueKey(scope="t", value="contested", owner_id=None)
    app.save(key)
    start = threading.Barrier(8)

    def claim(owner: int) -> bool:
        mine = app.repository.get(key.id)
        start.wait()
        mine.reclaim(owner)
        try:
            app.save(mine, UniqueKey(scope="t", value=f"bystander-{owner}", owner_id=owner))
        except IntegrityError:
            return False
        return True

    with ThreadPoolExecutor(8) as pool:
        won = list(pool.map(claim, range(8)))
    assert won.count(True) == 1
    winner = won.index(True)
    assert app.repository.get(key.id).owner_id == winner
    assert app.repository.get(key.id).version == 2


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)  # group commit is the PostgreSQL recorder's
def test_a_clash_inside_a_group_fails_only_its_own_save(runtime: Runtime) -> None:
    recorder = runtime.app.recorder
    assert isinstance(recorder, GroupCommitRecorder)
    mapper = runtime.app.mapper
    taken = UniqueKey(scope="t", value="taken", owner_id=1)
    runtime.app.save(taken)

    def pending(*keys: UniqueKey) -> _Pending:
        return _Pending([mapper.to_stored_event(e) for k in keys for e in k.collect_events()])

    clash = UniqueKey(scope="t", value="taken", owner_id=2)  # same id and version 1 as `taken`
    group = [
        pending(UniqueKey(scope="t", value="a", owner_id=1)),
        pending(clash),
        pending(UniqueKey(scope="t", value="b", owner_id=1)),
    ]
    recorder._write_group(group)
    assert isinstance(group[1].error, IntegrityError) and group[1].ids is None
    assert group[0].error is None and group[2].error is None
    assert len(group[0].ids) == 1 and group[2].ids[0] > group[0].ids[0]
    assert runtime.app.repository.get(taken.id).owner_id == 1


def test_a_read_after_a_long_run_of_batched_writes_sees_them(runtime: Runtime) -> None:
    """A projection batch: a thousand held-back INSERTs, then a read in the same transaction."""
    db = runtime.db
    with db.transaction() as cur:
        cur.execute("CREATE TABLE t_long (id bigint PRIMARY KEY, kind text)")
    with db.transaction(batched=True) as cur:
        for i in range(1000):
            cur.execute("INSERT INTO t_long (id, kind) VALUES (%s, %s)", (i, "odd" if i % 2 else "even"))
        rows = cur.execute("SELECT kind, count(*) AS n FROM t_long GROUP BY kind ORDER BY kind").fetchall()
        assert [(r["kind"], r["n"]) for r in rows] == [("even", 500), ("odd", 500)]
        cur.execute("INSERT INTO t_long (id, kind) VALUES (%s, %s)", (1000, "late"))
        assert cur.execute("SELECT count(*) AS n FROM t_long").fetchone()["n"] == 1001


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)  # the event-loop store is PostgreSQL's
def test_the_async_store_groups_concurrent_saves_and_fails_only_a_clash(runtime: Runtime) -> None:
    """AsyncEventStore: saves made at once share transactions, get distinct ordered positions, and a version
    clash among them fails that save alone; the library reads back exactly what was written."""
    import asyncio

    from cosmo.storage.async_events import AsyncEventStore

    taken = UniqueKey(scope="t", value="taken", owner_id=1)
    runtime.app.save(taken)
    store = AsyncEventStore(runtime.app, runtime.settings.database.conninfo())

    async def scenario() -> list[object]:
        await store.open()
        try:
            clash = UniqueKey(scope="t", value="taken", owner_id=2)  # same id and version 1 as `taken`
            keys = [UniqueKey(scope="t", value=f"k{i}", owner_id=i) for i in range(20)]
            saves = [store.save(k) for k in keys[:10]] + [store.save(clash)] + [store.save(k) for k in keys[10:]]
            outcomes = await asyncio.gather(*saves, return_exceptions=True)
            again, cached = await store.get(keys[3].id)  # kept by the store after its save
            assert cached and again.owner_id == 3 and again.version == keys[3].version
            return outcomes
        finally:
            await store.close()

    outcomes = asyncio.run(scenario())
    assert isinstance(outcomes[10], IntegrityError)
    positions = [o for i, o in enumerate(outcomes) if i != 10]
    assert all(isinstance(p, int) for p in positions) and len(set(positions)) == 20
    assert positions == sorted(positions)  # queued in call order, written in that order
    assert runtime.app.repository.get(taken.id).owner_id == 1
    assert runtime.app.repository.get(UniqueKey(scope="t", value="k7", owner_id=0).id).owner_id == 7
