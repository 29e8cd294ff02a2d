"""Read-your-writes: where each projection has got to, as known in this process, and waiting on it.

The local runner posts positions after each committed batch; on PostgreSQL a listener also posts what runners in
other processes announce with NOTIFY. Waiters are woken by those posts, not by polling.

A projection stopped at an event it cannot apply is posted as failing: it will not move until someone fixes it, so
waiting for it would only time out. A wait counts it as done, and the caller asks `stuck` whether the write it
waits for is one that projection would have shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterable

Reload = Callable[[], tuple[dict[str, int], dict[str, int]]]


class PositionBoard:
    def __init__(self, reload: Reload):
        # Reads positions and failures from the database: the fallback if a notice was missed.
        self._reload = reload
        self._positions: dict[str, int] = {}
        self._failing: dict[str, int] = {}  # projection -> the event it cannot apply (0: its rebuild failed)
        self._cond = threading.Condition()
        self._async_waiters: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}

    def _wake_all(self) -> None:
        """With the condition held: wake every waiter, in threads and on event loops."""
        self._cond.notify_all()
        waiters, self._async_waiters = self._async_waiters, {}
        for loop, futures in waiters.items():  # one hop per loop, however many requests wait on it
            with contextlib.suppress(RuntimeError):  # that loop has closed
                loop.call_soon_threadsafe(_wake, futures)

    def post(self, name: str, position: int) -> None:
        self.post_many({name: position})

    def post_many(self, positions: dict[str, int]) -> None:
        """A batch's projections at once: waiters wake once, when all of them have moved, rather than once per
        projection to find the others not there yet."""
        moved = False
        with self._cond:
            for name, position in positions.items():
                if name in self._failing and position >= self._failing[name]:
                    del self._failing[name]  # it got past the event it failed on
                if position > self._positions.get(name, 0):
                    self._positions[name] = position
                    moved = True
            if moved:
                self._wake_all()

    def fail(self, name: str, position: int) -> None:
        with self._cond:
            self._failing[name] = position
            self._wake_all()

    def refresh(self) -> None:
        positions, failing = self._reload()
        with self._cond:
            self._failing = dict(failing)
        self.post_many(positions)
        with self._cond:
            self._wake_all()

    def position(self, name: str) -> int:
        with self._cond:
            return self._positions.get(name, 0)

    @property
    def failing(self) -> dict[str, int]:
        with self._cond:
            return dict(self._failing)

    def stuck(self, names: Iterable[str], position: int) -> list[str]:
        """The named projections that are failing and have not reached `position`."""
        with self._cond:
            return [n for n in names if n in self._failing and self._positions.get(n, 0) < position]

    def _reached(self, names: Iterable[str], position: int) -> bool:
        return all(self._positions.get(n, 0) >= position or n in self._failing for n in names)

    def wait(self, names: Iterable[str], position: int, timeout: float) -> bool:
        """True once every named projection has processed `position` or is failing; False after `timeout` seconds."""
        names = tuple(names)
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._reached(names, position):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                # The timeout on each wait is only a safety net for a lost notice (then the database is asked);
                # posts wake us at once.
                if not self._cond.wait(min(remaining, 0.25)):
                    self._cond.release()
                    try:
                        self.refresh()
                    finally:
                        self._cond.acquire()
            return self._reached(names, position)

    async def wait_async(self, names: Iterable[str], position: int, timeout: float) -> bool:
        """`wait` for a coroutine: the same answer, without holding a thread while the projections work."""
        names = tuple(names)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            with self._cond:
                if self._reached(names, position):
                    return True
                future: asyncio.Future[None] = loop.create_future()
                self._async_waiters.setdefault(loop, []).append(future)
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            # A plain timer: asyncio.wait_for would wrap every request's wait in a task of its own.
            expired = loop.call_later(min(remaining, 0.25), _wake, [future])
            try:
                await future
            finally:
                expired.cancel()
            if not self._reached(names, position) and loop.time() >= expired.when():
                await asyncio.to_thread(self.refresh)  # a lost notice: ask the database, as `wait` does


def _wake(futures: list[asyncio.Future[None]]) -> None:
    for future in futures:
        if not future.done():
            future.set_result(None)
