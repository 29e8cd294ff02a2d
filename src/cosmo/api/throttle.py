"""Fixed-window request counters: in process memory, or in Redis so that every API process shares them.

Every request counts, refused ones included, so hammering a limit never buys an earlier reset.
"""

from __future__ import annotations

import math
import threading
import time

from redis.asyncio import Redis

from cosmo.api.errors import Throttled
from cosmo.config import Rate


class Throttle:
    def __init__(self, redis: Redis | None = None):
        self._redis = redis
        self._counts: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()
        self._last_sweep = 0.0

    async def _incr(self, key: str, window_end: float, period: int) -> int:
        if self._redis is not None:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, period + 1)
                count, _ = await pipe.execute()
            return int(count)
        with self._lock:
            now = time.time()
            if now - self._last_sweep > 60:
                self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
                self._last_sweep = now
            count = self._counts.get(key, (0, window_end))[0] + 1
            self._counts[key] = (count, window_end)
            return count

    async def hit(self, scope: str, ident: str, rate: Rate) -> None:
        """Counts one request; raises Throttled when it is over the rate."""
        now = time.time()
        window = int(now // rate.period)
        window_end = (window + 1) * rate.period
        count = await self._incr(f"cosmo:throttle:{scope}:{ident}:{rate.period}:{window}", window_end, rate.period)
        if count > rate.limit:
            raise Throttled(max(1, math.ceil(window_end - now)))
