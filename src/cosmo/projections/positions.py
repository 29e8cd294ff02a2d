"""Read-your-writes: where each projection has got to, as known in this process, and waiting on it.

The local runner posts positions after each committed batch; on PostgreSQL a listener also posts what runners in
other processes announce with NOTIFY. Waiters are woken by those posts, not by polling.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable


class PositionBoard:
    def __init__(self, reload: Callable[[], dict[str, int]]):
        self._reload = reload  # reads positions from the database: the fallback if a notice was missed
        self._positions: dict[str, int] = {}
        self._cond = threading.Condition()

    def post(self, name: str, position: int) -> None:
        with self._cond:
            if position > self._positions.get(name, 0):
                self._positions[name] = position
                self._cond.notify_all()

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
