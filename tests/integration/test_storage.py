"""Storage: the batching cursor projections write through, and the event store's grouped commits."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import msgspec
import pytest
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from cosmo.domain.checks import LATEST
from cosmo.domain.identity import UniqueKey
from cosmo.runtime import Runtime
from cosmo.storage.db import packed_sql


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
    """Twelve writers saving at once through the event store commands use (grouped on PostgreSQL)."""
    store = runtime.store
    before = runtime.runner.head()

    async def writer(w: int) -> list[int]:
        return [int(await store.save(UniqueKey(scope="t", value=f"{w}-{i}", owner_id=i))) for i in range(20)]

    async def scenario() -> list[list[int]]:
        return list(await asyncio.gather(*(writer(w) for w in range(12))))

    results = runtime.call(scenario)
    every = sorted(i for ids in results for i in ids)
    # Each save got its own ids, none shared, none skipped, and each writer's saves are ordered as it made them.
    assert every == list(range(before + 1, before + 1 + 240))
    assert all(ids == sorted(ids) for ids in results)
    stored = runtime.app.recorder.select_notifications(start=before, limit=1000, inclusive_of_start=False)
    assert [n.id for n in stored] == every


def test_concurrent_writers_of_one_aggregate_one_wins(runtime: Runtime) -> None:
    store = runtime.store
    key = UniqueKey(scope="t", value="contested", owner_id=None)
    runtime.call(lambda: store.save(key))

    async def claim(owner: int) -> bool:
        mine, _ = await store.get(key.id, fresh=True)
        await asyncio.sleep(0.05)  # every claimer holds version 1 before anyone saves
        mine.reclaim(owner)
        try:
            await store.save(mine, UniqueKey(scope="t", value=f"bystander-{owner}", owner_id=owner))
        except IntegrityError:
            return False
        return True

    async def scenario() -> list[bool]:
        return list(await asyncio.gather(*(claim(o) for o in range(8))))

    won = runtime.call(scenario)
    assert won.count(True) == 1
    winner = won.index(True)
    assert runtime.app.repository.get(key.id).owner_id == winner
    assert runtime.app.repository.get(key.id).version == 2
    # The loser's bystander key was not half-saved.
    lost = next(o for o in range(8) if o != winner)
    with pytest.raises(AggregateNotFoundError):
        runtime.app.repository.get(UniqueKey(scope="t", value=f"bystander-{lost}", owner_id=0).id)


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
    """PostgresEventStore: saves made at once share transactions, get distinct ordered positions, and a version
    clash among them fails that save alone; the library reads back exactly what was written."""
    import asyncio

    from cosmo.storage.event_store import PostgresEventStore

    taken = UniqueKey(scope="t", value="taken", owner_id=1)
    runtime.app.save(taken)
    store = PostgresEventStore(runtime.app, runtime.settings.database.conninfo())

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


class PackedRow(msgspec.Struct):
    id: int
    label: str
    done: bool
    due: datetime | None
    order: int


def test_packed_reads_come_back_in_one_statement_as_typed_json(runtime: Runtime) -> None:
    """`fetch_packed`: several reads, their parameters in turn, each one's rows as a JSON array in its own order,
    decoded into the types the rows have on either database."""
    db = runtime.db
    with db.transaction() as cur:
        cur.execute(
            'CREATE TABLE t_packed (id bigint PRIMARY KEY, label text, done boolean, due timestamptz, "order" bigint)'
        )
        for i, label in enumerate(['say "hi"', "back\\slash", "Süd 🧹", "plain"]):
            due = datetime(2031, 1, 2, 3, 4, 5, 250000, tzinfo=UTC) if i % 2 else None
            cur.execute(
                'INSERT INTO t_packed (id, label, done, due, "order") VALUES (%s, %s, %s, %s, %s)',
                (i, label, i == 1, due, 2**62 + i),
            )
    columns = ("id", "label", "done", "due", "order")
    reads = [
        ("SELECT * FROM t_packed WHERE id >= %s ORDER BY id DESC LIMIT %s", (1, 2), columns),
        ("SELECT * FROM t_packed WHERE label = %s", ("nobody",), columns),
        ("SELECT done, count(*) AS n FROM t_packed GROUP BY done ORDER BY n DESC", (), ("done", "n")),
    ]
    newest, none, by_done = runtime.call(lambda: runtime.adb.fetch_packed(reads))
    rows = msgspec.json.decode(newest, type=list[PackedRow], strict=False)  # SQLite's booleans are 0 and 1
    assert [(r.id, r.label, r.done, r.due, r.order) for r in rows] == [
        (3, "plain", False, datetime(2031, 1, 2, 3, 4, 5, 250000, tzinfo=UTC), 2**62 + 3),
        (2, "Süd 🧹", False, None, 2**62 + 2),
    ]
    assert msgspec.json.decode(none) == []
    assert [(bool(r["done"]), r["n"]) for r in msgspec.json.decode(by_done)] == [(False, 3), (True, 1)]
    with pytest.raises(ValueError):
        packed_sql([("SELECT 1 AS x", (), ("x', 1) --",))], runtime.db.is_postgres)


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_async_reads_are_in_utc_whatever_the_server_zone(runtime: Runtime) -> None:
    """The async pool sets its own session options: they keep the time zone the conninfo asks for, so the last
    moment of 9999 still loads, and packed reads carry offsets msgspec reads."""
    from cosmo.storage.db import AsyncDatabase

    name = runtime.settings.database.dbname
    runtime.db.execute(f"ALTER DATABASE {name} SET timezone TO 'America/New_York'")
    fresh = AsyncDatabase(runtime.db)

    async def read() -> tuple[object, str]:
        await fresh.open()
        try:
            row = await fresh.fetchone("SELECT current_setting('timezone') AS tz, %s::timestamptz AS t", (LATEST,))
            [packed] = await fresh.fetch_packed([("SELECT %s::timestamptz AS t", (LATEST,), ("t",))])
            return row, packed
        finally:
            await fresh.close()

    row, packed = asyncio.run(read())
    assert row["tz"] == "UTC" and row["t"] == LATEST
    assert msgspec.json.decode(packed, type=list[dict[str, datetime]]) == [{"t": LATEST}]
