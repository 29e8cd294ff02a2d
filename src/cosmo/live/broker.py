"""Live pushes between processes: projection runners publish, each API process's hub delivers to its sockets.

Publishing is synchronous and thread-safe (runners are threads, possibly in a `cosmo worker` process). With Redis
each publish (one projection batch's pushes) is one message on one Redis channel, which every API process reads and
hands to its own sockets; so a socket on any process hears what a runner in any process published, and a process
reads one message per batch rather than one per push. Without Redis the broker is in-process and only this
process's runner feeds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Iterable
from typing import Any

import msgspec
import redis
import redis.asyncio

log = logging.getLogger(__name__)

CHANNEL = "live"  # after the deployment's prefix: Redis pub/sub channels are shared by every database number
Envelope = list[tuple[str, msgspec.Raw]]  # (hub channel, the push as encoded JSON), kept raw: never re-parsed
_decode_envelope = msgspec.json.Decoder(Envelope).decode


# What a socket's queue holds after it overflowed: the socket is closed (code 1013), and the client reconnects (a
# chat socket with `since`, so it misses nothing) rather than go on with a silent gap, or miss the push that would
# have ended it (a removal, a deactivation).
OVERFLOWED = "overflowed"


class Hub:
    """This process's subscribers: each socket registers a queue and the channels it listens to."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queues: dict[asyncio.Queue[tuple[str, bytes]], frozenset[str]] = {}

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def register(self, channels: Iterable[str], maxsize: int = 256) -> asyncio.Queue[tuple[str, bytes]]:
        queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(maxsize)
        self._queues[queue] = frozenset(channels)
        return queue

    @property
    def listening(self) -> bool:
        """Whether any socket of this process listens (else a published batch need not even be decoded)."""
        return bool(self._queues)

    def unregister(self, queue: asyncio.Queue[tuple[str, bytes]]) -> None:
        self._queues.pop(queue, None)

    def deliver(self, channel: str, payload: bytes) -> None:
        """On the event loop. A socket that stopped reading costs its own queue, never the others'."""
        for queue, channels in list(self._queues.items()):
            if channel in channels:
                try:
                    queue.put_nowait((channel, payload))
                except asyncio.QueueFull:
                    self._overflow(queue)

    def _overflow(self, queue: asyncio.Queue[tuple[str, bytes]]) -> None:
        """Empty the queue and leave only the mark that tells its socket to close; stop feeding it."""
        self.unregister(queue)
        while not queue.empty():
            queue.get_nowait()
        queue.put_nowait((OVERFLOWED, b""))

    def deliver_threadsafe(self, channel: str, payload: bytes) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.deliver, channel, payload)


class Broker:
    def __init__(self, redis_url: str | None, prefix: str = "cosmo:"):
        self.redis_url = redis_url
        self.channel = f"{prefix}{CHANNEL}"
        self.hub = Hub()
        self._sync: redis.Redis | None = redis.Redis.from_url(redis_url) if redis_url else None
        self._lock = threading.Lock()
        self._task: asyncio.Task[None] | None = None

    def publish(self, messages: list[tuple[str, dict[str, Any]]]) -> None:
        """(channel, message) pairs, sent in one round trip to Redis."""
        if not messages:
            return
        encoded = [(channel, msgspec.json.encode(message)) for channel, message in messages]
        if self._sync is None:
            for channel, payload in encoded:
                self.hub.deliver_threadsafe(channel, payload)
            return
        envelope = msgspec.json.encode([(channel, msgspec.Raw(payload)) for channel, payload in encoded])
        with self._lock:
            self._sync.publish(self.channel, envelope)

    async def start(self) -> None:
        """On the API process's event loop: begin delivering to this process's sockets."""
        self.hub.bind(asyncio.get_running_loop())
        if self.redis_url and self._task is None:
            self._task = asyncio.create_task(self._listen(self.redis_url))

    async def _listen(self, url: str) -> None:
        while True:
            client = redis.asyncio.Redis.from_url(url)
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                while True:
                    # A bounded wait, so cancellation is noticed between reads rather than inside one.
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message and message.get("type") == "message" and self.hub.listening:
                        for channel, payload in _decode_envelope(message["data"]):
                            self.hub.deliver(channel, bytes(payload))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("live updates: Redis subscription failed; reconnecting")
                await asyncio.sleep(1)
            finally:
                # The pubsub holds its own connection; close it first or closing the client waits for it.
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(pubsub.aclose(), 2)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.aclose(), 2)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._task, 5)
            self._task = None

    def close(self) -> None:
        if self._sync is not None:
            self._sync.close()
