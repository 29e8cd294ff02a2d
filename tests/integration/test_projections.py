"""Projection runner: exactly-once batches, rebuild with swap while writes continue, version bumps, and
read-your-writes across processes."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from litestar.testing import TestClient

from cosmo.api.app import create_app
from cosmo.cli import main
from cosmo.domain.actors import SYSTEM
from cosmo.projections import runner as runner_module
from cosmo.projections.users import UsersProjection
from cosmo.runtime import Runtime
from tests.conftest import Backend


def _users(rt: Runtime) -> list[tuple]:
    return [
        (r["id"], r["username"], r["role"], bool(r["is_active"]))
        for r in rt.db.fetchall("SELECT id, username, role, is_active FROM users_view ORDER BY id")
    ]


def _create(rt: Runtime, name: str) -> int:
    return rt.command(
        lambda: rt.commands.identity.create_user(
            SYSTEM, username=name, email="", password="Pass-word-1", role="staff", task_group="none"
        )
    )


def test_catch_up_is_exactly_once(runtime: Runtime) -> None:
    uid = _create(runtime, "one")
    runtime.command(lambda: runtime.commands.identity.change_access(SYSTEM, uid, {"role": "viewer"}))
    before = _users(runtime)
    assert before == [(uid, "one", "viewer", True)]
    # Running again processes nothing and changes nothing; the stored position is the log's head.
    assert runtime.runner.catch_up("users") == 0
    assert _users(runtime) == before
    status = {s["name"]: s for s in runtime.runner.status()}
    assert status["users"]["lag"] == 0 and status["users"]["position"] == runtime.runner.head()


def test_rebuild_matches_live_and_keeps_events_written_during_it(runtime: Runtime) -> None:
    ids = [_create(runtime, f"user{i}") for i in range(30)]
    runtime.command(lambda: runtime.commands.identity.change_access(SYSTEM, ids[3], {"is_active": False}))
    live = _users(runtime)
    written_during: list[int] = []

    def progress(position: int, total: int) -> None:
        if not written_during:  # a write that lands while the rebuild is replaying
            written_during.append(_create(runtime, "during"))

    runtime.runner.rebuild("users", progress)
    after = _users(runtime)
    assert after[:-1] == live
    assert after[-1][1] == "during" and len(after) == 31
    assert runtime.runner.catch_up("users") == 0


def _indexes(rt: Runtime, table: str) -> set[str]:
    if rt.db.is_postgres:
        rows = rt.db.fetchall("SELECT indexname AS name FROM pg_indexes WHERE tablename = %s", (table,))
    else:
        rows = rt.db.fetchall(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = %s AND sql IS NOT NULL", (table,)
        )
    return {r["name"] for r in rows}


def test_a_rebuild_replays_into_indexed_tables_and_swaps_their_indexes(runtime: Runtime) -> None:
    """Handlers find rows by indexed columns (a task by its uuid): the shadow has its indexes while it is
    replayed, and after the swap the live table has them under its own names (again after a second rebuild)."""
    _create(runtime, "one")
    users = next(p for p in runtime.projections if p.name == "users")
    wanted = {f"users_view_{ix.suffix}" for ix in users.tables[0].indexes}
    assert wanted and wanted <= _indexes(runtime, "users_view")
    for _ in range(2):
        seen: list[set[str]] = []
        runtime.runner.rebuild("users", lambda p, t, seen=seen: seen.append(_indexes(runtime, "users_view__rebuild")))
        *replaying, swapped = seen  # progress is told after each replayed batch, and once after the swap
        assert replaying and all({n.replace("__rebuild", "") for n in s} >= wanted for s in replaying), seen
        assert swapped == set()
        names = _indexes(runtime, "users_view")
        assert wanted <= names and not any("__rebuild" in n for n in names), names


class Interrupted(Exception):
    pass


def test_an_interrupted_rebuild_leaves_the_live_projection_serving(runtime: Runtime, monkeypatch) -> None:
    """Stopped half way through its replay, or inside its swap: readers keep the live tables, complete and current
    (new events still reach them), and the next rebuild starts over cleanly."""
    monkeypatch.setattr(runner_module, "BATCH", 10)  # several batches from a few users
    ids = [_create(runtime, f"user{i}") for i in range(30)]
    live = _users(runtime)

    def stop_half_way(position: int, total: int) -> None:
        if position >= total // 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        runtime.runner.rebuild("users", stop_half_way)
    assert runtime.db.fetchone("SELECT count(*) AS n FROM users_view__rebuild")["n"] > 0  # the half-built shadow
    assert _users(runtime) == live
    after = _create(runtime, "after")
    assert _users(runtime)[-1] == (after, "after", "staff", True)

    # Interrupted inside the swap, after the live table was dropped in its transaction: the drop is undone.
    original = runtime.runner._store_position

    def fail_at_swap(cur, name, position, version=None):
        if version is not None:
            raise Interrupted
        return original(cur, name, position, version)

    monkeypatch.setattr(runtime.runner, "_store_position", fail_at_swap)
    with pytest.raises(Interrupted):
        runtime.runner.rebuild("users")
    monkeypatch.setattr(runtime.runner, "_store_position", original)
    assert _users(runtime) == [*live, (after, "after", "staff", True)]

    assert runtime.runner.rebuild("users") == runtime.runner.head()
    assert [u[0] for u in _users(runtime)] == [*ids, after]
    assert runtime.runner.catch_up("users") == 0
    status = {s["name"]: s for s in runtime.runner.status()}["users"]
    assert status["error"] is None and status["lag"] == 0


def _users_built_by_version_1(backend: Backend, monkeypatch) -> None:
    """A store whose users projection version 1 built (one user, "kept"), and code that is now at version 2."""
    rt = Runtime(backend.settings())
    rt.start()
    _create(rt, "kept")
    rt.close()
    monkeypatch.setattr(UsersProjection, "version", 2)


def test_version_bump_rebuilds(backend: Backend, monkeypatch) -> None:
    _users_built_by_version_1(backend, monkeypatch)
    rt = Runtime(backend.settings())
    try:
        assert {s["name"]: s["stored_version"] for s in rt.runner.status()}["users"] == 1
        rt.runner.run_once()
        assert {s["name"]: s["stored_version"] for s in rt.runner.status()}["users"] == 2
        assert [u[1] for u in _users(rt)] == ["kept"]
    finally:
        rt.close()


def test_migrate_rebuilds_a_changed_projection_and_readiness_waits_for_it(backend: Backend, monkeypatch) -> None:
    _users_built_by_version_1(backend, monkeypatch)
    # An API process of the new version (serving beside a worker), started before the migration.
    api_runtime = Runtime(backend.settings())
    try:
        with TestClient(create_app(backend.settings(), runtime=api_runtime, run_projections=False)) as client:
            waiting = client.get("/api/health/ready/")
            assert waiting.status_code == 503
            assert waiting.json()["checks"]["projections"]["users"]["rebuilding"] is True
            done = CliRunner().invoke(main, ["migrate"], env=backend.env)
            assert done.exit_code == 0, done.output
            assert "users: rebuilt up to event" in done.output and "tasks: rebuilt" not in done.output
            ready = client.get("/api/health/ready/")
            assert "rebuilding" not in ready.json()["checks"]["projections"]["users"], ready.json()
        assert {s["name"]: s["stored_version"] for s in api_runtime.runner.status()}["users"] == 2
        assert [u[1] for u in _users(api_runtime)] == ["kept"]
    finally:
        api_runtime.close()


def test_read_your_writes_across_processes(backend: Backend) -> None:
    """A runtime that runs no projections itself (an API process beside `cosmo worker`) still sees its own
    writes before answering: it waits for the other process's runner."""
    worker = Runtime(backend.settings())
    worker.start(run_projections=True)
    api = Runtime(backend.settings())
    api.start(run_projections=False)
    try:
        if backend.name == "sqlite":
            # SQLite has no cross-process notifications; the embedded mode always runs projections in-process.
            api.close()
            api = Runtime(backend.settings())
            api.start(run_projections=True)
        for i in range(5):
            uid = _create(api, f"ryw{i}")
            assert api.db.fetchone("SELECT username FROM users_view WHERE id = %s", (uid,))["username"] == f"ryw{i}"
    finally:
        api.close()
        worker.close()


def test_many_processes_starting_at_once(backend: Backend) -> None:
    """Start-up creates the event store, support and projection tables; several processes doing it at the same
    moment (serve --workers N beside cosmo worker) must not collide."""
    from concurrent.futures import ThreadPoolExecutor

    def start(_: int) -> Runtime:
        return Runtime(backend.settings())

    with ThreadPoolExecutor(4) as pool:
        runtimes = list(pool.map(start, range(4)))
    try:
        assert all(len(rt.runner.status()) == len(rt.projections) for rt in runtimes)
    finally:
        for rt in runtimes:
            rt.close()


def test_async_waits_are_woken_by_posts_and_recover_a_lost_notice() -> None:
    """PositionBoard.wait_async: a post from another thread wakes the waiter; with no post at all (a lost
    NOTIFY), the waiter asks the database itself; and it gives up after its timeout."""
    import asyncio
    import threading
    import time

    from cosmo.projections.positions import PositionBoard

    stored = {"tasks": 0}
    board = PositionBoard(reload=lambda: (dict(stored), {}))

    async def scenario() -> tuple[bool, float, bool, bool]:
        threading.Timer(0.05, board.post, ("tasks", 5)).start()
        started = time.monotonic()
        woken = await board.wait_async(["tasks"], 5, timeout=2)
        took = time.monotonic() - started
        stored["tasks"] = 9  # reached in the database, never announced
        recovered = await board.wait_async(["tasks"], 9, timeout=2)
        gave_up = await board.wait_async(["tasks"], 10, timeout=0.3)
        return woken, took, recovered, gave_up

    woken, took, recovered, gave_up = asyncio.run(scenario())
    assert woken and took < 0.2  # by the post, not by the 0.25 s safety net
    assert recovered and not gave_up
