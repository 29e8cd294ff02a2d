"""Fixed-window request counters: in process memory, or in Redis so that every API process shares them.

Every request counts, refused ones included, so hammering a limit never buys an earlier reset.

With Redis, a round trip per request would cost more than the request it guards (a single-row read), so for large
limits a process takes a lease of several requests at once (INCRBY) and spends it locally. Redis still holds the
one shared count, and a lease is cut to what is left under the limit, so a limit is never exceeded; the price is
that a lease unspent when the window ends is lost (at most LEASE_SHARE of the limit per process, see `lease`).
"""

from __future__ import annotations

import math
import threading
import time

from redis.asyncio import Redis

from cosmo.api.errors import Throttled
from cosmo.config import Rate

LEASE_SHARE = 100  # a lease is at most 1/LEASE_SHARE of the limit...
LEASE_MAX = 100  # ...and never more than this many requests


def lease(limit: int) -> int:
    """Requests a process may count ahead for one key: 1 (exact counting) for the small auth and upload limits."""
    return max(1, min(limit // LEASE_SHARE, LEASE_MAX))


class Throttle:
    def __init__(self, redis: Redis | None = None, prefix: str = "cosmo:"):
        self._redis = redis
        self._prefix = prefix
        # key -> (count, window end) in memory mode; key -> (requests left in this process's lease, window end)
        # in Redis mode.
        self._counts: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()
        self._last_sweep = 0.0

    def _sweep(self, now: float) -> None:
        if now - self._last_sweep > 60:
            self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
            self._last_sweep = now

    def _local(self, key: str, window_end: float) -> int:
        with self._lock:
            self._sweep(time.time())
            count = self._counts.get(key, (0, window_end))[0] + 1
            self._counts[key] = (count, window_end)
            return count

    def _spend_lease(self, key: str) -> bool:
        with self._lock:
            left, window_end = self._counts.get(key, (0, 0.0))
            if left <= 0:
                return False
            self._counts[key] = (left - 1, window_end)
            return True

    async def _allowed_shared(self, redis: Redis, key: str, window_end: float, rate: Rate) -> bool:
        if self._spend_lease(key):
            return True
        size = lease(rate.limit)
        async with redis.pipeline(transaction=True) as pipe:
            pipe.incrby(key, size)
            pipe.expire(key, rate.period + 1)
            total, _ = await pipe.execute()
        granted = size - max(0, int(total) - rate.limit)
        if granted <= 0:
            if size > 1:
                # Over the limit: count only the request itself from now on, not a whole lease.
                await redis.decrby(key, size - 1)
            return False
        with self._lock:
            self._sweep(time.time())
            self._counts[key] = (granted - 1, window_end)
        return True

    async def hit(self, scope: str, ident: str, rate: Rate) -> None:
        """Counts one request; raises Throttled when it is over the rate."""
        now = time.time()
        window = int(now // rate.period)
        window_end = (window + 1) * rate.period
        key = f"{self._prefix}throttle:{scope}:{ident}:{rate.period}:{window}"
        if self._redis is not None:
            allowed = await self._allowed_shared(self._redis, key, window_end, rate)
        else:
            allowed = self._local(key, window_end) <= rate.limit
        if not allowed:
            raise Throttled(max(1, math.ceil(window_end - now)))
