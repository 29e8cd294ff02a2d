"""Loading cost against stream length (issue 14), on PostgreSQL: prints figures; never part of the test run.

Two long-lived streams, each at two lengths: a user's inbox after 10 and after 10,000 earlier reads, and an
unlimited invite code after 10 and after 10,000 registrations. The earlier events are written in one save each
(the command side takes the snapshot as that save crosses its interval, as it would over a year of single saves).
Then, in alternating rounds, the command itself is timed: `mark_read` of a new notification, and `register` with
the invite code (a new user each time), each round a batch of commands one after another, as one API process
runs them:

- warm: the process's aggregate cache holds the aggregate (the usual case in the process that last wrote it);
- cold: the cache is emptied before every command (another process's command, or after a restart): the load
  reads the table, which is where the stream's length shows. With snapshots it reads the latest snapshot and the
  events after it; `--no-snapshots` deletes the snapshots before each cold command, as before this change.

    .venv/bin/python bench/snapshots.py [--commands 300] [--rounds 3] [--long 10000]

Prints commands/s per case (medians over the rounds) and the ratio long/short (goal >= 0.9).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime

from foundation import create_db, drop_db, env_for

PASSWORD = "Bench-pass-1"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--commands", type=int, default=300, help="commands per case per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--long", type=int, default=10_000, help="earlier events of the long streams")
    parser.add_argument("--no-snapshots", action="store_true", help="delete snapshots before each cold command")
    opts = parser.parse_args()
    db = create_db()
    env = env_for(db)
    os.environ.update(env)
    from cosmo.config import load_settings
    from cosmo.domain.actors import SYSTEM, Actor
    from cosmo.domain.ids import aggregate_id
    from cosmo.domain.inbox import Inbox
    from cosmo.runtime import Runtime

    runtime = Runtime(load_settings(env))
    try:
        runtime.start(run_projections=True, run_policies=False)
        store = runtime.store
        admin = Actor(
            runtime.command(
                lambda: runtime.commands.identity.create_user(
                    SYSTEM, username="boss", email="", password=PASSWORD, role="superuser", task_group="none"
                )
            ),
            "superuser",
            "none",
        )
        snapshot_table = runtime.app.snapshots.recorder.events_table_name

        # -- the streams ----------------------------------------------------------------------------------------
        readers = {}
        invites = {}
        for label, earlier in (("short", 10), ("long", opts.long)):
            user = runtime.command(
                lambda label=label: runtime.commands.identity.create_user(
                    SYSTEM, username=f"reader-{label}", email="", password=PASSWORD, role="staff", task_group="none"
                )
            )
            inbox = Inbox(user_id=user)
            for n in range(1, earlier + 1):
                inbox.mark_read(n * 8)
            runtime.call(lambda inbox=inbox: store.save(inbox))
            readers[label] = (Actor(user, "staff", "none"), earlier * 8)
            invite_id = runtime.command(
                lambda: runtime.commands.identity.create_invite(
                    admin, {"role": "staff", "task_group": "none", "max_uses": 0}
                )
            )
            invite, _ = runtime.call(lambda i=invite_id: store.get(aggregate_id("invite", i), fresh=True))
            now = datetime.now(UTC)
            for n in range(earlier):
                invite.use(1_000_000 + n, now)
            runtime.call(lambda invite=invite: store.save(invite))
            invites[label] = invite.code
            inbox_version = runtime.call(lambda u=user: store.get(aggregate_id("inbox", u), fresh=True))[0].version
            invite_version = runtime.call(lambda i=invite_id: store.get(aggregate_id("invite", i), fresh=True))[
                0
            ].version
            print(f"{label}: inbox version {inbox_version}, invite version {invite_version}", flush=True)
        print(f"snapshots stored: {runtime.db.fetchone(f'SELECT count(*) AS n FROM {snapshot_table}')['n']}")

        counter = {"users": 0}

        def cold() -> None:
            store._cache.clear()  # the benchmark's subject: a command that finds nothing cached
            if opts.no_snapshots:
                runtime.db.execute(f"DELETE FROM {snapshot_table}")

        def mark(label: str, warm: bool) -> float:
            actor, last = readers[label]
            started = time.perf_counter()
            for _ in range(opts.commands):
                last += 8
                if not warm:
                    cold()
                runtime.call(lambda n=last: runtime.commands.inbox.mark_read(actor, n))
            readers[label] = (actor, last)
            return opts.commands / (time.perf_counter() - started)

        def register(label: str, warm: bool) -> float:
            started = time.perf_counter()
            for _ in range(opts.commands):
                counter["users"] += 1
                n = counter["users"]
                if not warm:
                    cold()
                runtime.call(
                    lambda n=n: runtime.commands.identity.register(
                        {
                            "username": f"new{n}",
                            "email": f"new{n}@example.com",
                            "password": PASSWORD,
                            "password_confirm": PASSWORD,
                            "invite_code": invites[label],
                        }
                    )
                )
            return opts.commands / (time.perf_counter() - started)

        results: dict[tuple[str, str, str], list[float]] = {}
        for r in range(opts.rounds):
            for name, fn in (("mark-read", mark), ("register", register)):
                for warm in (True, False):
                    for label in ("short", "long") if r % 2 == 0 else ("long", "short"):
                        rate = fn(label, warm)
                        results.setdefault((name, "warm" if warm else "cold", label), []).append(rate)
            print(f"round {r + 1} done", flush=True)
        print()
        print(
            f"{'command':10} {'cache':5} {'10 earlier':>12} {f'{opts.long:,} earlier':>16} {'ratio':>7}  (goal >= 0.9)"
        )
        for name in ("mark-read", "register"):
            for mode in ("warm", "cold"):
                short = statistics.median(results[(name, mode, "short")])
                long = statistics.median(results[(name, mode, "long")])
                print(f"{name:10} {mode:5} {short:10.0f}/s {long:14.0f}/s {long / short:7.2f}")
        if opts.no_snapshots:
            print("(cold figures with the snapshots deleted before each command: loading replays every event)")
    finally:
        runtime.close()
        drop_db(db)


if __name__ == "__main__":
    sys.exit(main())
