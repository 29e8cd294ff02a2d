"""Chat fan-out benchmark (PostgreSQL + Redis): how many messages a second reach every socket of a busy group room,
how fast, and does any get lost or come twice, against a bare broadcast that persists nothing.

A fresh database is seeded with 210 staff users and one group room holding all of them, and served as production
runs it: two API processes (ports 18601 and 18602, no projections) and one `cosmo worker` running the projections,
pushes reaching both API processes through Redis. Beside them the baseline, bench/bare_chat.py (a bare Litestar
socket broadcasting through Litestar's ChannelsPlugin on Redis pub/sub), also runs in two processes (18611, 18612).

Each run opens 200 listener sockets (half on each process) and 10 sender sockets (distinct users, split across the
processes), waits for `connection_established` on all, then for --seconds the senders each send `chat_message` at
--rate a second (a steady schedule, staggered between senders; each message has its own client_message_id) while
every listener notes the moment each message reaches it. After sending stops it waits (--drain at most) for
stragglers. The clients run in --clients separate processes (one asyncio loop each), apart from this one.

    .venv/bin/python bench/chat.py [--seconds 10] [--rate 8] [--drain 5] [--clients 1] [--no-deflate]
                                   [--max-rate [--max-steps 5]]

Prints, for Cosmo then for the bare broadcast: messages sent, messages persisted (Cosmo: the room's messages in
chat_messages_view, and the stats endpoint's message_count), deliveries made against those expected (sent x 200
listeners), deliveries lost and duplicated, messages a second persisted and delivered to all listeners, p50/p99
send-to-delivery latency, the client processes' CPU (a client near 100 % of a core measures itself: the figures
are then a floor, and the line says so), each server process's CPU and the whole machine's; then the ratio of the
delivered-to-all rates, Cosmo / bare, and whether Cosmo's p50 is under 15 ms. --max-rate then raises the rate per
sender step by step (each sender spreading its messages over enough sockets to stay under the socket limit of 10 a
second; those sockets listen too) until deliveries get lost or p99 passes a second, on both.

Needs PostgreSQL and Redis as bench/foundation.py. On a shared 2-core machine the clients, both servers' processes,
PostgreSQL and Redis compete for the same cores: compare figures within one run, not across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing as mp
import os
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any

import msgspec
import psycopg
from foundation import REDIS, ROOT, create_db, drop_db, env_for, serve

PASSWORD = "Bench-pass-1"
COSMO_PORTS = (18601, 18602)
BARE_PORTS = (18611, 18612)
LISTENERS, SENDERS = 200, 10
SOCKET_LIMIT = 10.0  # client messages a second one Cosmo socket may send
PER_SOCKET = 8.0  # the rate one sender socket is kept at in --max-rate
CONNECT_AT_ONCE = 20
SATURATED = 0.9  # of one core: a client process this busy measures itself as much as the server


# -- the client (runs in its own processes) --------------------------------------------------------------------------


class _Message(msgspec.Struct):
    client_message_id: str | None = None


class _Push(msgspec.Struct):
    type: str = ""
    message: _Message | None = None


_push = msgspec.json.Decoder(_Push).decode


@dataclass
class ClientPlan:
    listeners: list[str]  # socket URLs
    senders: list[tuple[int, str]]  # (sender index among all senders' sockets, socket URL)
    all_senders: int  # sockets sending in the whole run (for staggering)
    rate: float  # messages a second per sender socket
    seconds: float
    drain: float
    deflate: bool


@dataclass
class ClientResult:
    sends: dict[str, int] = field(default_factory=dict)  # client_message_id -> monotonic ns at send
    receipts: list[list[tuple[str, int]]] = field(default_factory=list)  # per listener: (id, ns) first receipts
    duplicates: int = 0
    echoes: int = 0  # senders' own sockets receiving chat_message (not counted as deliveries)
    errors: list[str] = field(default_factory=list)  # `error` pushes and other trouble
    late_sends: int = 0  # sends taken off the schedule because the client's loop lagged
    cpu: float = 0.0  # CPU seconds of this process while sending and draining
    peak: float = 0.0  # its busiest second, as a share of one core
    wall: float = 0.0


def client_main(conn: Any, plan: ClientPlan) -> None:
    try:
        asyncio.run(_client(conn, plan))
    except BaseException as exc:  # report rather than hang the parent
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        raise


async def _client(conn: Any, plan: ClientPlan) -> None:
    from websockets.asyncio.client import connect

    result = ClientResult(receipts=[[] for _ in plan.listeners])
    gate = asyncio.Semaphore(CONNECT_AT_ONCE)
    compression = "deflate" if plan.deflate else None

    async def open_socket(url: str) -> Any:
        async with gate:
            ws = await connect(url, compression=compression, max_size=2**20, open_timeout=60, ping_interval=None)
            first = json.loads(await asyncio.wait_for(ws.recv(), 60))
            if first.get("type") != "connection_established":
                raise RuntimeError(f"{url}: expected connection_established, got {first}")
            return ws

    sockets = await asyncio.gather(*(open_socket(url) for url in plan.listeners))
    senders = await asyncio.gather(*(open_socket(url) for _, url in plan.senders))

    seen: list[dict[str, int]] = [{} for _ in plan.listeners]

    async def listen(i: int, ws: Any) -> None:
        mine = seen[i]
        try:
            async for raw in ws:
                now = time.monotonic_ns()
                push = _push(raw)
                if push.type == "chat_message" and push.message is not None:
                    cid = push.message.client_message_id
                    if cid in mine:
                        result.duplicates += 1
                    else:
                        mine[cid] = now
                elif push.type == "error":
                    result.errors.append(f"listener {i}: {raw[:200]}")
        except Exception as exc:  # a closed socket: note it, the count shows what it missed
            result.errors.append(f"listener {i}: {type(exc).__name__}: {exc}")

    async def echo(i: int, ws: Any) -> None:
        try:
            async for raw in ws:
                push = _push(raw)
                if push.type == "chat_message":
                    result.echoes += 1
                elif push.type == "error":
                    result.errors.append(f"sender {i}: {raw[:200]}")
        except Exception as exc:
            result.errors.append(f"sender {i}: {type(exc).__name__}: {exc}")

    readers = [asyncio.create_task(listen(i, ws)) for i, ws in enumerate(sockets)]
    readers += [asyncio.create_task(echo(i, ws)) for (i, _), ws in zip(plan.senders, senders, strict=True)]
    conn.send(("ready", len(sockets) + len(senders)))
    loop = asyncio.get_running_loop()
    kind, t0 = await loop.run_in_executor(None, conn.recv)
    assert kind == "go"

    period = int(1e9 / plan.rate)
    end = t0 + int(plan.seconds * 1e9)

    async def send(index: int, ws: Any) -> None:
        at = t0 + period * index // max(plan.all_senders, 1)
        while at < end:
            now = time.monotonic_ns()
            if at > now:
                await asyncio.sleep((at - now) / 1e9)
            elif now - at > period:  # more than a period behind: skip ahead rather than burst into the limit
                result.late_sends += (now - at) // period
                at += (now - at) // period * period
                continue
            cid = str(uuid.uuid4())
            sent = time.monotonic_ns()
            result.sends[cid] = sent
            await ws.send(f'{{"type":"chat_message","message":"bench {sent}","client_message_id":"{cid}"}}')
            at += period

    wait = (t0 - time.monotonic_ns()) / 1e9
    if wait > 0:
        await asyncio.sleep(wait)
    cpu0 = _cpu()
    wall0 = time.monotonic()
    samples: list[tuple[float, float]] = [(wall0, cpu0)]

    async def sample() -> None:
        while True:
            await asyncio.sleep(0.2)
            samples.append((time.monotonic(), _cpu()))

    sampler = asyncio.create_task(sample())
    await asyncio.gather(*(send(i, ws) for (i, _), ws in zip(plan.senders, senders, strict=True)))
    conn.send(("sent", len(result.sends)))
    kind, expected = await loop.run_in_executor(None, conn.recv)
    assert kind == "expect"
    deadline = time.monotonic() + plan.drain
    while time.monotonic() < deadline and any(len(s) < expected for s in seen):
        await asyncio.sleep(0.05)
    result.cpu = _cpu() - cpu0
    result.wall = time.monotonic() - wall0
    sampler.cancel()
    samples.append((time.monotonic(), _cpu()))
    result.peak = max(
        ((c1 - c0) / (t1 - t0_) for i, (t0_, c0) in enumerate(samples) for t1, c1 in samples[i + 1 :] if t1 - t0_ >= 1),
        default=result.cpu / result.wall if result.wall else 0.0,
    )
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    await asyncio.gather(*(ws.close() for ws in [*sockets, *senders]), return_exceptions=True)
    result.receipts = [list(s.items()) for s in seen]
    conn.send(("done", result))


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- the servers -----------------------------------------------------------------------------------------------------


def seed(env: dict[str, str], users: int) -> list[int]:
    """Staff users straight through the application, projected once; returns their ids."""
    from cosmo.config import load_settings
    from cosmo.domain.actors import SYSTEM
    from cosmo.runtime import Runtime

    runtime = Runtime(load_settings(env))
    try:

        def create(name: str) -> int:
            return runtime.call(
                lambda: runtime.commands.identity.create_user(
                    SYSTEM, username=name, email="", password=PASSWORD, role="staff", task_group="general"
                )
            ).result

        ids = [create(f"chat{i:03}") for i in range(users)]
        runtime.runner.run_once()
        with psycopg.connect(runtime.settings.database.conninfo(), autocommit=True) as conn:
            conn.execute("VACUUM (ANALYZE)")
    finally:
        runtime.close()
    return ids


def http(port: int, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers=headers,
    )
    with urllib.request.urlopen(req, timeout=60) as response:  # noqa: S310
        return json.load(response)


def proc_cpu(pid: int) -> float:
    """CPU seconds a process has used (utime + stime)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all cores so far."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


# -- a run -----------------------------------------------------------------------------------------------------------


@dataclass
class Figures:
    sent: int
    persisted: int | None
    stats_count: int | None
    delivered: int
    expected: int
    lost: int
    duplicated: int
    complete: int  # messages every listener got
    persisted_rate: float | None
    complete_rate: float
    p50: float | None
    p99: float | None
    worst: float | None
    client_cpu: list[float]  # per client process, share of one core
    client_peak: list[float]  # per client process, its busiest second
    servers_cpu: dict[str, float]  # per server process, share of one core
    machine: float  # share of all cores busy
    late_sends: int
    echoes: int
    errors: list[str]
    wall: float


def run(
    urls: list[str],
    sender_urls: list[str],
    opts: argparse.Namespace,
    rate: float,
    servers: dict[str, int],
    persisted: Any = None,
) -> Figures:
    """One measurement: the listener sockets `urls`, the sender sockets `sender_urls`, each at `rate` a second.
    `persisted(t_wall_start, sent)` -> (count, stats count, seconds from the first send to the last persisted)."""
    ctx = mp.get_context("spawn")
    n = max(1, opts.clients)
    plans = [
        ClientPlan(
            listeners=urls[c::n],
            senders=[(i, u) for i, u in enumerate(sender_urls) if i % n == c],
            all_senders=len(sender_urls),
            rate=rate,
            seconds=opts.seconds,
            drain=opts.drain,
            deflate=not opts.no_deflate,
        )
        for c in range(n)
    ]
    pipes, procs = [], []
    try:
        for plan in plans:
            here, there = ctx.Pipe()
            proc = ctx.Process(target=client_main, args=(there, plan), daemon=True)
            proc.start()
            pipes.append(here)
            procs.append(proc)
        for pipe in pipes:
            _expect(pipe, "ready", 180)
        t0 = time.monotonic_ns() + 300_000_000
        wall_t0 = time.time() + 0.3
        cpu0 = {name: proc_cpu(pid) for name, pid in servers.items()}
        busy0 = machine_busy()
        for pipe in pipes:
            pipe.send(("go", t0))
        sent = sum(_expect(pipe, "sent", opts.seconds + 120) for pipe in pipes)
        for pipe in pipes:
            pipe.send(("expect", sent))
        results: list[ClientResult] = [_expect(pipe, "done", opts.drain + 120) for pipe in pipes]
        busy1 = machine_busy()
        wall = time.monotonic_ns() - t0
        servers_cpu = {name: (proc_cpu(pid) - cpu0[name]) / (wall / 1e9) for name, pid in servers.items()}
    finally:
        for proc in procs:
            proc.join(10)
            if proc.is_alive():
                proc.terminate()
    sends: dict[str, int] = {}
    for r in results:
        sends.update(r.sends)
    latencies: list[float] = []
    complete_at: dict[str, list[int]] = {}
    delivered = duplicated = 0
    for r in results:
        duplicated += r.duplicates
        for receipts in r.receipts:
            for cid, at in receipts:
                start = sends.get(cid)
                if start is None:
                    continue  # not this run's (cannot happen: fresh room or channel per run), ignored
                delivered += 1
                latencies.append((at - start) / 1e6)
                complete_at.setdefault(cid, []).append(at)
    listeners = len(urls)
    complete = [max(ats) for ats in complete_at.values() if len(ats) == listeners]
    span = (max(complete) - t0) / 1e9 if complete else 0.0
    latencies.sort()
    stored = persisted(wall_t0, sent) if persisted else None
    return Figures(
        sent=sent,
        persisted=stored[0] if stored else None,
        stats_count=stored[1] if stored else None,
        delivered=delivered,
        expected=sent * listeners,
        lost=sent * listeners - delivered,
        duplicated=duplicated,
        complete=len(complete),
        persisted_rate=stored[0] / stored[2] if stored and stored[2] > 0 else None,
        complete_rate=len(complete) / span if span > 0 else 0.0,
        p50=_quantile(latencies, 0.50),
        p99=_quantile(latencies, 0.99),
        worst=latencies[-1] if latencies else None,
        client_cpu=[r.cpu / r.wall if r.wall else 0.0 for r in results],
        client_peak=[r.peak for r in results],
        servers_cpu=servers_cpu,
        machine=(busy1[0] - busy0[0]) / max(busy1[1] - busy0[1], 1),
        late_sends=sum(r.late_sends for r in results),
        echoes=sum(r.echoes for r in results),
        errors=[e for r in results for e in r.errors],
        wall=wall / 1e9,
    )


def _expect(pipe: Any, kind: str, timeout: float) -> Any:
    if not pipe.poll(timeout):
        raise SystemExit(f"a client process did not report {kind!r} within {timeout:.0f} s")
    got, value = pipe.recv()
    if got != kind:
        raise SystemExit(f"a client process failed: {value}")
    return value


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return values[min(len(values) - 1, int(q * len(values)))]


def _client_cpu(f: Figures) -> str:
    pairs = zip(f.client_cpu, f.client_peak, strict=True)
    shown = ", ".join(f"{100 * c:.0f} % (busiest second {100 * p:.0f} %)" for c, p in pairs)
    return f"{shown} of a core"


def report(name: str, f: Figures, rate: float, senders: int, listeners: int) -> None:
    def ms(v: float | None) -> str:
        return "   n/a" if v is None else f"{v:7.1f}"

    print(
        f"{name}: {senders} sender sockets x {rate:g}/s, {listeners} listeners, {f.wall:.1f} s from first send to end"
    )
    print(
        f"  messages sent                {f.sent:8}"
        + (f"   ({f.late_sends} sends skipped: the client lagged)" if f.late_sends else "")
    )
    if f.persisted is not None:
        print(f"  messages persisted           {f.persisted:8}   (room stats message_count: {f.stats_count})")
    print(f"  deliveries                   {f.delivered:8} of {f.expected} expected")
    print(f"  lost deliveries              {f.lost:8}   ({100 * f.lost / max(f.expected, 1):.2f} %)")
    print(f"  duplicated deliveries        {f.duplicated:8}")
    print(f"  messages delivered to all    {f.complete:8}   of {f.sent}")
    if f.persisted_rate is not None:
        print(f"  persisted                    {f.persisted_rate:8.1f} msg/s")
    print(
        f"  delivered to all listeners   {f.complete_rate:8.1f} msg/s"
        f"   ({f.complete_rate * listeners:.0f} deliveries/s)"
    )
    print(f"  send-to-delivery latency     p50 {ms(f.p50)} ms   p99 {ms(f.p99)} ms   max {ms(f.worst)} ms")
    print(
        f"  client process CPU           {_client_cpu(f)}"
        + (
            "   SATURATED: the client is (part of) the bottleneck; figures are a floor"
            if any(c > SATURATED for c in f.client_peak)
            else ""
        )
    )
    servers = ", ".join(f"{name} {100 * c:.0f} %" for name, c in f.servers_cpu.items())
    print(f"  server CPU (of a core)       {servers};   whole machine {100 * f.machine:.0f} % busy")
    if f.errors:
        print(f"  client-side errors           {len(f.errors)}, first: {f.errors[:3]}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10, help="sending time per run")
    parser.add_argument("--rate", type=float, default=8, help="messages a second per sender (under 10)")
    parser.add_argument("--drain", type=float, default=5, help="seconds at most to wait for stragglers")
    parser.add_argument("--clients", type=int, default=1, help="client processes sharing the sockets")
    parser.add_argument("--no-deflate", action="store_true", help="refuse permessage-deflate (browsers offer it)")
    parser.add_argument("--max-rate", action="store_true", help="then raise the rate until deliveries fail")
    parser.add_argument("--max-steps", type=int, default=5, help="rate doublings in --max-rate")
    opts = parser.parse_args()
    if opts.rate >= SOCKET_LIMIT:
        raise SystemExit(f"--rate must stay under {SOCKET_LIMIT:g}: a socket's further messages are dropped")
    started = time.perf_counter()
    db = create_db()
    env = env_for(db)
    children: list[subprocess.Popen] = []
    closing: list[psycopg.Connection] = []
    worker_log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (closed in the finally below)
    try:
        t = time.perf_counter()
        users = seed(env, LISTENERS + SENDERS)
        print(f"seeded {len(users)} users in {time.perf_counter() - t:.1f} s")
        cosmo_env = {**env, "COSMO_SERVE_PROJECTIONS": "0"}
        # The worker logs at INFO: into a file, whose warnings and errors are shown at the end.
        worker = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "cosmo"), "worker"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=worker_log,
        )
        children.append(worker)
        apis = [serve(["cosmo.api.app:create_app_from_env", "--factory"], cosmo_env, port) for port in COSMO_PORTS]
        children += apis
        prefix = f"cosmo-bench-bare-chat:{uuid.uuid4().hex}"
        bare_env = {**env, "BENCH_REDIS": REDIS, "BENCH_BARE_PREFIX": prefix, "PYTHONPATH": str(ROOT / "bench")}
        bares = [serve(["bare_chat:app"], bare_env, port, ready_path="/bare/ready/") for port in BARE_PORTS]
        children += bares
        for proc in children:
            if proc.poll() is not None:
                raise SystemExit(f"a server exited at start ({proc.args}): see its output above")

        t = time.perf_counter()
        tokens = [
            http(COSMO_PORTS[i % 2], "POST", "/api/token/", {"username": f"chat{i:03}", "password": PASSWORD})["access"]
            for i in range(len(users))
        ]
        print(f"logged {len(tokens)} users in in {time.perf_counter() - t:.1f} s")
        creator = tokens[0]
        room = http(
            COSMO_PORTS[0],
            "POST",
            "/api/chat/rooms/",
            {"room_type": "group", "name": "Bench", "participant_ids": users[1:]},
            creator,
        )
        room_id = room["id"]
        print(f"room {room_id}: {room['participant_count']} participants")
        cosmo_procs = {"api 18601": apis[0].pid, "api 18602": apis[1].pid, "worker": worker.pid}
        bare_procs = {"bare 18611": bares[0].pid, "bare 18612": bares[1].pid}
        # One connection for the counts, opened before the load: PostgreSQL is shared, and a new connection
        # after a run may find max_connections taken.
        counter = psycopg.connect(env["COSMO_DATABASE_URL"], autocommit=True)
        closing.append(counter)

        def stored() -> tuple[int, float | None]:
            n, last = counter.execute(
                "SELECT count(*), extract(epoch FROM max(created_at)) FROM chat_messages_view"
                " WHERE room_id = %s AND client_message_id IS NOT NULL",
                (room_id,),
            ).fetchone()
            return n, None if last is None else float(last)

        def persisted_since(base: int):
            def count(wall_t0: float, sent: int) -> tuple[int, int, float]:
                deadline = time.monotonic() + 5  # the projection may still be catching up
                n, last = stored()
                while n - base < sent and time.monotonic() < deadline:
                    time.sleep(0.2)
                    n, last = stored()
                stats = http(COSMO_PORTS[0], "GET", f"/api/chat/rooms/{room_id}/stats/", token=creator)
                return n - base, stats["message_count"] - base_stats[0], (last - wall_t0) if last else 0.0

            return count

        def cosmo_urls(rate_sockets: int) -> tuple[list[str], list[str]]:
            listen = [
                f"ws://127.0.0.1:{COSMO_PORTS[i % 2]}/ws/chat/{room_id}/?token={tokens[SENDERS + i]}"
                for i in range(LISTENERS)
            ]
            send = [
                f"ws://127.0.0.1:{COSMO_PORTS[(s + k) % 2]}/ws/chat/{room_id}/?token={tokens[s]}"
                for k in range(rate_sockets)
                for s in range(SENDERS)
            ]
            return listen, send

        def bare_urls(rate_sockets: int, bare_room: str) -> tuple[list[str], list[str]]:
            listen = [
                f"ws://127.0.0.1:{BARE_PORTS[i % 2]}/ws/bare/{bare_room}/?user={users[SENDERS + i]}"
                for i in range(LISTENERS)
            ]
            send = [
                f"ws://127.0.0.1:{BARE_PORTS[(s + k) % 2]}/ws/bare/{bare_room}/?user={users[s]}"
                for k in range(rate_sockets)
                for s in range(SENDERS)
            ]
            return listen, send

        base_stats = [0]

        def cosmo_run(rate: float, sockets_per_sender: int) -> Figures:
            base = stored()[0]
            base_stats[0] = http(COSMO_PORTS[0], "GET", f"/api/chat/rooms/{room_id}/stats/", token=creator)[
                "message_count"
            ]
            listen, send = cosmo_urls(sockets_per_sender)
            return run(listen, send, opts, rate / sockets_per_sender, cosmo_procs, persisted_since(base))

        def bare_run(rate: float, sockets_per_sender: int) -> Figures:
            listen, send = bare_urls(sockets_per_sender, uuid.uuid4().hex)
            return run(listen, send, opts, rate / sockets_per_sender, bare_procs)

        t = time.perf_counter()
        ours = cosmo_run(opts.rate, 1)
        report("Cosmo (2 API processes + worker)", ours, opts.rate, SENDERS, LISTENERS)
        print(f"  (run took {time.perf_counter() - t:.0f} s with connecting)")
        t = time.perf_counter()
        bare = bare_run(opts.rate, 1)
        report("bare broadcast (2 processes, Redis channels)", bare, opts.rate, SENDERS, LISTENERS)
        print(f"  (run took {time.perf_counter() - t:.0f} s with connecting)")
        ratio = ours.complete_rate / bare.complete_rate if bare.complete_rate else float("nan")
        print(
            f"delivered-to-all rate, Cosmo / bare: {ratio:.2f}   (at a fixed offered {opts.rate * SENDERS:g} msg/s: "
            "1.00 means both kept up)"
        )
        met = ours.p50 is not None and ours.p50 < 15
        print(
            f"Cosmo p50 send-to-delivery {ours.p50 if ours.p50 is not None else float('nan'):.1f} ms: "
            f"{'under' if met else 'NOT under'} 15 ms   (bare p50 {bare.p50 or float('nan'):.1f} ms)"
        )

        if opts.max_rate:
            print("--max-rate: rate per sender doubling until deliveries are lost or p99 passes 1 s")
            for label, one in (("Cosmo", cosmo_run), ("bare", bare_run)):
                rate = opts.rate
                for _ in range(opts.max_steps):
                    rate *= 2
                    k = math.ceil(rate / PER_SOCKET)
                    f = one(rate, k)
                    print(
                        f"  {label:5} {rate:6g}/sender ({k} sockets each, {SENDERS * rate:g} msg/s offered): "
                        f"sent {f.sent}, delivered-to-all {f.complete_rate:.1f} msg/s, lost {f.lost}, dup "
                        f"{f.duplicated}, p50 {f.p50 or float('nan'):.1f} ms, p99 {f.p99 or float('nan'):.1f} ms, "
                        f"client CPU {_client_cpu(f)}"
                        + (f", persisted {f.persisted}" if f.persisted is not None else "")
                        + (f", {f.late_sends} sends skipped (client lagged)" if f.late_sends else "")
                        + (" SATURATED client" if any(c > SATURATED for c in f.client_peak) else "")
                    )
                    shown = ", ".join(f"{name} {100 * c:.0f} %" for name, c in f.servers_cpu.items())
                    print(f"        server CPU {shown}; machine {100 * f.machine:.0f} % busy")
                    if f.lost > f.expected * 0.01 or (f.p99 or 0) > 1000:
                        break
        print(f"total {time.perf_counter() - started:.0f} s")
    finally:
        try:
            for proc in children:
                with contextlib.suppress(OSError):
                    proc.terminate()
            for proc in children:
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            worker_log.seek(0)
            trouble = [line.rstrip() for line in worker_log if not line.startswith("INFO ")]
            worker_log.close()
            for conn in closing:
                conn.close()
            if trouble:
                print(f"cosmo worker logged {len(trouble)} other lines:", *trouble[:40], sep="\n  ")
        finally:
            drop_db(db)


if __name__ == "__main__":
    sys.exit(main())
