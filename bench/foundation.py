"""Foundation benchmark (PostgreSQL + Redis). Prints figures; never part of the test run.

    make bench            # or: .venv/bin/python bench/foundation.py [--events 100000] [--seconds 10]

Needs PostgreSQL and Redis as in shared/services.md, and wrk (apt-get install wrk) for the HTTP figure.
Figures vary 20-30 % between runs on shared machines: compare the ratios printed by one run.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
ADMIN = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/14")
# Databases are created and dropped under this prefix (on a shared server each user of it takes their own).
DB_PREFIX = os.environ.get("BENCH_DB_PREFIX", "cosmo_bench_")
SECRET = "bench-secret-key-long-enough-for-hs256-signing"


def create_db() -> str:
    name = f"{DB_PREFIX}{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return name


def drop_db(name: str) -> None:
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def env_for(db: str) -> dict[str, str]:
    base = ADMIN.rsplit("/", 1)[0]
    return {
        **os.environ,
        "COSMO_DATABASE_URL": f"{base}/{db}",
        "COSMO_REDIS_URL": REDIS,
        "COSMO_SECRET_KEY": SECRET,
        "COSMO_PASSWORD_COST": "low",
        "COSMO_THROTTLE_USER": "1000000000/hour",
        "COSMO_THROTTLE_AUTH": "1000000/minute",
    }


def append_figures(runtime, n: int) -> tuple[float, float, float]:
    from cosmo.domain.identity import UniqueKey

    store = runtime.store  # the event store every command saves through

    async def singles() -> None:
        for i in range(n):
            await store.save(UniqueKey(scope="bench", value=f"single-{i}", owner_id=i))

    async def batches() -> None:
        for b in range(n // 100):
            await store.save(*[UniqueKey(scope="bench", value=f"batch-{b}-{i}", owner_id=i) for i in range(100)])

    t = time.perf_counter()
    runtime.call(singles)
    single = n / (time.perf_counter() - t)
    t = time.perf_counter()
    runtime.call(batches)
    batched = (n // 100) * 100 / (time.perf_counter() - t)
    conninfo = runtime.settings.database.conninfo()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE raw_events (originator_id uuid NOT NULL, originator_version bigint NOT NULL, "
            "topic text, state bytea, notification_id bigserial, PRIMARY KEY (originator_id, originator_version))"
        )
        payload = b'{"scope":"bench","value":"single-0","owner_id":0,"timestamp":"2026-01-01T00:00:00+00:00"}'
        t = time.perf_counter()
        for _ in range(n):
            with conn.transaction():
                conn.execute(
                    "INSERT INTO raw_events (originator_id, originator_version, topic, state) VALUES (%s, 1, %s, %s)",
                    (uuid.uuid4(), "cosmo.domain.identity:UniqueKey.Claimed", payload),
                )
        raw = n / (time.perf_counter() - t)
    return single, batched, raw


def concurrent_figures(runtime, n: int, writers: int) -> tuple[float, float]:
    """Many concurrent commands saving one event each (what an API under load does) against as many raw
    connections each doing single-row INSERT+COMMIT. The commands share the table lock; grouped commits carry them."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from cosmo.domain.identity import UniqueKey

    store = runtime.store
    per = n // writers

    async def app_writers() -> None:
        async def one(w: int) -> None:
            for i in range(per):
                await store.save(UniqueKey(scope="bench", value=f"conc-{w}-{i}", owner_id=i))

        await asyncio.gather(*(one(w) for w in range(writers)))

    def app_writer(w: int) -> None:  # the writers run as coroutines on the runtime's loop
        if w == 0:
            runtime.call(app_writers)

    conninfo = runtime.settings.database.conninfo()
    payload = b'{"scope":"bench","value":"conc-0","owner_id":0,"timestamp":"2026-01-01T00:00:00+00:00"}'

    def raw_writer(w: int) -> None:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            for _ in range(per):
                with conn.transaction():
                    conn.execute(
                        "INSERT INTO raw_events (originator_id, originator_version, topic, state) "
                        "VALUES (%s, 1, %s, %s)",
                        (uuid.uuid4(), "cosmo.domain.identity:UniqueKey.Claimed", payload),
                    )

    rates = []
    for fn in (app_writer, raw_writer):
        with ThreadPoolExecutor(writers if fn is raw_writer else 1) as pool:
            t = time.perf_counter()
            list(pool.map(fn, range(writers if fn is raw_writer else 1)))
            rates.append(per * writers / (time.perf_counter() - t))
    return rates[0], rates[1]


def rebuild_figure(runtime, events: int) -> float:
    from cosmo.domain.identity import User

    have = runtime.runner.head()
    next_id = 10_000
    while have < events:
        users = [
            User(
                user_id=next_id + i,
                username=f"bench{next_id + i}",
                email="",
                password_hash="x",
                first_name="B",
                last_name="U",
                role="staff",
                task_group="none",
                invite_code_id=None,
                actor_id=None,
            )
            for i in range(1000)
        ]
        runtime.app.save(*users)
        next_id += 1000
        have += 1000
    total = runtime.runner.head()
    t = time.perf_counter()
    runtime.runner.rebuild("users")
    return total / (time.perf_counter() - t)


def wrk(url: str, seconds: int, headers: list[str], script: str | None = None, env: dict | None = None) -> float:
    args = ["wrk", "-t2", "-c32", f"-d{seconds}s", *[arg for h in headers for arg in ("-H", h)]]
    args += ["-s", script, url] if script else [url]
    out = subprocess.run(args, capture_output=True, text=True, check=True, env=env).stdout
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise SystemExit(f"{url}: {non2xx.group(1)} error responses; fix before trusting figures\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def serve(args: list[str], env: dict[str, str], port: int, ready_path: str | None = None) -> subprocess.Popen:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            *args,
            "--port",
            str(port),
            "--workers",
            "1",
            "--no-access-log",
            "--log-level",
            "warning",
            "--loop",
            "uvloop",
            "--http",
            "httptools",
        ],
        env=env,
        cwd=ROOT,
    )

    paths = [ready_path] if ready_path else ["/api/health/", "/bare/me/"]
    for _ in range(150):
        if any(_answers(f"http://127.0.0.1:{port}{path}") for path in paths):
            break
        time.sleep(0.2)
    return proc


def _answers(url: str) -> bool:
    import urllib.request

    try:
        urllib.request.urlopen(url, timeout=1)  # noqa: S310
    except Exception:
        return False
    return True


def http_figures(env: dict[str, str], seconds: int) -> tuple[float, float]:
    import json
    import urllib.request

    cosmo = serve(["cosmo.api.app:create_app_from_env", "--factory"], env, 8811)
    try:
        req = urllib.request.Request(
            "http://127.0.0.1:8811/api/token/",
            method="POST",
            data=json.dumps({"username": "benchadmin", "password": "Bench-pass-1"}).encode(),
            headers={"content-type": "application/json"},
        )
        token = json.load(urllib.request.urlopen(req))["access"]  # noqa: S310
        wrk("http://127.0.0.1:8811/api/users/me/", 2, [f"Authorization: Bearer {token}"])  # warm-up
        ours = wrk("http://127.0.0.1:8811/api/users/me/", seconds, [f"Authorization: Bearer {token}"])
    finally:
        cosmo.terminate()
        cosmo.wait()
    from cosmo.config import load_settings

    bare_env = {**env, "BENCH_CONNINFO": load_settings(env).database.conninfo(), "PYTHONPATH": str(ROOT / "bench")}
    bare = serve(["bare_app:app"], bare_env, 8812)
    try:
        wrk("http://127.0.0.1:8812/bare/me/", 2, [])
        baseline = wrk("http://127.0.0.1:8812/bare/me/", seconds, [])
    finally:
        bare.terminate()
        bare.wait()
    return ours, baseline


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000, help="events in the log for the rebuild figure")
    parser.add_argument("--appends", type=int, default=3000, help="saves for the append figure")
    parser.add_argument("--writers", type=int, default=8, help="concurrent writers for the grouped-append figure")
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per endpoint")
    opts = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed for the HTTP figure: apt-get install wrk")
    db = create_db()
    env = env_for(db)
    os.environ.update(env)
    from cosmo.config import load_settings
    from cosmo.domain.actors import SYSTEM
    from cosmo.runtime import Runtime

    try:
        runtime = Runtime(load_settings(env))
        runtime.call(
            lambda: runtime.commands.identity.create_user(
                SYSTEM, username="benchadmin", email="", password="Bench-pass-1", role="superuser", task_group="none"
            )
        )
        runtime.runner.run_once()
        single, batched, raw = append_figures(runtime, opts.appends)
        print(f"append, 1 event per save      {single:10.0f} events/s")
        print(f"append, 100 events per save   {batched:10.0f} events/s")
        print(f"raw INSERT+COMMIT, 1 row      {raw:10.0f} rows/s")
        print(f"  ratio single/raw {single / raw:.2f}   batched/raw {batched / raw:.2f}   (goal >= 0.5)")
        conc, conc_raw = concurrent_figures(runtime, opts.appends * 2, opts.writers)
        print(f"append, {opts.writers} writers, 1 event/save {conc:7.0f} events/s")
        print(f"raw, {opts.writers} connections, 1 row     {conc_raw:7.0f} rows/s")
        print(f"  ratio {conc / conc_raw:.2f}")
        rate = rebuild_figure(runtime, opts.events)
        print(f"rebuild users over {runtime.runner.head()} events {rate:10.0f} events/s   (goal >= 20000)")
        runtime.close()
        ours, baseline = http_figures(env, opts.seconds)
        print(f"GET /api/users/me/            {ours:10.0f} req/s")
        print(f"bare Litestar single-row read {baseline:10.0f} req/s")
        print(f"  ratio {ours / baseline:.2f}   (goal >= 0.5)")
    finally:
        drop_db(db)


if __name__ == "__main__":
    main()
