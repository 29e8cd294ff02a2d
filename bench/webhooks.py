"""Webhook delivery benchmark (PostgreSQL + Redis): how many deliveries a second reach healthy receivers, how soon
after the event while one receiver hangs past the timeout and another fails, and whether any delivery is lost when
the delivery worker is killed and restarted mid-run.

A fresh database is served as production runs it: one API process (port 18701, no projections, as `cosmo serve
--no-projections` runs it) and one `cosmo worker` (the projections and the webhook delivery worker), both with
COSMO_WEBHOOK_ALLOW_HOSTS=127.0.0.1. Ten receivers run in a separate process (one asyncio loop, ports 18702-18711,
HTTP/1.1 keep-alive): eight healthy ones answer 200 at once and check every signature with `standardwebhooks`, one
slow one answers after 20 s (past the deliverer's 15 s timeout, so each of its deliveries times out and retries),
one failing one answers 500 (--only-healthy leaves those two out). A superuser registers one webhook per receiver
for `task.created`.

Then --clients connections create tasks (`POST /api/tasks/`) on a steady schedule of --rate a second:
  --warmup s   not measured (their deliveries still count for losses),
  phase A      --seconds s: deliveries a second reaching the healthy receivers while it runs, and p50/p99
               event-to-delivery latency (receipt time minus the body's event `timestamp`) of its tasks' deliveries,
  phase B      --crash-after s more, then the worker is SIGKILLed; tasks are still created for --down s (the API
               answers 503 after its 2 s read-your-writes wait, but the tasks are stored); then a new `cosmo worker`
               starts and creating stops. The run waits (--drain s at most) until every healthy receiver has had
               every task created in the whole run (Task.Created events in the log).
Counted per healthy receiver, by `webhook-id`: deliveries expected (tasks x 8), received, distinct, lost (expected
minus distinct: the goal is zero) and duplicated (received minus distinct: at-least-once allows some around the
kill); the time from the restart to the first delivery (the new worker waits out the killed one's 15 s lease) and
to the backlog being drained. Then the webhook_deliveries rows by status for each kind of receiver, each process's
and the machine's CPU in phase A, and a last line: zero lost deliveries after the kill, and the healthy p99.

    .venv/bin/python bench/webhooks.py [--rate 50] [--seconds 20] [--warmup 2] [--crash-after 5] [--down 5]
                                       [--drain 60] [--clients 16] [--only-healthy]

Exits 1 when a delivery was lost. Needs PostgreSQL and Redis as bench/foundation.py. On a shared 2-core machine
the load, the receivers, both server processes and PostgreSQL compete for the same cores: compare figures within
a run, and mind the receivers' CPU (a receiver process near 100 % of a core measures itself; the line says so).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import psycopg
from chat import http, machine_busy, proc_cpu
from foundation import ROOT, create_db, drop_db, env_for, serve

PASSWORD = "Bench-pass-1"
ADMIN = "benchadmin"
API_PORT = 18701
RECEIVER_PORTS = tuple(range(18702, 18712))
HEALTHY = 8
SLOW_ANSWER = 20.0  # seconds the slow receiver takes: past the deliverer's 15 s timeout
SATURATED = 0.9  # of one core
COSMO = str(ROOT / ".venv" / "bin" / "cosmo")

_RESPONSES = {
    status: f"HTTP/1.1 {status} {reason}\r\ncontent-length: 0\r\n\r\n".encode()
    for status, reason in ((200, "OK"), (500, "Internal Server Error"))
}


# -- the receivers (run in their own process) ------------------------------------------------------------------------


@dataclass
class ReceiverLog:
    kind: str  # healthy, slow or failing
    # healthy: one row per request (webhook-id, task id, event timestamp, receipt time), times in epoch seconds
    rows: list[tuple[str, int, float, float]] = field(default_factory=list)
    requests: int = 0
    message_ids: set[str] = field(default_factory=set)  # slow and failing: what they were sent
    bad_signatures: int = 0
    errors: list[str] = field(default_factory=list)


def receivers_main(conn: Any, kinds: list[str]) -> None:
    try:
        import uvloop

        run = uvloop.run
    except ImportError:
        run = asyncio.run
    try:
        run(_receivers(conn, kinds))
    except BaseException as exc:  # report rather than hang the parent
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        raise


async def _receivers(conn: Any, kinds: list[str]) -> None:
    import msgspec
    from standardwebhooks import Webhook

    logs = [ReceiverLog(kind) for kind in kinds]
    verifiers: list[Any] = [None] * len(kinds)

    def receiver(index: int):
        log = logs[index]

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    headers = {}
                    for line in head.decode("latin-1").split("\r\n")[1:]:
                        name, _, value = line.partition(":")
                        if value:
                            headers[name.strip().lower()] = value.strip()
                    length = int(headers.get("content-length") or 0)
                    body = await reader.readexactly(length) if length else b""
                    received = time.time()
                    log.requests += 1
                    message_id = headers.get("webhook-id", "")
                    status = 200
                    if log.kind == "healthy":
                        try:
                            payload = verifiers[index].verify(body, headers)
                        except Exception as exc:
                            log.bad_signatures += 1
                            if len(log.errors) < 5:
                                log.errors.append(f"{type(exc).__name__}: {exc}")
                            payload = msgspec.json.decode(body)
                        event = datetime.fromisoformat(payload["timestamp"]).timestamp()
                        log.rows.append((message_id, payload["data"]["id"], event, received))
                    else:
                        log.message_ids.add(message_id)
                        if log.kind == "slow":
                            await asyncio.sleep(SLOW_ANSWER)
                        else:
                            status = 500
                    writer.write(_RESPONSES[status])
                    await writer.drain()
                    if headers.get("connection", "").lower() == "close":
                        break
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                pass  # the deliverer closed the connection (or gave up on the slow receiver)
            except asyncio.CancelledError:
                pass  # the receivers are stopping (the slow one may still be sleeping)
            finally:
                writer.close()

        return handle

    servers = [
        await asyncio.start_server(receiver(i), "127.0.0.1", RECEIVER_PORTS[i], backlog=512) for i in range(len(kinds))
    ]
    loop = asyncio.get_running_loop()
    conn.send(("ready", len(servers)))
    while True:
        kind, value = await loop.run_in_executor(None, conn.recv)
        if kind == "secrets":
            verifiers = [Webhook(secret) for secret in value]
            conn.send(("ok", None))
        elif kind == "counts":  # the distinct tasks each healthy receiver has had
            conn.send(("counts", [len({row[1] for row in log.rows}) for log in logs if log.kind == "healthy"]))
        elif kind == "logs":
            usage = resource.getrusage(resource.RUSAGE_SELF)
            conn.send(("logs", (logs, usage.ru_utime + usage.ru_stime)))
        elif kind == "stop":
            for server in servers:
                server.close()
            conn.send(("stopped", None))
            return


class Receivers:
    """The receivers' process, spoken to through a pipe."""

    def __init__(self, kinds: list[str]) -> None:
        ctx = mp.get_context("spawn")
        self._pipe, there = ctx.Pipe()
        self.process = ctx.Process(target=receivers_main, args=(there, kinds), daemon=True)
        self.process.start()
        self._expect(60)

    def ask(self, kind: str, value: Any = None, timeout: float = 60) -> Any:
        self._pipe.send((kind, value))
        return self._expect(timeout)

    def _expect(self, timeout: float) -> Any:
        if not self._pipe.poll(timeout):
            raise SystemExit(f"the receivers' process did not answer within {timeout:.0f} s")
        got, value = self._pipe.recv()
        if got == "failed":
            raise SystemExit(f"the receivers' process failed: {value}")
        return value

    def close(self) -> None:
        if self.process.is_alive():
            with contextlib.suppress(Exception, SystemExit):
                self.ask("stop", timeout=5)
            self.process.join(5)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)


# -- the load --------------------------------------------------------------------------------------------------------


@dataclass
class Load:
    posts: list[tuple[float, float, int]] = field(default_factory=list)  # (epoch sent, seconds taken, status; 0: error)
    task_ids: list[int] = field(default_factory=list)  # answered 201
    skipped: int = 0  # schedule slots dropped because every client was busy for over a second
    errors: list[str] = field(default_factory=list)


async def create_tasks(token: str, rate: float, clients: int, t0: float, stop: asyncio.Event, load: Load) -> None:
    """Tasks on a steady schedule (slot i at t0 + i/rate, monotonic), by `clients` connections, until `stop`."""
    next_slot = 0
    headers = {"authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    base = f"http://127.0.0.1:{API_PORT}"
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=60) as client:

        async def one() -> None:
            nonlocal next_slot
            while not stop.is_set():
                slot = next_slot
                next_slot += 1
                at = t0 + slot / rate
                now = time.monotonic()
                if at > now:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), at - now)
                    if stop.is_set():
                        return
                elif now - at > 1.0:
                    load.skipped += 1
                    continue
                sent, began = time.time(), time.monotonic()
                try:
                    r = await client.post("/api/tasks/", json={"title": f"bench {slot}", "task_type": "cleaning"})
                except httpx.HTTPError as exc:
                    load.posts.append((sent, time.monotonic() - began, 0))
                    if len(load.errors) < 5:
                        load.errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                load.posts.append((sent, time.monotonic() - began, r.status_code))
                if r.status_code == 201:
                    load.task_ids.append(r.json()["id"])
                elif r.status_code != 503 and len(load.errors) < 5:
                    load.errors.append(f"HTTP {r.status_code}: {r.text[:200]}")

        await asyncio.gather(*(one() for _ in range(clients)))


# -- the figures -----------------------------------------------------------------------------------------------------


def quantile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def first_receipts(log: ReceiverLog) -> dict[int, tuple[float, float]]:
    """task id -> (event time, first receipt)."""
    first: dict[int, tuple[float, float]] = {}
    for _, task_id, event, received in log.rows:
        if task_id not in first or received < first[task_id][1]:
            first[task_id] = (event, received)
    return first


def _repeats(log: ReceiverLog) -> list[float]:
    """When each receipt of a webhook-id after its first arrived."""
    seen: set[str] = set()
    again = []
    for message_id, _, _, received in sorted(log.rows, key=lambda row: row[3]):
        if message_id in seen:
            again.append(received)
        seen.add(message_id)
    return again


def tasks_created(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT count(*) FROM cosmo_events WHERE topic LIKE %s", ("%:Task.Created",)).fetchone()
    return int(row[0])


def all_tasks(conn: psycopg.Connection, created: int) -> dict[int, float]:
    """task id -> creation time (epoch), from tasks_view once the restarted worker has projected them all."""
    deadline = time.monotonic() + 20
    while True:
        rows = conn.execute("SELECT id, extract(epoch FROM created_at) FROM tasks_view").fetchall()
        if len(rows) >= created or time.monotonic() > deadline:
            return {int(task_id): float(at) for task_id, at in rows}
        time.sleep(0.2)


def start_worker(env: dict[str, str], log: Any) -> subprocess.Popen:
    # The worker logs at INFO: into a file, whose warnings and errors are shown at the end.
    return subprocess.Popen([COSMO, "worker"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=50, help="tasks created a second")
    parser.add_argument("--seconds", type=float, default=20, help="phase A: steady load, measured")
    parser.add_argument("--warmup", type=float, default=2, help="load before phase A, not in its figures")
    parser.add_argument("--crash-after", type=float, default=5, help="phase B: load before the worker is killed")
    parser.add_argument("--down", type=float, default=5, help="load while no worker runs, before the restart")
    parser.add_argument("--drain", type=float, default=60, help="seconds at most to wait for the backlog")
    parser.add_argument("--clients", type=int, default=16, help="concurrent connections creating tasks")
    parser.add_argument("--only-healthy", action="store_true", help="no slow or failing receiver")
    opts = parser.parse_args()
    kinds = ["healthy"] * HEALTHY + ([] if opts.only_healthy else ["slow", "failing"])
    started = time.perf_counter()
    db = create_db()
    env = {
        **env_for(db),
        "COSMO_WEBHOOK_ALLOW_HOSTS": "127.0.0.1",
        "COSMO_PUBLIC_URL": f"http://127.0.0.1:{API_PORT}",
    }
    children: list[subprocess.Popen] = []
    receivers: Receivers | None = None
    closing: list[psycopg.Connection] = []
    worker_logs = [tempfile.TemporaryFile(mode="w+"), tempfile.TemporaryFile(mode="w+")]  # noqa: SIM115
    lost = 0
    try:
        subprocess.run([COSMO, "migrate"], env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        subprocess.run(
            [COSMO, "createsuperuser", "--username", ADMIN, "--password", PASSWORD],
            env=env,
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,  # its runtime logs each projection it leads
        )
        receivers = Receivers(kinds)
        worker = start_worker(env, worker_logs[0])
        children.append(worker)
        api_env = {**env, "COSMO_SERVE_PROJECTIONS": "0"}  # what `cosmo serve --no-projections` sets
        api = serve(["cosmo.api.app:create_app_from_env", "--factory"], api_env, API_PORT)
        children.append(api)
        for proc in children:
            if proc.poll() is not None:
                raise SystemExit(f"a server exited at start ({proc.args}): see its output above")
        token = http(API_PORT, "POST", "/api/token/", {"username": ADMIN, "password": PASSWORD})["access"]
        hooks = [
            http(
                API_PORT,
                "POST",
                "/api/webhooks/",
                {
                    "url": f"http://127.0.0.1:{RECEIVER_PORTS[i]}/hook",
                    "event_types": ["task.created"],
                    "description": k,
                },
                token,
            )
            for i, k in enumerate(kinds)
        ]
        receivers.ask("secrets", [h["secret"] for h in hooks])
        kind_of = {h["id"]: k for h, k in zip(hooks, kinds, strict=True)}
        # One connection for the counts, opened before the load: PostgreSQL is shared.
        counter = psycopg.connect(env["COSMO_DATABASE_URL"], autocommit=True)
        closing.append(counter)
        others = "" if opts.only_healthy else f", 1 slow answering after {SLOW_ANSWER:g} s, 1 failing with 500"
        print(
            f"{len(kinds)} receivers registered ({HEALTHY} healthy{others});"
            f" setup {time.perf_counter() - started:.1f} s"
        )

        # -- the load: warm-up, phase A, phase B (kill, restart) ------------------------------------------------
        load = Load()
        marks: dict[str, float] = {}  # epoch seconds
        cpu: dict[str, float] = {}

        async def drive() -> None:
            stop = asyncio.Event()
            t0 = time.monotonic() + 0.2
            generator = asyncio.create_task(create_tasks(token, opts.rate, opts.clients, t0, stop, load))
            marks["start"] = time.time() + 0.2
            await asyncio.sleep(0.2 + opts.warmup)
            marks["a"] = time.time()
            pids = {"api": api.pid, "worker": worker.pid, "receivers": receivers.process.pid}
            cpu0 = {name: proc_cpu(pid) for name, pid in pids.items()}
            cpu0["load"] = _self_cpu()
            busy0 = machine_busy()
            await asyncio.sleep(opts.seconds)
            marks["b"] = time.time()
            busy1 = machine_busy()
            for name, pid in pids.items():
                cpu[name] = (proc_cpu(pid) - cpu0[name]) / opts.seconds
            cpu["load"] = (_self_cpu() - cpu0["load"]) / opts.seconds
            cpu["machine"] = (busy1[0] - busy0[0]) / max(busy1[1] - busy0[1], 1)
            await asyncio.sleep(opts.crash_after)
            worker.send_signal(signal.SIGKILL)
            marks["kill"] = time.time()
            worker.wait()
            await asyncio.sleep(opts.down)
            children.append(start_worker(env, worker_logs[1]))
            marks["restart"] = time.time()
            stop.set()
            await generator
            marks["stopped"] = time.time()

        asyncio.run(drive())
        created = tasks_created(counter)
        deadline = time.monotonic() + opts.drain
        while time.monotonic() < deadline and min(receivers.ask("counts")) < created:
            time.sleep(0.5)
        marks["waited"] = time.time()
        created = tasks_created(counter)  # the last requests' tasks (answered 503 or not) are in the log by now
        if not created or not load.task_ids:
            raise SystemExit(f"no tasks were created: {Counter(p[2] for p in load.posts)}, errors {load.errors[:3]}")
        tasks = all_tasks(counter, created)
        logs, receivers_cpu = receivers.ask("logs")
        healthy = [log for log in logs if log.kind == "healthy"]

        # -- figures ---------------------------------------------------------------------------------------------
        def at(epoch: float) -> str:
            return f"+{epoch - marks['start']:.1f} s"

        firsts = [first_receipts(log) for log in healthy]
        in_a = {t for t, when in tasks.items() if marks["a"] <= when < marks["b"]}
        a_firsts = [(e, r) for first in firsts for t, (e, r) in first.items() if t in in_a]
        latencies = sorted((r - e) * 1000 for e, r in a_firsts)
        a_received = sum(1 for first in firsts for e, r in first.values() if marks["a"] <= r < marks["b"])
        a_span = max((r for _, r in a_firsts), default=marks["b"]) - marks["a"]
        a_posts = sorted(s * 1000 for sent, s, _ in load.posts if marks["a"] <= sent < marks["b"])

        statuses = Counter("error" if p[2] == 0 else p[2] for p in load.posts)
        skipped = f", {load.skipped} slots skipped (every client busy, as while no worker runs)" if load.skipped else ""
        print(
            f"load: {len(load.posts)} POST /api/tasks/ from {at(marks['start'])} to {at(marks['stopped'])} at "
            f"{opts.rate:g}/s offered by {opts.clients} clients ({', '.join(f'{k}: {v}' for k, v in statuses.items())})"
            f"{skipped}; {created} Task.Created events in the log"
        )
        if load.errors:
            print(f"  load errors, first: {load.errors[:3]}")
        print(
            f"phase A, {at(marks['a'])} to {at(marks['b'])}: {len(in_a)} tasks"
            + ("" if opts.only_healthy else ", the slow receiver timing out and the failing one failing throughout")
        )
        print(
            f"  POST /api/tasks/ latency               p50 {quantile(a_posts, 0.5):7.1f} ms"
            f"   p99 {quantile(a_posts, 0.99):7.1f} ms"
        )
        print(
            f"  deliveries received by the {HEALTHY} healthy   {a_received:8}"
            f"   {a_received / opts.seconds:8.1f} deliveries/s"
            f"   (offered {opts.rate * HEALTHY:g}/s)"
        )
        print(
            f"  its tasks' healthy deliveries          {len(a_firsts):8} of {len(in_a) * HEALTHY}"
            f"   (the last {a_span:.1f} s after phase A began)"
        )
        print(
            f"  event-to-delivery latency, healthy     p50 {quantile(latencies, 0.5):7.1f} ms   "
            f"p99 {quantile(latencies, 0.99):7.1f} ms   max {quantile(latencies, 1.0):7.1f} ms"
            + ("" if len(a_firsts) == len(in_a) * HEALTHY else "   (of those that arrived)")
        )
        shown = ", ".join(f"{name} {100 * cpu[name]:.0f} %" for name in ("api", "worker", "receivers", "load"))
        print(
            f"  CPU (of one core)                      {shown};   machine {100 * cpu['machine']:.0f} % busy"
            f" ({os.cpu_count()} cores)"
            + ("   SATURATED: the receivers measure themselves" if cpu["receivers"] > SATURATED else "")
        )

        expected = len(tasks) * HEALTHY
        received = sum(len(log.rows) for log in healthy)
        distinct_messages = sum(len({row[0] for row in log.rows}) for log in healthy)
        distinct = [len(first.keys() & tasks.keys()) for first in firsts]
        lost = expected - sum(distinct)
        missing = sorted(when for first in firsts for t, when in tasks.items() if t not in first)
        answered_missing = sum(len(set(load.task_ids) - first.keys()) for first in firsts)
        after_restart = sorted(r for first in firsts for _, r in first.values() if r >= marks["restart"])
        backlog = [r for first in firsts for e, r in first.values() if e < marks["restart"] and r >= marks["kill"]]
        print(
            f"phase B: worker SIGKILLed at {at(marks['kill'])}, restarted at {at(marks['restart'])}, creating stopped "
            f"then; waited for the backlog until {at(marks['waited'])}"
        )
        print(f"  tasks created in the whole run         {len(tasks):8}")
        print(f"  deliveries expected (tasks x {HEALTHY})        {expected:8}")
        print(f"  received by the healthy receivers      {received:8}   ({distinct_messages} distinct webhook-ids)")
        print(f"  distinct tasks per healthy receiver    {' '.join(str(d) for d in distinct)}")
        print(
            f"  lost (not received in time)            {lost:8}   ({100 * lost / max(expected, 1):.2f} %)"
            + (
                f"; their tasks created {at(missing[0])} to {at(missing[-1])}, {answered_missing} answered 201"
                if missing
                else ""
            )
        )
        repeats = [r for log in healthy for r in _repeats(log)]
        early = sum(1 for r in repeats if r < marks["kill"])
        print(
            f"  duplicated deliveries                  {len(repeats):8}   (at-least-once; {early} of them arrived "
            f"before the kill, {len(repeats) - early} after)"
        )
        bad = sum(log.bad_signatures for log in healthy)
        first_bad = [e for log in healthy for e in log.errors][:3]
        print(f"  bad signatures                         {bad:8}" + (f"   first: {first_bad}" if bad else ""))
        if after_restart:
            print(f"  restart to first delivery              {after_restart[0] - marks['restart']:8.1f} s")
        else:
            print("  restart to first delivery                   none")
        if not lost and backlog:
            drained = max(backlog) - marks["restart"]
            rate = f", {len(after_restart) / (max(backlog) - after_restart[0]):.0f}/s" if len(after_restart) > 1 else ""
            print(
                f"  restart to backlog drained             {drained:8.1f} s   ({len(after_restart)} deliveries after "
                f"the restart{rate})"
            )
        elif lost:
            print(f"  backlog NOT drained {marks['waited'] - marks['restart']:.0f} s after the restart (--drain)")
        for log in logs:
            if log.kind != "healthy":
                print(f"  {log.kind} receiver: {log.requests} requests, {len(log.message_ids)} distinct messages")

        rows = counter.execute("SELECT webhook_id, status, count(*) FROM webhook_deliveries GROUP BY 1, 2").fetchall()
        by_kind: dict[str, Counter] = {k: Counter() for k in dict.fromkeys(kinds)}
        for webhook_id, status, n in rows:
            by_kind[kind_of.get(webhook_id, "?")][status] += n
        print("webhook_deliveries by status:")
        for k, found in by_kind.items():
            print(f"  {k:8} {', '.join(f'{status} {n}' for status, n in sorted(found.items()))}")

        p99 = quantile(latencies, 0.99)
        print(
            f"goal: zero lost deliveries after the kill: {'HOLDS' if lost == 0 else f'FAILS ({lost} lost)'};"
            f"   healthy p99 event-to-delivery {p99:.0f} ms (p50 {quantile(latencies, 0.5):.0f} ms) in phase A at "
            f"{a_received / opts.seconds:.0f} deliveries/s"
            + ("" if opts.only_healthy else ", one receiver timing out and one failing")
        )
        print(f"total {time.perf_counter() - started:.0f} s (receivers' process CPU {receivers_cpu:.1f} s)")
    finally:
        try:
            for proc in children:
                with contextlib.suppress(OSError):
                    proc.terminate()
            for proc in children:
                try:
                    proc.wait(25)  # a worker stopping waits for its deliveries in flight (15 s at most)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if receivers is not None:
                receivers.close()
            for conn in closing:
                conn.close()
            for n, log in enumerate(worker_logs):
                log.seek(0)
                trouble = [line.rstrip() for line in log if not line.startswith("INFO ")]
                log.close()
                if trouble:
                    print(f"cosmo worker {n + 1} logged {len(trouble)} other lines:", *trouble[:20], sep="\n  ")
        finally:
            drop_db(db)
    return 1 if lost else 0


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    sys.exit(main())
