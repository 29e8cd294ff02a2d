"""PostgreSQL LISTEN: wakes this process's runner on new events and posts other processes' progress."""

from __future__ import annotations

import logging
import threading

import psycopg

from cosmo.projections.positions import PositionBoard
from cosmo.projections.runner import NOTIFY_CHANNEL, ProjectionRunner

log = logging.getLogger(__name__)

STOP_CHECK = 0.05  # seconds between looks at the stop flag while no notification comes


class Listener:
    def __init__(self, conninfo: str, events_channel: str, runner: ProjectionRunner, board: PositionBoard):
        self._conninfo = conninfo
        self._events_channel = events_channel
        self._runner = runner
        self._board = board
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cosmo-listener", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(5)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    conn.execute(f'LISTEN "{self._events_channel}"')
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self._ready.set()
                    # Anything announced while we were not listening is picked up from the table.
                    self._board.refresh()
                    self._runner.kick()
                    while not self._stop.is_set():
                        # A short wait: `stop()` is only noticed between waits (a process's shutdown, and every
                        # test's, waited out a whole second here).
                        for note in conn.notifies(timeout=STOP_CHECK):
                            if note.channel == NOTIFY_CHANNEL:
                                # "name[,name...]:position", or "!name:position" for a projection that failed there
                                names, _, position = note.payload.rpartition(":")
                                if names.startswith("!"):
                                    self._board.fail(names[1:], int(position))
                                    continue
                                self._board.post_many(dict.fromkeys(names.split(","), int(position)))
                            else:
                                self._runner.kick()
            except Exception:
                if self._stop.is_set():
                    return
                log.exception("LISTEN connection lost; reconnecting")
                self._stop.wait(1.0)
