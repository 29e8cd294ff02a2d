"""Wires one process's parts together: storage, the event store, commands, projections and their runner."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

from cosmo.auth.tokens import TokenService
from cosmo.commands.base import Outcome
from cosmo.commands.bookings import BookingCommands
from cosmo.commands.chat import ChatCommands
from cosmo.commands.checklists import ChecklistCommands
from cosmo.commands.identity import IdentityCommands
from cosmo.commands.imports import ImportCommands, ImportPolicy
from cosmo.commands.inbox import InboxCommands
from cosmo.commands.photos import PhotoCommands
from cosmo.commands.properties import PropertyCommands
from cosmo.commands.tasks import TaskCommands
from cosmo.commands.turnover import TurnoverCommands, TurnoverPolicy
from cosmo.commands.webhooks import WebhookCommands
from cosmo.config import Settings
from cosmo.domain.actors import SYSTEM
from cosmo.live import pushes
from cosmo.live.broker import Broker
from cosmo.live.egress import EgressGuard
from cosmo.live.webhook_bodies import Bodies
from cosmo.live.webhooks import Deliverer
from cosmo.media.store import MediaStore
from cosmo.projections import (
    audit,
    bookings,
    chat,
    checklists,
    counts,
    imports,
    invites,
    notifications,
    properties,
    tasks,
    users,
    webhooks,
)
from cosmo.projections.audit.chain import AuditChain, audit_key
from cosmo.projections.audit.queries import AuditQueries
from cosmo.projections.base import Projection
from cosmo.projections.bookings import BookingQueries
from cosmo.projections.chat.queries import ChatQueries
from cosmo.projections.checklists import TemplateQueries
from cosmo.projections.counts import CountQueries
from cosmo.projections.dashboard import DashboardQueries
from cosmo.projections.imports import ImportQueries
from cosmo.projections.invites import InviteQueries
from cosmo.projections.listener import Listener
from cosmo.projections.notifications import NotificationQueries
from cosmo.projections.positions import PositionBoard
from cosmo.projections.properties import PropertyQueries
from cosmo.projections.runner import GATHER, ProjectionRunner
from cosmo.projections.tasks import TaskQueries
from cosmo.projections.users import UserQueries
from cosmo.projections.webhooks.outbox import Outbox
from cosmo.projections.webhooks.queries import WebhookQueries
from cosmo.storage.db import AsyncDatabase, Database
from cosmo.storage.event_store import EventStore, PostgresEventStore, SQLiteEventStore
from cosmo.storage.ids import IdAllocator
from cosmo.storage.library import CosmoApp, events_channel, library_env
from cosmo.storage.migrate import migrate

log = logging.getLogger(__name__)
T = TypeVar("T")


class ReadModelsBehind(Exception):
    """A write is stored, but the projections did not reach it within the read-your-writes timeout."""


# The collector's first generation runs every 700 allocations by default. A process that keeps tens of thousands of
# objects alive (the aggregate cache, derived ids) and allocates in bursts (a batch of events, an import chunk)
# then spends much of its time walking what survives: an import of 40,000 rows ran at 800 rows/s with the
# defaults and 1,100 with these. Cycles are still collected, a little later.
GC_THRESHOLDS = (50_000, 20, 10)


def tune_gc() -> None:
    gc.set_threshold(*GC_THRESHOLDS)
    gc.freeze()  # what exists once the process is set up (modules, functions) is never garbage: stop walking it


def all_projections(seal_key: bytes) -> list[Projection]:
    modules = (
        users,
        invites,
        properties,
        checklists,
        tasks,
        counts,
        notifications,
        bookings,
        imports,
        chat,
        webhooks,
        audit,
    )
    return [*(cls() for module in modules for cls in module.ALL), AuditChain(seal_key)]


@dataclass(frozen=True)
class CommandFamilies:
    """The command side: each aggregate family's commands."""

    identity: IdentityCommands
    properties: PropertyCommands
    checklists: ChecklistCommands
    tasks: TaskCommands
    photos: PhotoCommands
    inbox: InboxCommands
    bookings: BookingCommands
    imports: ImportCommands
    chat: ChatCommands
    webhooks: WebhookCommands


@dataclass(frozen=True)
class Queries:
    """The read side: each read model's queries."""

    users: UserQueries
    invites: InviteQueries
    properties: PropertyQueries
    templates: TemplateQueries
    tasks: TaskQueries
    counts: CountQueries
    notifications: NotificationQueries
    dashboard: DashboardQueries
    bookings: BookingQueries
    imports: ImportQueries
    chat: ChatQueries
    webhooks: WebhookQueries
    audit: AuditQueries


class Runtime:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.db = Database(settings.database)
        with self.db.schema_lock():
            migrate(self.db)
            self.app = CosmoApp(env=library_env(settings))
            self.projections = all_projections(audit_key(settings.audit_key or settings.secret_key))
            self.board = PositionBoard(reload=self._positions)
            self.broker = Broker(settings.redis_url, settings.redis_prefix)
            self.runner = ProjectionRunner(self.app, self.db, self.projections, self.board, self.publish_effects)
            self.runner.ensure()
        # Loop-bound (PostgreSQL's async pools): opened by `open()` on the loop that will use them.
        self.adb = AsyncDatabase(self.db)
        self.store: EventStore = (
            PostgresEventStore(self.app, settings.database.conninfo())
            if self.db.is_postgres
            else SQLiteEventStore(self.app)
        )
        ids = IdAllocator(self.adb)
        self.media = MediaStore(settings.media_root, settings.secret_key, int(settings.media_url_ttl.total_seconds()))
        chat_read = ChatQueries(self.adb, self.media_url)
        self.egress = EgressGuard(settings.webhook_allow_hosts)
        self.commands = CommandFamilies(
            identity=IdentityCommands(self.store, ids, settings.password_cost),
            properties=PropertyCommands(self.store, ids),
            checklists=ChecklistCommands(self.store, ids),
            tasks=TaskCommands(self.store, ids),
            photos=PhotoCommands(self.store, ids, self.media),
            inbox=InboxCommands(self.store, ids),
            bookings=BookingCommands(self.store, ids),
            imports=ImportCommands(self.store, ids, self.media, lambda: self.queries.properties.ids_by_name()),
            chat=ChatCommands(self.store, ids, self.media, chat_read),
            webhooks=WebhookCommands(self.store, ids, settings.webhook_allow_hosts, self.egress.check),
        )
        counts = CountQueries(self.adb)
        tasks = TaskQueries(self.adb, self.media_url, counts)
        notifications = NotificationQueries(self.adb)
        bookings_read = BookingQueries(self.adb)
        self.queries = Queries(
            users=UserQueries(self.adb),
            invites=InviteQueries(self.adb),
            properties=PropertyQueries(self.adb, bookings_read),
            templates=TemplateQueries(self.adb),
            tasks=tasks,
            counts=counts,
            notifications=notifications,
            dashboard=DashboardQueries(self.adb, counts, tasks, notifications),
            bookings=bookings_read,
            imports=ImportQueries(self.adb),
            chat=chat_read,
            webhooks=WebhookQueries(self.adb),
            audit=AuditQueries(self.adb),
        )
        self.turnover = TurnoverPolicy(self.app, self.db, TurnoverCommands(self.store, ids))
        self.imports = ImportPolicy(self.app, self.db, self.commands.imports)
        self._policies: list[Future[None]] = []
        self.deliverer = Deliverer(Outbox(self.adb), Bodies(self.app), self.egress, self.disable_webhook, self.board)
        self.tokens = TokenService(settings.secret_key, settings.access_token_ttl, settings.refresh_token_ttl, self.db)
        self.board.refresh()
        self._listener: Listener | None = None
        self._running = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._own_loop: threading.Thread | None = None

    def media_url(self, name: str) -> str:
        """A stored file's absolute URL, signed with an expiry."""
        return f"{self.settings.public_url}/media/{name}?{self.media.signed_query(name)}"

    def _positions(self) -> tuple[dict[str, int], dict[str, int]]:
        return self.runner.positions()

    @property
    def projection_names(self) -> list[str]:
        return [p.name for p in self.projections]

    def start(self, run_projections: bool = True, run_policies: bool = True, serving: bool = False) -> None:
        """Start background work. `run_projections=False` (API processes beside `cosmo worker`): this process only
        listens for progress; it never runs projections (or policies, or webhook delivery) itself.
        `run_policies=False`: neither policies nor webhook delivery run here (the CLI's import answers the
        policies' events itself; a one-command CLI run needs neither). `serving`: this process also answers
        requests (projection batches then gather under load, see ProjectionRunner._run)."""
        if self._running:
            return
        self._running = True
        tune_gc()
        if self.db.is_postgres:
            self._listener = Listener(
                self.settings.database.conninfo(), events_channel(self.app), self.runner, self.board
            )
            self._listener.start()
        if run_projections:
            # SQLite has no notifications between processes: poll for other processes' writes.
            self.runner.start(poll_interval=1.0 if self.db.is_postgres else 0.25, gather=GATHER if serving else 0.0)
            # The policies answer events with commands: they run beside the projections, on the loop commands use.
            if not run_policies:
                return
            if self._loop is None:
                self._start_own_loop()
            assert self._loop is not None
            for policy in (self.turnover, self.imports):
                self._policies.append(asyncio.run_coroutine_threadsafe(policy.run_forever(), self._loop))
            self._policies.append(asyncio.run_coroutine_threadsafe(self.deliverer.run_forever(), self._loop))

    async def disable_webhook(self, webhook_id: int, reason: str) -> None:
        """The delivery worker's: the receiver is gone, or kept failing."""
        await self.commands.webhooks.disable(SYSTEM, webhook_id, reason)

    def publish_effects(self, effects: list[tuple[str, Any]]) -> None:
        """What projections announced after a batch, as live pushes (see live/pushes.py)."""
        self.broker.publish(pushes.messages(effects, self.media_url))

    def _stuck(self, position: int) -> list[str]:
        """Failing projections that would have shown this write (all failing ones when its topics are unknown)."""
        topics = getattr(position, "topics", None)
        stuck = self.board.stuck(self.projection_names, position)
        return [n for n in stuck if topics is None or self.runner.projections[n].topics & topics]

    def settle(self, position: int) -> None:
        """Block until every projection has processed `position` (read-your-writes). A projection stopped at an
        event it cannot apply is not waited for, unless it is one that would show this write."""
        if position <= 0:
            return
        self.runner.kick()
        if not self.board.wait(self.projection_names, position, self.settings.read_your_writes_timeout):
            raise ReadModelsBehind(position)
        if self._stuck(position):
            raise ReadModelsBehind(position)

    async def settle_async(self, position: int) -> None:
        """`settle` for a coroutine: waits without holding a thread."""
        if position <= 0:
            return
        self.runner.kick()
        if not await self.board.wait_async(self.projection_names, position, self.settings.read_your_writes_timeout):
            raise ReadModelsBehind(position)
        if self._stuck(position):
            raise ReadModelsBehind(position)

    async def open(self) -> None:
        """Connect what coroutines use, on the running loop (the API process's at its start-up)."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            await self.adb.open()
            await self.store.open()
            await self.broker.start()

    async def _stop_policies(self) -> None:
        self.turnover.stop()
        self.imports.stop()
        await self.deliverer.stop()
        for running in self._policies:
            with contextlib.suppress(TimeoutError):  # an import under way resumes at the next start
                await asyncio.wait_for(asyncio.wrap_future(running), 10)
        self._policies = []

    async def aclose(self) -> None:
        if self._loop is not None:
            await self._stop_policies()
            await self.broker.stop()
            await self.store.close()
            await self.adb.close()
            self._loop = None

    async def outcome(self, command: Awaitable[Outcome[T]]) -> T:
        """Await a command, then wait until its effect is readable from any process (read-your-writes)."""
        done = await command
        await self.settle_async(done.position)
        return done.result

    def call(self, make: Callable[[], Awaitable[T]]) -> T:
        """From synchronous code (the CLI, tests, benchmarks): run a coroutine on this process's loop (the API's
        when it serves, else one of the runtime's own) and wait for its answer."""
        if self._loop is None:
            self._start_own_loop()
        assert self._loop is not None
        future: Future[T] = asyncio.run_coroutine_threadsafe(_awaited(make), self._loop)
        return future.result()

    def command(self, make: Callable[[], Awaitable[Outcome[T]]]) -> T:
        """`call` for a command: its result once read-your-writes holds."""
        return self.call(lambda: self.outcome(make()))

    def _start_own_loop(self) -> None:
        loop = asyncio.new_event_loop()
        self._own_loop = threading.Thread(target=loop.run_forever, name="cosmo-loop", daemon=True)
        self._own_loop.start()
        asyncio.run_coroutine_threadsafe(self.open(), loop).result()

    def close(self) -> None:
        if self._own_loop is not None and self._loop is not None:
            loop = self._loop
            asyncio.run_coroutine_threadsafe(self.aclose(), loop).result()
            loop.call_soon_threadsafe(loop.stop)
            self._own_loop.join(timeout=10)
            loop.close()
            self._own_loop = None
        self.runner.stop()
        if self._listener is not None:
            self._listener.stop()
        self.app.close()
        self.broker.close()
        self.db.close()
        self._running = False


async def _awaited(make: Callable[[], Awaitable[T]]) -> T:
    return await make()
