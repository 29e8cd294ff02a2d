"""Read-your-writes: where each projection has got to, as known in this process, and waiting on it.

The local runner posts positions after each committed batch; on PostgreSQL a listener also posts what runners in
other processes announce with NOTIFY. Waiters are woken by those posts, not by polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterable


class PositionBoard:
    def __init__(self, reload: Callable[[], dict[str, int]]):
        self._reload = reload  # reads positions from the database: the fallback if a notice was missed
        self._positions: dict[str, int] = {}
        self._cond = threading.Condition()
        self._async_waiters: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}

    def post(self, name: str, position: int) -> None:
        with self._cond:
            if position > self._positions.get(name, 0):
                self._positions[name] = position
                self._cond.notify_all()
                waiters, self._async_waiters = self._async_waiters, {}
            else:
                waiters = {}
        for loop, futures in waiters.items():  # one hop per loop, however many requests wait on it
            with contextlib.suppress(RuntimeError):  # that loop has closed
                loop.call_soon_threadsafe(_wake, futures)

    def refresh(self) -> None:
        for name, position in self._reload().items():
            self.post(name, position)

    def _reached(self, names: Iterable[str], position: int) -> bool:
        return all(self._positions.get(n, 0) >= position for n in names)

    def wait(self, names: Iterable[str], position: int, timeout: float) -> bool:
        """True once every named projection has processed `position`; False after `timeout` seconds."""
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
