"""Rebuild under load (PostgreSQL + Redis, issue 13): API requests/s while `cosmo projections rebuild tasks` replays
the whole log into shadow tables and swaps them in, against the same load without a rebuild (goal >= 0.7), and no
failed request meanwhile.

One database is seeded as bench/operations.py seeds its large deployment (--tasks tasks over 200 properties and 50
staff; the measured user is a cleaner), projected and vacuumed, then served as production runs it: one API process
(one uvicorn worker, projections off) and one `cosmo worker` process running the projections. The load is wrk in
windows of --window seconds, two wrk processes side by side: the cleaner's pending task list (`GET
/api/staff/tasks/?status=pending`, a page of 20, read from the task projection; 24 connections) and `GET
/api/users/me/` (8 connections). All the while a thread changes one of the cleaner's tasks every 100 ms (PATCH,
pending <-> in-progress, with read-your-writes), so new events keep arriving. Phases:

1. baseline: --seconds of windows;
2. rebuild: `cosmo projections rebuild tasks` in its own process (same environment), windows from its start until it
   exits; req/s over those windows against the baseline's;
3. baseline again, --seconds (this machine's speed drifts: the ratio is also given against both baselines' mean).

Then the writes stop (every changed task back to pending) and, once the projections have caught up, the rebuilt
tasks_view must hold what a copy taken before the load held (updated_at aside, for the changed tasks only), and the
cleaner's list must answer as before. Failures are non-2xx responses and socket errors (wrk's timeout is 10 s: a slow
answer is shown as latency, not as a failure). A sampler records CPU per process and sessions waiting on a lock.

    .venv/bin/python bench/rebuild.py [--tasks 100000] [--seconds 10] [--window 2] [--keep]

Needs PostgreSQL, Redis and wrk, as bench/foundation.py. On a shared server: --db-prefix (or BENCH_DB_PREFIX) names
the database, --redis-prefix (BENCH_REDIS_PREFIX) prefixes its Redis keys, --port picks the API's port.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from foundation import ADMIN, ROOT, create_db, drop_db, env_for, serve, wrk
from operations import login, seed

LOADS = {"list": ("/api/staff/tasks/?status=pending", 24), "me": ("/api/users/me/", 8)}  # path, connections
TICK = os.sysconf("SC_CLK_TCK")
UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


# -- the load ------------------------------------------------------------------------------------------------------


@dataclass
class Window:
    start: float  # time.monotonic() at the start
    end: float
    requests: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # as wrk measured them
    non2xx: dict[str, int] = field(default_factory=dict)
    socket: dict[str, int] = field(default_factory=dict)
    max_ms: dict[str, float] = field(default_factory=dict)

    def rate(self, key: str) -> float:
        return self.requests[key] / self.seconds[key]


def _duration(number: str, unit: str) -> float:
    return float(number) * UNITS[unit]


def load_window(base: str, seconds: int, auth: str, running: list[subprocess.Popen]) -> Window:
    """One window of the read mix: a wrk process per path, side by side."""
    start = time.monotonic()
    procs = {}
    for key, (path, conns) in LOADS.items():
        args = ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--timeout", "10s", "-H", auth, base + path]
        procs[key] = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        running.append(procs[key])
    window = Window(start, start)
    for key, proc in procs.items():
        out = proc.communicate()[0]
        running.remove(proc)
        done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h)", out)
        if proc.returncode != 0 or done is None:
            raise RuntimeError(f"wrk failed on {LOADS[key][0]}:\n{out}")
        window.requests[key] = int(done.group(1))
        window.seconds[key] = _duration(done.group(2), done.group(3))
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        window.non2xx[key] = int(non2xx.group(1)) if non2xx else 0
        sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
        window.socket[key] = sum(int(g) for g in sock.groups()) if sock else 0
        latency = re.search(r"Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s|m)", out)
        window.max_ms[key] = _duration(latency.group(1), latency.group(2)) * 1000 if latency else 0.0
    window.end = time.monotonic()
    return window


def total_rate(windows: list[Window], key: str) -> float:
    return sum(w.requests[key] for w in windows) / sum(w.seconds[key] for w in windows)


class Writer(threading.Thread):
    """Changes one of the cleaner's pending tasks every `interval` seconds (pending -> in-progress, and on the next
    visit back), through the API as the cleaner; each answer is filed under the phase it was sent in."""

    def __init__(self, base: str, token: str, ids: list[int], interval: float = 0.1):
        super().__init__(name="bench-writer", daemon=True)
        self.base, self.token, self.ids, self.interval = base, token, ids, interval
        self.status = dict.fromkeys(ids, "pending")
        self.phase = "baseline"
        self.results: dict[str, list[tuple[float, bool]]] = {}  # phase -> (seconds, succeeded)
        self.errors: list[str] = []
        self.touched: set[int] = set()  # tasks it changed
        self._stop_writing = threading.Event()

    def patch(self, task_id: int, status: str) -> None:
        req = urllib.request.Request(  # noqa: S310
            f"{self.base}/api/staff/tasks/{task_id}/",
            method="PATCH",
            data=json.dumps({"status": status}).encode(),
            headers={"content-type": "application/json", "authorization": f"Bearer {self.token}"},
        )
        t = time.perf_counter()
        ok = False
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
                ok = 200 <= resp.status < 300
                if ok:
                    self.status[task_id] = status
                    self.touched.add(task_id)
        except urllib.error.HTTPError as exc:
            self.errors.append(f"{self.phase}: PATCH {task_id} -> {exc.code} {exc.read()[:200]!r}")
        except Exception as exc:
            self.errors.append(f"{self.phase}: PATCH {task_id} -> {type(exc).__name__}: {exc}")
        self.results.setdefault(self.phase, []).append((time.perf_counter() - t, ok))

    def run(self) -> None:
        n = 0
        while not self._stop_writing.is_set():
            t = time.monotonic()
            task_id = self.ids[n % len(self.ids)]
            n += 1
            self.patch(task_id, "in-progress" if self.status[task_id] == "pending" else "pending")
            self._stop_writing.wait(max(0.0, self.interval - (time.monotonic() - t)))

    def finish(self) -> None:
        """Stop, then put every task it left in progress back to pending."""
        self._stop_writing.set()
        if self.is_alive():
            self.join()
        self.phase = "restore"
        for task_id, status in self.status.items():
            if status != "pending":
                self.patch(task_id, "pending")


# -- what the machine and the database do meanwhile -----------------------------------------------------------------


def _cpu(pid: int) -> float | None:
    """CPU seconds (user + system) of a process so far; None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / TICK


def _machine() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    total = sum(ticks[:8])
    return (total - ticks[3] - ticks[4]) / TICK, total / TICK


class Sampler(threading.Thread):
    """Every 50 ms: sessions of this database waiting on a lock, whether the shadow table exists, whether an index
    is being built, the live table's oid (it changes at the swap), and the CPU so far of the rebuild process and of
    this database's PostgreSQL sessions."""

    SQL = (
        "SELECT (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock'),"
        " (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'active'"
        " AND query ILIKE 'create%%index%%'),"
        " to_regclass('tasks_view')::oid, to_regclass('tasks_view__rebuild') IS NOT NULL,"
        " ARRAY(SELECT pid FROM pg_stat_activity WHERE datname = current_database())"
    )

    def __init__(self, conninfo: str):
        super().__init__(name="bench-sampler", daemon=True)
        self.conninfo = conninfo
        self.phase = "baseline"
        self.rebuild_pid: int | None = None
        self.rebuild_cpu = 0.0
        self.waits: dict[str, list[tuple[float, int]]] = {}  # phase -> (when, sessions waiting on a lock)
        self.marks: dict[str, float] = {}  # first time seen: shadow, index, swap
        self.oid: int | None = None  # the live table's before the rebuild
        self.backends: dict[int, tuple[float, float]] = {}  # PostgreSQL session -> CPU seconds when first, last seen
        self._halt = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            while not self._halt.is_set():
                now = time.monotonic()
                waiting, indexing, oid, shadow, pids = conn.execute(self.SQL).fetchone()
                for pid in pids:
                    cpu = _cpu(pid)
                    if cpu is not None:
                        self.backends[pid] = (self.backends.get(pid, (cpu, cpu))[0], cpu)
                if waiting:
                    self.waits.setdefault(self.phase, []).append((now, waiting))
                if self.phase == "rebuild":
                    if shadow:
                        self.marks.setdefault("shadow", now)
                    if indexing:
                        self.marks.setdefault("index", now)
                    if oid != self.oid:
                        self.marks.setdefault("swap", now)
                    if self.rebuild_pid is not None:
                        self.rebuild_cpu = _cpu(self.rebuild_pid) or self.rebuild_cpu
                elif self.phase == "baseline":
                    self.oid = oid
                self._halt.wait(0.05)

    def stop(self) -> None:
        self._halt.set()
        self.join()


@dataclass
class Usage:
    api: float
    worker: float
    rebuild: float
    postgres: float  # this database's sessions
    busy: float  # the whole machine
    total: float
    load: float  # the 1-minute load average at the end


def usage(api: subprocess.Popen, worker: subprocess.Popen, sampler: Sampler) -> Usage:
    busy, total = _machine()
    return Usage(
        _cpu(api.pid) or 0.0,
        _cpu(worker.pid) or 0.0,
        sampler.rebuild_cpu,
        sum(last - first for first, last in sampler.backends.values()),
        busy,
        total,
        os.getloadavg()[0],
    )


# -- set-up and checks ---------------------------------------------------------------------------------------------


def create_named_db(prefix: str | None) -> str:
    """foundation.create_db, or a database named with the given prefix (for servers shared with others)."""
    if not prefix:
        return create_db()
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,40}", prefix):
        raise SystemExit(f"--db-prefix {prefix!r}: lower-case letters, digits and _")
    name = f"{prefix}{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return name


def get_json(url: str, token: str) -> dict:
    req = urllib.request.Request(url, headers={"authorization": f"Bearer {token}"})  # noqa: S310
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
        return json.load(resp)


def first_page(base: str, token: str) -> tuple[int, list[int]]:
    page = get_json(base + LOADS["list"][0], token)
    return page["count"], [t["id"] for t in page["results"]]


def head(conn: psycopg.Connection, events: str) -> int:
    return conn.execute(f"SELECT coalesce(max(notification_id), 0) FROM {events}").fetchone()[0]


def settle(conn: psycopg.Connection, events: str, timeout: float = 60) -> None:
    """Wait until every projection has processed the whole log (`events`: the event table)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = conn.execute("SELECT name, position, error FROM projection_state").fetchall()
        if any(error for _, _, error in rows):
            raise SystemExit(f"projections failing: {[(n, e) for n, _, e in rows if e]}")
        if min(position for _, position, _ in rows) >= head(conn, events):
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"projections still behind after {timeout:.0f} s: {rows}")
        time.sleep(0.2)


def compare_tables(conn: psycopg.Connection, touched: set[int]) -> list[str]:
    """Differences between the rebuilt tasks_view and the copy taken before the load: none expected, but the
    updated_at of the tasks the writer changed."""
    columns = [
        r[0]
        for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'tasks_view'"
            " AND table_schema = current_schema()"
            " ORDER BY ordinal_position"
        )
    ]
    kept = ", ".join(c for c in columns if c != "updated_at")
    problems = []
    for a, b in (("tasks_view", "bench_tasks_before"), ("bench_tasks_before", "tasks_view")):
        (n,) = conn.execute(
            f"SELECT count(*) FROM (SELECT {kept} FROM {a} EXCEPT ALL SELECT {kept} FROM {b}) d"
        ).fetchone()
        if n:
            problems.append(f"{n} rows of {a} not in {b} (updated_at aside)")
    changed = {
        r[0]
        for r in conn.execute(
            "SELECT t.id FROM tasks_view t JOIN bench_tasks_before b USING (id) WHERE t.updated_at <> b.updated_at"
        )
    }
    if changed - touched:
        problems.append(f"{len(changed - touched)} tasks the writer never changed have a new updated_at")
    for table, (before,) in (
        ("task_checklist_items_view", conn.execute("SELECT count(*) FROM bench_items_before").fetchone()),
        ("task_photos_view", conn.execute("SELECT count(*) FROM bench_photos_before").fetchone()),
    ):
        (after,) = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        if after != before:
            problems.append(f"{table}: {after} rows, {before} before")
    return problems


# -- the run ---------------------------------------------------------------------------------------------------------


def run_windows(base, seconds, window, auth, running, until: threading.Event | None = None, shown=None) -> list[Window]:
    """Windows of `window` seconds: `seconds` worth, or (`until` given) until that event is set, each passed to
    `shown` as it ends."""
    windows: list[Window] = []
    if until is not None:
        while not until.is_set():
            windows.append(load_window(base, window, auth, running))
            if shown is not None:
                shown(windows[-1])
    else:
        for _ in range(max(1, round(seconds / window))):
            windows.append(load_window(base, window, auth, running))
    return windows


def report_phase(name: str, windows: list[Window], writer: Writer, sampler: Sampler, cpu: tuple[Usage, Usage]):
    rates = {key: total_rate(windows, key) for key in LOADS}
    failures = {key: sum(w.non2xx[key] for w in windows) for key in LOADS}
    sockets = {key: sum(w.socket[key] for w in windows) for key in LOADS}
    writes = writer.results.get(name, [])
    slowest = max((s for s, _ in writes), default=0.0)
    waits = sampler.waits.get(name, [])
    a, b = cpu
    wall = b.total - a.total  # CPU seconds the machine offered (cores x wall time)
    cores = os.cpu_count() or 1
    print(f"{name}: {len(windows)} windows, {sum(w.seconds['list'] for w in windows):.1f} s")
    for key, (path, conns) in LOADS.items():
        print(
            f"  {path:34} {rates[key]:7.0f} req/s  ({conns} conns)  max latency "
            f"{max(w.max_ms[key] for w in windows):6.0f} ms  non-2xx {failures[key]}  socket errors {sockets[key]}"
        )
    print(
        f"  status PATCH (every 100 ms)        {len(writes)} sent, {sum(not ok for _, ok in writes)} failed, "
        f"slowest {slowest * 1000:.0f} ms"
    )

    def busy(what: str) -> str:
        return f"{(getattr(b, what) - getattr(a, what)) * cores / wall:.2f}"

    print(
        f"  CPU, cores busy of {cores}: API {busy('api')}, worker {busy('worker')}, rebuild {busy('rebuild')}, "
        f"PostgreSQL sessions {busy('postgres')}, whole machine {busy('busy')} (load average {b.load:.1f})"
    )
    if waits:
        longest = stretch = 0.0  # seconds of consecutive samples (50 ms apart) with a session waiting
        for (t0, _), (t1, _) in itertools.pairwise(waits):
            stretch = stretch + t1 - t0 if t1 - t0 < 0.15 else 0.0
            longest = max(longest, stretch)
        print(
            f"  sessions waiting on a lock: up to {max(n for _, n in waits)} at once, in {len(waits)} samples of "
            f"50 ms; the longest stretch {longest + 0.05:.2f} s"
        )
    else:
        print("  sessions waiting on a lock: none seen")
    return rates, sum(failures.values()) + sum(sockets.values()) + sum(not ok for _, ok in writes)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=10, help="length of each baseline")
    parser.add_argument("--window", type=int, default=2, help="seconds per wrk window")
    parser.add_argument("--port", type=int, default=8830, help="the API's port")
    parser.add_argument("--keep", action="store_true", help="keep the database (its name is printed)")
    parser.add_argument("--db-prefix", default=os.environ.get("BENCH_DB_PREFIX"), help="database name prefix")
    parser.add_argument("--redis-prefix", default=os.environ.get("BENCH_REDIS_PREFIX"), help="Redis key prefix")
    opts = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")
    from cosmo.config import load_settings
    from cosmo.runtime import Runtime

    db = create_named_db(opts.db_prefix)
    env = {**env_for(db), "COSMO_ACCESS_TOKEN_TTL": "12h"}  # one token for the whole run, however long
    if opts.redis_prefix:
        env["COSMO_REDIS_PREFIX"] = f"{opts.redis_prefix}{db}:"
    base = f"http://127.0.0.1:{opts.port}"
    procs: list[subprocess.Popen] = []  # servers and the rebuild, stopped at the end
    running: list[subprocess.Popen] = []  # wrk processes under way
    writer = sampler = None
    fd, name = tempfile.mkstemp(prefix="bench-rebuild-", suffix=".log")
    os.close(fd)
    log = Path(name)  # the rebuild's output
    try:
        runtime = Runtime(load_settings(env))
        try:
            conninfo = runtime.settings.database.conninfo()
            events = runtime.app.recorder.events_table_name
            t = time.perf_counter()
            _, mine = seed(runtime, opts.tasks)
            print(f"database {db}: {opts.tasks} tasks seeded ({runtime.runner.head()} events) in ", end="")
            print(f"{time.perf_counter() - t:.0f} s", end="", flush=True)
            t = time.perf_counter()
            runtime.runner.run_once()
            print(f", projected in {time.perf_counter() - t:.0f} s; the cleaner has {len(mine)} pending tasks")
        finally:
            runtime.close()  # its connections, and the projections' advisory locks: the worker leads them from here
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute("VACUUM (ANALYZE)")
            conn.execute("CREATE TABLE bench_tasks_before AS SELECT * FROM tasks_view")
            conn.execute("CREATE TABLE bench_items_before AS SELECT * FROM task_checklist_items_view")
            conn.execute("CREATE TABLE bench_photos_before AS SELECT * FROM task_photos_view")

        # As in production: the API process serves, and a `cosmo worker` process runs the projections.
        cosmo = str(ROOT / ".venv" / "bin" / "cosmo")
        worker = subprocess.Popen([cosmo, "worker"], env=env, cwd=ROOT)
        procs.append(worker)
        api = serve(
            ["cosmo.api.app:create_app_from_env", "--factory"], {**env, "COSMO_SERVE_PROJECTIONS": "0"}, opts.port
        )
        procs.append(api)
        if api.poll() is not None or worker.poll() is not None:
            raise SystemExit("the API or the worker did not start")
        token = login(opts.port, "staff0")
        auth = f"Authorization: Bearer {token}"
        before = first_page(base, token)
        for path, _ in LOADS.values():
            wrk(base + path, 2, [auth])  # warm-up; stops the run on any non-2xx
        sampler = Sampler(conninfo)
        sampler.start()
        writer = Writer(base, token, mine)
        writer.start()

        cpu0 = usage(api, worker, sampler)
        baseline = run_windows(base, opts.seconds, opts.window, auth, running)
        cpu1 = usage(api, worker, sampler)

        with psycopg.connect(conninfo, autocommit=True) as conn:
            head_before = head(conn, events)
        writer.phase = sampler.phase = "rebuild"
        print(
            f"\nload: {', '.join(f'{p} x{c}' for p, c in LOADS.values())}, windows of {opts.window} s; a PATCH/100 ms"
        )
        base_rates, base_failed = report_phase("baseline", baseline, writer, sampler, (cpu0, cpu1))
        started = time.monotonic()
        with log.open("w") as out:
            rebuild = subprocess.Popen(
                [cosmo, "projections", "rebuild", "tasks"], env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
            )
        procs.append(rebuild)
        sampler.rebuild_pid = rebuild.pid
        exited = threading.Event()
        exit_at: list[float] = []

        def watch() -> None:
            rebuild.wait()
            exit_at.append(time.monotonic())
            exited.set()

        def show(w: Window) -> None:
            swap = sampler.marks.get("swap")
            mark = "  <- swap" if swap is not None and w.start <= swap < w.end else ""
            print(
                f"  {w.start - started:6.1f}-{w.end - started:6.1f}  list {w.rate('list'):6.0f} req/s "
                f"(max {w.max_ms['list']:5.0f} ms)  me {w.rate('me'):6.0f} req/s (max {w.max_ms['me']:5.0f} ms)  "
                f"failed {sum(w.non2xx.values()) + sum(w.socket.values())}{mark}",
                flush=True,
            )

        threading.Thread(target=watch, name="bench-rebuild-watch", daemon=True).start()
        print("rebuild: windows as they end (s from the rebuild's start):")
        during = run_windows(base, opts.seconds, opts.window, auth, running, until=exited, shown=show)
        cpu2 = usage(api, worker, sampler)
        writer.phase = sampler.phase = "after"
        during_rates, during_failed = report_phase("rebuild", during, writer, sampler, (cpu1, cpu2))
        after = run_windows(base, opts.seconds, opts.window, auth, running)
        cpu3 = usage(api, worker, sampler)
        after_rates, after_failed = report_phase("after", after, writer, sampler, (cpu2, cpu3))
        sampler.stop()
        writer.finish()
        with psycopg.connect(conninfo, autocommit=True) as conn:
            settle(conn, events)

        output = log.read_text()
        done = re.search(r"tasks: rebuilt up to event (\d+)", output)
        if rebuild.returncode != 0 or done is None:
            raise SystemExit(f"the rebuild failed (exit {rebuild.returncode}):\n{output[-3000:]}")
        replayed = int(done.group(1))
        took = exit_at[0] - started

        marks = {k: v - started for k, v in sampler.marks.items()}
        print(
            f"\nrebuild of tasks: {replayed} events (head {head_before} at its start) in {took:.1f} s, "
            f"{replayed / took:.0f} events/s, the process's start-up included"
        )
        if {"shadow", "index", "swap"} <= marks.keys():
            print(
                f"  start-up {marks['shadow']:.1f} s, replay {marks['index'] - marks['shadow']:.1f} s, indexes and "
                f"catch-up {marks['swap'] - marks['index']:.1f} s, swap committed at {marks['swap']:.1f} s "
                f"(sampled every 50 ms); rebuild process CPU {sampler.rebuild_cpu:.1f} s"
            )
        else:
            print(f"  phases seen by the sampler: {marks}")
        drift = abs(after_rates["list"] - base_rates["list"]) / max(base_rates["list"], after_rates["list"])
        if drift > 0.2:
            print(f"the two baselines differ by {drift:.0%}: this machine's speed drifted, and so may the ratios")
        for key, (path, _) in LOADS.items():
            mean = (base_rates[key] + after_rates[key]) / 2
            ratio = during_rates[key] / base_rates[key]
            print(
                f"{path:34} during/baseline {ratio:.2f}   during/mean of both baselines "
                f"{during_rates[key] / mean:.2f}   (goal >= 0.7)   {'met' if ratio >= 0.7 else 'MISSED'}"
            )
        print(
            f"failed requests: baseline {base_failed}, during the rebuild {during_failed} (goal 0), "
            f"after {after_failed}, restoring {sum(not ok for _, ok in writer.results.get('restore', []))}"
        )
        for line in writer.errors[:10]:
            print(f"  {line}")

        problems = []
        now = first_page(base, token)
        if now != before:
            problems.append(f"the cleaner's list: count {now[0]}, first page {now[1]}; before {before[0]}, {before[1]}")
        with psycopg.connect(conninfo, autocommit=True) as conn:
            problems += compare_tables(conn, writer.touched)
            (oid,) = conn.execute("SELECT 'tasks_view'::regclass::oid").fetchone()
        if oid == sampler.oid:
            problems.append("tasks_view is the same table as before: no swap happened")
        print(
            f"after the rebuild, writes stopped: the cleaner's list has {now[0]} pending tasks as before; tasks_view "
            f"matches its copy from before the load ({len(writer.touched)} changed tasks: updated_at only)"
            if not problems
            else "after the rebuild, writes stopped: MISMATCH\n  " + "\n  ".join(problems)
        )
    finally:
        try:
            if sampler is not None and sampler.is_alive():
                sampler.stop()
            if writer is not None and writer.is_alive():
                writer._stop_writing.set()
                writer.join()
            for proc in running + procs:
                if proc.poll() is None:
                    proc.terminate()  # a rebuild stopped half way leaves the live projection as it was
                proc.wait()
            log.unlink(missing_ok=True)
        finally:
            if opts.keep:
                print(f"kept database {db}")
            else:
                drop_db(db)


if __name__ == "__main__":
    sys.exit(main())
