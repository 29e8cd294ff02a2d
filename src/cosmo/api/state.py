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
from cosmo.commands.base import Outcome
from cosmo.config import Rate, Settings
from cosmo.runtime import ReadModelsBehind, Runtime
from cosmo.storage.db import AsyncDatabase

T = TypeVar("T")


@dataclass
class Services:
    settings: Settings
    runtime: Runtime
    throttle: Throttle
    redis: Redis | None

    @property
    def reader(self) -> AsyncDatabase:
        return self.runtime.adb

    async def run(self, command: Awaitable[Outcome[T]]) -> T:
        """Await a command, then wait until its effect is readable from any process (read-your-writes)."""
        try:
            return await self.runtime.outcome(command)
        except ReadModelsBehind as exc:
            raise NotSettled(detail="The change was saved but is not visible yet; retry the read shortly.") from exc

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(fn, *args)

    async def throttle_ip(self, connection: ASGIConnection[Any, Any, Any, Any], scope: str, rate: Rate) -> None:
        host = connection.client.host if connection.client else "unknown"
        await self.throttle.hit(scope, host, rate)


def services_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Services:
    return connection.app.state.services
