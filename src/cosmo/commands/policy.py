"""What every policy shares: a consumer of the log that answers events with commands (the turnover policy, the
bookings import), from a position it records in `policy_state`.

A policy's commands are idempotent (answering an event twice changes nothing more), so the position is recorded
after them rather than with them: a crash between the two only means the batch is answered again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import anyio
from eventsourcing.application import Application
from eventsourcing.utils import get_topic

from cosmo.storage.db import Database

log = logging.getLogger(__name__)

IDLE_SECONDS = 0.5  # how often an idle policy looks at the log again


class Policy:
    name: str
    event_classes: tuple[type, ...]
    batch = 200

    def __init__(self, app: Application, db: Database):
        self._app = app
        self._db = db
        self._topics = tuple(get_topic(cls) for cls in self.event_classes)
        self._stop = asyncio.Event()

    async def answer(self, notifications: Sequence[Any]) -> None:
        """Answer a batch of the events this policy follows (each has `originator_id`, `topic`, `state`)."""
        raise NotImplementedError

    def position(self) -> int:
        row = self._db.fetchone("SELECT position FROM policy_state WHERE name = %s", (self.name,))
        return int(row["position"]) if row else 0

    def _record(self, position: int) -> None:
        # One statement: two runners of the same policy (the background one and a caller's run_until_idle) may
        # record at once, and a read-then-insert lets both insert.
        self._db.execute(
            "INSERT INTO policy_state (name, position, updated_at) VALUES (%s, %s, %s) ON CONFLICT (name) DO UPDATE"
            " SET position = excluded.position, updated_at = excluded.updated_at"
            " WHERE policy_state.position < excluded.position",
            (self.name, position, datetime.now(UTC)),
        )

    async def run_once(self) -> int:
        """Answer the next batch; returns how many events it held."""
        start = await anyio.to_thread.run_sync(self.position)
        batch = await anyio.to_thread.run_sync(
            lambda: self._app.recorder.select_notifications(
                start=start, limit=self.batch, topics=self._topics, inclusive_of_start=False
            )
        )
        if not batch:
            return 0
        await self.answer(batch)
        await anyio.to_thread.run_sync(self._record, batch[-1].id)
        return len(batch)

    async def run_until_idle(self) -> int:
        seen = 0
        while found := await self.run_once():
            seen += found
        return seen

    async def run_forever(self) -> None:
        while not self._stop.is_set():
            try:
                if await self.run_once():
                    continue
            except Exception:  # a database restart, say: the same batch is answered again
                log.exception("the %s policy failed; trying again", self.name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), IDLE_SECONDS)

    def stop(self) -> None:
        self._stop.set()
