"""Operations benchmark (PostgreSQL + Redis): 100,000 tasks over 200 properties and 50 staff. Prints requests/s of
the staff task list (`?status=pending`, a page of 20), the staff dashboard and a status change (PATCH, including
read-your-writes), each beside a bare Litestar endpoint running the same SQL, both on one uvicorn worker, in
alternating rounds, and the median of the rounds' ratios.

    .venv/bin/python bench/operations.py [--tasks 100000] [--seconds 10] [--rounds 3]

Needs PostgreSQL, Redis and wrk, as bench/foundation.py. Figures vary 20-30 % between runs: compare the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
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
        return runtime.command(
            lambda: runtime.identity.create_user(
                SYSTEM, username=name, email="", password=PASSWORD, role=role, task_group=group
            )
        )

    def next_id(kind: str) -> int:
        return runtime.call(lambda: runtime.tasks.ids.next(kind))

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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    opts = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")
    db = create_db()
    env = env_for(db)
    os.environ.update(env)
    from cosmo.config import load_settings
    from cosmo.runtime import Runtime

    try:
        runtime = Runtime(load_settings(env))
        t = time.perf_counter()
        me, mine = seed(runtime, opts.tasks)
        print(f"seeded {opts.tasks} tasks ({runtime.runner.head()} events) in {time.perf_counter() - t:.0f} s")
        t = time.perf_counter()
        runtime.runner.run_once()
        print(f"projected in {time.perf_counter() - t:.0f} s")
        # VACUUM as well as ANALYZE: otherwise autovacuum visits the freshly loaded tables during the first
        # measurements (seen as Cosmo's list at half its usual rate), and the bare runs, measured later, escape it.
        with psycopg.connect(runtime.settings.database.conninfo(), autocommit=True) as conn:
            conn.execute("VACUUM (ANALYZE)")
        runtime.close()
        lua = str(ROOT / "bench" / "patch_status.lua")
        from cosmo.config import load_settings as settings_of

        bare_env = {
            **env,
            "BENCH_CONNINFO": settings_of(env).database.conninfo(),
            "BENCH_USER_ID": str(me),
            "BENCH_GROUP": "cleaning",
            "PYTHONPATH": str(ROOT / "bench"),
        }
        # Both servers run for the whole measurement, each idle while the other is measured, and the figures are
        # taken in alternating rounds: this machine's speed drifts by tens of percent within minutes, and a ratio
        # of runs minutes apart measured the drift. Each round changes the status of its own slice of the tasks,
        # so every round starts from pending tasks, as the first did.
        cosmo = serve(["cosmo.api.app:create_app_from_env", "--factory"], env, 8821)
        bare = serve(["bare_operations:app"], bare_env, 8822, ready_path="/bare/dashboard/")
        slices = [mine[r :: opts.rounds] for r in range(opts.rounds)]
        ids_files = [Path(tempfile.mkstemp(suffix=".ids")[1]) for _ in slices]
        for ids_file, ids in zip(ids_files, slices, strict=True):
            ids_file.write_text("\n".join(str(i) for i in ids))
        figures: dict[str, list[tuple[float, float]]] = {"list": [], "dashboard": [], "patch": []}
        try:
            auth = [f"Authorization: Bearer {login(8821, 'staff0')}"]
            ours, theirs = "http://127.0.0.1:8821", "http://127.0.0.1:8822"
            wrk(f"{ours}/api/staff/tasks/?status=pending", 2, auth)  # warm-up
            wrk(f"{theirs}/bare/tasks/?status=pending", 2, [])
            for ids_file in ids_files:
                pair = (
                    wrk(f"{ours}/api/staff/tasks/?status=pending", opts.seconds, auth),
                    wrk(f"{theirs}/bare/tasks/?status=pending", opts.seconds, []),
                )
                figures["list"].append(pair)
                pair = (
                    wrk(f"{ours}/api/staff/dashboard/", opts.seconds, auth),
                    wrk(f"{theirs}/bare/dashboard/", opts.seconds, []),
                )
                figures["dashboard"].append(pair)
                ours_env = {**os.environ, "BENCH_IDS_FILE": str(ids_file), "BENCH_PATH_PREFIX": "/api/staff/tasks/"}
                theirs_env = {**os.environ, "BENCH_IDS_FILE": str(ids_file), "BENCH_PATH_PREFIX": "/bare/tasks/"}
                pair = (
                    wrk(f"{ours}/", opts.seconds, auth, script=lua, env=ours_env),
                    wrk(f"{theirs}/", opts.seconds, [], script=lua, env=theirs_env),
                )
                figures["patch"].append(pair)
        finally:
            for server in (cosmo, bare):
                server.terminate()
                server.wait()
            for ids_file in ids_files:
                ids_file.unlink()
        goals = {"list": 0.5, "dashboard": 0.5, "patch": 0.3}
        names = {
            "list": "GET /api/staff/tasks/?status=pending",
            "dashboard": "GET /api/staff/dashboard/",
            "patch": "PATCH /api/staff/tasks/{id}/ (status)",
        }
        print(f"staff user sees {len(mine)} own pending tasks among {opts.tasks}; {opts.rounds} rounds")
        for key, pairs in figures.items():
            rounds = "  ".join(f"{a:.0f}/{b:.0f}" for a, b in pairs)
            ratio = statistics.median(a / b for a, b in pairs)
            print(f"{names[key]:40} median ratio {ratio:.2f} (goal >= {goals[key]})   Cosmo/bare req/s: {rounds}")
    finally:
        drop_db(db)


if __name__ == "__main__":
    main()
