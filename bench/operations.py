"""Operations benchmark (PostgreSQL + Redis): does a staff member's day cost the same with 10,000 tasks as with
100,000? Two deployments are seeded (10,000 and 100,000 tasks over 200 properties and 50 staff; the measured user is
a cleaner) and served side by side as production runs them, each one API process (one uvicorn worker) and one `cosmo
worker` process for its projections, with a bare Litestar endpoint running a plain `UPDATE` beside them. In
alternating rounds it measures, with wrk, `GET /api/users/me/` (a one-row indexed read: the yardstick), the staff
task list (`?status=pending`, a page of 20), the dashboard, the task counts on both deployments, and the status
change (PATCH, with read-your-writes) against the bare UPDATE; then prints each figure's median over the rounds and
the ratios the goals are stated in, each taken within a round.

    .venv/bin/python bench/operations.py [--small 10000] [--tasks 100000] [--seconds 8] [--rounds 3] [--port 8820]

Needs PostgreSQL, Redis and wrk, as bench/foundation.py (BENCH_PG, BENCH_REDIS and BENCH_DB_PREFIX say which).
Figures vary 20-30 % between runs: compare the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from foundation import ROOT, create_db, drop_db, env_for, serve, wrk

GROUPS = ("cleaning", "maintenance", "laundry", "lawn_pool", "general")
TYPES = ("cleaning", "maintenance", "laundry", "lawn_pool", "inspection", "preparation", "administration", "other")
PASSWORD = "Bench-pass-1"


def seed(runtime, tasks: int) -> tuple[int, list[int]]:
    """Users, properties and tasks straight through the application; returns (the measured staff user's id,
    ids of pending tasks assigned to them)."""
    from cosmo.domain.actors import SYSTEM
    from cosmo.domain.properties import Property
    from cosmo.domain.tasks import Task

    def user(name: str, role: str, group: str) -> int:
        # Straight through the command, without waiting for projections (they are run once, after seeding).
        created = runtime.call(
            lambda: runtime.commands.identity.create_user(
                SYSTEM, username=name, email="", password=PASSWORD, role=role, task_group=group
            )
        )
        return created.result

    def next_id(kind: str) -> int:
        return runtime.call(lambda: runtime.commands.tasks.ids.next(kind))

    manager = user("boss", "manager", "none")
    staff = [user(f"staff{i}", "staff", GROUPS[i % len(GROUPS)]) for i in range(50)]
    properties = []
    for i in range(200):
        pid = next_id("property")
        runtime.app.save(
            Property(
                property_id=pid,
                name=f"Property {i}",
                address=f"{i} Main St",
                property_type="apartment",
                timezone="UTC",
                actor_id=manager,
            )
        )
        properties.append(pid)
    rng = random.Random(7)
    now = datetime.now(UTC)
    me = staff[0]  # a cleaner
    mine: list[int] = []
    batch = []
    for _ in range(tasks):
        task_id = next_id("task") if len(batch) == 0 else batch[-1].task_id + 1
        assignee = rng.choice(staff) if rng.random() < 0.7 else None
        task = Task(
            task_id=task_id,
            title=f"Task {task_id}",
            description="Standard turnover",
            task_type=rng.choice(TYPES),
            priority=rng.choice(("low", "medium", "high", "urgent")),
            property_id=rng.choice(properties),
            unit_id=None,
            assigned_to=assignee,
            due_date=now + timedelta(hours=rng.randint(-500, 500)),
            checklist=None,
            actor_id=manager,
        )
        roll = rng.random()
        if roll < 0.3:
            task.change_status("in-progress", manager, "manager")
        elif roll < 0.6:
            task.change_status("in-progress", manager, "manager")
            task.change_status("completed", manager, "manager")
        elif assignee == me:
            mine.append(task_id)
        batch.append(task)
        if len(batch) == 500:
            runtime.app.save(*batch)
            _reserve(runtime, "task", batch[-1].task_id)
            batch = []
    if batch:
        runtime.app.save(*batch)
        _reserve(runtime, "task", batch[-1].task_id)
    return me, mine


def _reserve(runtime, kind: str, last: int) -> None:
    """Move the id sequence past ids the seeding handed out itself (in blocks, to seed fast)."""
    runtime.db.execute("UPDATE id_sequences SET value = %s WHERE name = %s AND value < %s", (last, kind, last))


def login(port: int, username: str) -> str:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/token/",
        method="POST",
        data=json.dumps({"username": username, "password": PASSWORD}).encode(),
        headers={"content-type": "application/json"},
    )
    return json.load(urllib.request.urlopen(req))["access"]  # noqa: S310


def _deployment(tasks: int) -> tuple[str, dict[str, str], int, list[int]]:
    """A seeded, projected and vacuumed database: (name, env, the measured user's id, their pending task ids)."""
    from cosmo.config import load_settings
    from cosmo.runtime import Runtime

    db = create_db()
    env = env_for(db)
    runtime = Runtime(load_settings(env))
    try:
        t = time.perf_counter()
        me, mine = seed(runtime, tasks)
        print(f"{tasks} tasks: seeded ({runtime.runner.head()} events) in {time.perf_counter() - t:.0f} s", end="")
        t = time.perf_counter()
        runtime.runner.run_once()
        print(f", projected in {time.perf_counter() - t:.0f} s")
        # VACUUM as well as ANALYZE: otherwise autovacuum visits the freshly loaded tables during the first
        # measurements, and the figures measured later escape it.
        with psycopg.connect(runtime.settings.database.conninfo(), autocommit=True) as conn:
            conn.execute("VACUUM (ANALYZE)")
        conninfo = runtime.settings.database.conninfo()
    finally:
        runtime.close()
    return db, {**env, "BENCH_CONNINFO": conninfo}, me, mine


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=10_000, help="tasks in the smaller deployment")
    parser.add_argument("--tasks", type=int, default=100_000, help="tasks in the larger deployment")
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--port", type=int, default=8820, help="the first of the three ports the servers take")
    opts = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")
    dbs: list[str] = []
    servers = []
    try:
        small_db, small_env, _, _ = _deployment(opts.small)
        dbs.append(small_db)
        large_db, large_env, me, mine = _deployment(opts.tasks)
        dbs.append(large_db)
        lua = str(ROOT / "bench" / "patch_status.lua")
        bare_env = {**large_env, "BENCH_USER_ID": str(me), "BENCH_GROUP": "cleaning", "PYTHONPATH": str(ROOT / "bench")}
        # All servers run for the whole measurement, each idle while another is measured, and the figures are taken
        # in alternating rounds: this machine's speed drifts by tens of percent within minutes, and a ratio of runs
        # minutes apart measures the drift. Each round changes the status of its own slice of the tasks, so every
        # round starts from pending tasks, as the first did.
        small_port, large_port, bare_port = opts.port, opts.port + 1, opts.port + 2
        small = f"http://127.0.0.1:{small_port}"
        large = f"http://127.0.0.1:{large_port}"
        bare = f"http://127.0.0.1:{bare_port}"
        # As in production: the API process serves, and a `cosmo worker` process runs the projections.
        for env, port in ((small_env, small_port), (large_env, large_port)):
            servers.append(subprocess.Popen([str(ROOT / ".venv" / "bin" / "cosmo"), "worker"], env=env, cwd=ROOT))
            servers.append(
                serve(["cosmo.api.app:create_app_from_env", "--factory"], {**env, "COSMO_SERVE_PROJECTIONS": "0"}, port)
            )
        servers.append(serve(["bare_operations:app"], bare_env, bare_port, ready_path="/bare/ready/"))
        slices = [mine[r :: opts.rounds] for r in range(opts.rounds)]
        ids_files = [Path(tempfile.mkstemp(suffix=".ids")[1]) for _ in slices]
        for ids_file, ids in zip(ids_files, slices, strict=True):
            ids_file.write_text("\n".join(str(i) for i in ids))
        auth = {url: [f"Authorization: Bearer {login(int(url.rsplit(':', 1)[1]), 'staff0')}"] for url in (small, large)}
        reads = {
            "me": "/api/users/me/",
            "list": "/api/staff/tasks/?status=pending",
            "dashboard": "/api/staff/dashboard/",
            "counts": "/api/staff/task-counts/",
        }
        rounds: list[dict[str, float]] = []
        try:
            for url in (small, large):
                for path in reads.values():
                    wrk(f"{url}{path}", 1, auth[url])  # warm-up
            for ids_file in ids_files:
                figures: dict[str, float] = {}
                for key, path in reads.items():
                    figures[f"{key}@small"] = wrk(f"{small}{path}", opts.seconds, auth[small])
                    figures[f"{key}@large"] = wrk(f"{large}{path}", opts.seconds, auth[large])
                ours_env = {**os.environ, "BENCH_IDS_FILE": str(ids_file), "BENCH_PATH_PREFIX": "/api/staff/tasks/"}
                theirs_env = {**os.environ, "BENCH_IDS_FILE": str(ids_file), "BENCH_PATH_PREFIX": "/bare/tasks/"}
                figures["patch"] = wrk(f"{large}/", opts.seconds, auth[large], script=lua, env=ours_env)
                figures["bare patch"] = wrk(f"{bare}/", opts.seconds, [], script=lua, env=theirs_env)
                rounds.append(figures)
                # Those seconds changed each of the cleaner's tasks a dozen times, far faster than autovacuum
                # follows: without this the next round's reads would wade through their dead index entries.
                with psycopg.connect(large_env["BENCH_CONNINFO"], autocommit=True) as conn:
                    conn.execute("VACUUM (ANALYZE) tasks_view")
        finally:
            for ids_file in ids_files:
                ids_file.unlink()
        print(f"the cleaner sees {len(mine)} own pending tasks among {opts.tasks}")
        print(f"{opts.rounds} rounds of {opts.seconds} s each, req/s:")
        for key in rounds[0]:
            values = ", ".join(f"{r[key]:.0f}" for r in rounds)
            print(f"  {key:18} median {statistics.median(r[key] for r in rounds):7.0f} req/s   ({values})")
        goals = [
            ("list / users/me, at large", "list@large", "me@large", 0.3),
            ("dashboard / users/me, at large", "dashboard@large", "me@large", 0.5),
            ("task-counts / users/me, at large", "counts@large", "me@large", 0.5),
            ("list, large / small", "list@large", "list@small", 0.8),
            ("dashboard, large / small", "dashboard@large", "dashboard@small", 0.8),
            ("task-counts, large / small", "counts@large", "counts@small", 0.8),
            ("status PATCH / bare UPDATE", "patch", "bare patch", 0.4),
        ]
        for name, a, b, goal in goals:
            ratio = statistics.median(r[a] / r[b] for r in rounds)
            print(f"{name:34} median ratio {ratio:5.2f}   (goal >= {goal})   {'met' if ratio >= goal else 'MISSED'}")
    finally:
        for server in servers:
            server.terminate()
            server.wait()
        for db in dbs:
            drop_db(db)


if __name__ == "__main__":
    main()
