"""Audit benchmark (PostgreSQL by default): how fast the audit chain verifies and how fast an entity is rebuilt
as of an instant.

1. `as_of`: a task with 1,000 events (made through the task commands, as a day of edits would), rebuilt as it was
   at its last and at its middle version, against the time to read those 1,000 events from the store (fetch and
   decode). Medians of `--repeat` runs. Goal: `as_of` under 2x the read.
2. `audit verify` over `--events` events (default 1,000,000): the store is filled with copies of a real task's
   events under fresh ids (COPY, so filling takes seconds rather than the hours the commands would), the chain is
   computed by the projection runner as it would be live (its rate is printed: the chain's cost on the write path),
   then the whole store is verified. Goal: >= 100,000 events/s.

    .venv/bin/python bench/audit.py [--events 1000000] [--repeat 20] [--backend postgres|sqlite]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from foundation import SECRET, create_db, drop_db, env_for

TASK_EVENTS = 1000


def runtime_for(env: dict[str, str]):
    from cosmo.config import load_settings
    from cosmo.runtime import Runtime

    return Runtime(load_settings(env))


def edited_task(rt, manager: str, edits: int, on_edit=None) -> int:
    """A task made by a new manager and edited `edits` times through the task commands; returns its id."""
    from cosmo.domain.actors import SYSTEM, Actor

    boss = rt.call(
        lambda: rt.commands.identity.create_user(
            SYSTEM, username=manager, email="", password="Bench-pass-1", role="manager", task_group="none"
        )
    ).result
    actor = Actor(boss, "manager", "none")
    task_id = rt.call(lambda: rt.commands.tasks.create(actor, {"title": "Deep clean", "task_type": "cleaning"})).result
    for i in range(edits):
        rt.call(lambda i=i: rt.commands.tasks.update(actor, task_id, {"description": f"pass {i}"}))
        if on_edit:
            on_edit(i)
    return task_id


def a_long_task(rt) -> tuple[int, datetime]:
    """A task with TASK_EVENTS events; returns its id and the instant of its middle version."""
    middle = [datetime.now(UTC)]

    def mark(i: int) -> None:
        if i == TASK_EVENTS // 2:
            middle[0] = datetime.now(UTC)

    task_id = edited_task(rt, "boss", TASK_EVENTS - 1, mark)
    rt.runner.catch_up()
    return task_id, middle[0]


def timed(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def as_of_figures(rt, repeat: int) -> None:
    from cosmo.domain.actors import SYSTEM
    from cosmo.domain.ids import aggregate_id
    from cosmo.projections.audit import replay

    task_id, middle = a_long_task(rt)
    originator = aggregate_id("task", task_id)
    events = list(rt.app.events.get(originator))
    assert len(events) == TASK_EVENTS, len(events)
    read = timed(lambda: list(rt.app.events.get(originator)), repeat)
    audit, app = rt.queries.audit, rt.app
    end = datetime.now(UTC)

    def as_of(when: datetime) -> None:
        rt.call(lambda: replay.as_of(audit, app, SYSTEM, "task", str(task_id), when))

    last, mid = timed(lambda: as_of(end), repeat), timed(lambda: as_of(middle), repeat)
    print(f"reading the task's {TASK_EVENTS} events: {read * 1000:.1f} ms (median of {repeat})")
    print(f"as_of at its last version:   {last * 1000:.1f} ms, {last / read:.2f}x the read (goal < 2x)")
    print(f"as_of at its middle version: {mid * 1000:.1f} ms, {mid / read:.2f}x the read")


def fill(rt, total: int) -> None:
    """Copies of a real task's events under fresh ids, interleaved across entities as a busy log would be."""
    task_id = edited_task(rt, "filler", 9)
    recorder = rt.app.recorder
    from cosmo.domain.ids import aggregate_id

    sample = [(e.topic, bytes(e.state)) for e in recorder.select_events(aggregate_id("task", task_id))]
    per_entity = len(sample)
    entities = max(1, (total - rt.runner.head()) // per_entity)
    block = 1000
    t = time.perf_counter()
    if rt.db.is_postgres:
        import psycopg

        with psycopg.connect(rt.settings.database.conninfo()) as conn, conn.cursor() as cur:
            table = f'"{recorder.datastore.schema}"."{recorder.events_table_name}"'
            with cur.copy(f"COPY {table} (originator_id, originator_version, topic, state) FROM STDIN") as copy:
                for start in range(0, entities, block):
                    ids = [uuid.uuid4() for _ in range(min(block, entities - start))]
                    for version, (topic, state) in enumerate(sample, start=1):
                        for oid in ids:
                            copy.write_row((oid, version, topic, state))
    else:
        with rt.db.transaction() as cur:
            for start in range(0, entities, block):
                ids = [uuid.uuid4().hex for _ in range(min(block, entities - start))]
                cur.executemany(
                    f"INSERT INTO {recorder.events_table_name} (originator_id, originator_version, topic, state)"
                    " VALUES (%s, %s, %s, %s)",
                    [(oid, v, topic, state) for v, (topic, state) in enumerate(sample, start=1) for oid in ids],
                )
    print(f"filled {entities * per_entity:,} events ({entities:,} entities) in {time.perf_counter() - t:.1f} s")


def verify_figures(rt, total: int) -> None:
    from cosmo.projections.audit.chain import audit_key
    from cosmo.projections.audit.verify import Verifier

    fill(rt, total)
    head = rt.runner.head()
    t = time.perf_counter()
    chained = rt.runner.catch_up("audit_chain")
    took = time.perf_counter() - t
    print(f"chained {chained:,} events in {took:.1f} s: {chained / took:,.0f} events/s (the projection runner)")
    verifier = Verifier(rt.app, rt.db, audit_key(rt.settings.secret_key))
    t = time.perf_counter()
    result = verifier.run()
    took = time.perf_counter() - t
    assert result.ok, result.problem
    assert result.events == head, (result.events, head)
    print(
        f"verified {result.events:,} events and {result.seals} seals in {took:.1f} s:"
        f" {result.events / took:,.0f} events/s (goal >= 100,000)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--backend", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--skip-as-of", action="store_true")
    args = parser.parse_args()
    scratch = tempfile.TemporaryDirectory(prefix="cosmo-bench-audit-")
    if args.backend == "postgres":
        db = create_db()
        env = env_for(db)
    else:
        db = ""
        env = {
            "COSMO_DATABASE_URL": f"sqlite:///{Path(scratch.name) / 'cosmo.db'}",
            "COSMO_SECRET_KEY": SECRET,
            "COSMO_PASSWORD_COST": "low",
        }
    env["COSMO_MEDIA_ROOT"] = str(Path(scratch.name) / "media")
    rt = runtime_for(env)
    try:
        print(f"backend: {args.backend}")
        if not args.skip_as_of:
            as_of_figures(rt, args.repeat)
        verify_figures(rt, args.events)
    finally:
        rt.close()
        if db:
            drop_db(db)
        scratch.cleanup()


if __name__ == "__main__":
    main()
