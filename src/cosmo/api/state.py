"""What request handlers reach through `app.state`: the runtime, the async reader, the throttle."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio.to_thread
from litestar.connection import ASGIConnection
from redis.asyncio import Redis

from cosmo.api.errors import NotSettled
from cosmo.api.throttle import Throttle
from cosmo.config import Rate, Settings
from cosmo.runtime import ReadModelsBehind, Runtime
from cosmo.storage.db import AsyncReader

T = TypeVar("T")


@dataclass
class Services:
    settings: Settings
    runtime: Runtime
    reader: AsyncReader
    throttle: Throttle
    redis: Redis | None

    async def command(self, fn: Callable[[], tuple[T, int]]) -> T:
        """Run a thread-bound command off the event loop, then wait (on the loop) until its effect is readable."""
        return await self.run(anyio.to_thread.run_sync(fn))

    async def run(self, command: Awaitable[tuple[T, int]]) -> T:
        """Await a command, then wait until its effect is readable from any process (read-your-writes)."""
        result, position = await command
        try:
            await self.runtime.settle_async(position)
        except ReadModelsBehind as exc:
            raise NotSettled(detail="The change was saved but is not visible yet; retry the read shortly.") from exc
        return result

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(fn, *args)

    async def throttle_ip(self, connection: ASGIConnection[Any, Any, Any, Any], scope: str, rate: Rate) -> None:
        host = connection.client.host if connection.client else "unknown"
        await self.throttle.hit(scope, host, rate)


def services_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Services:
    return connection.app.state.services
