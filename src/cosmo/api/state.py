"""The request-level services handlers and middleware share: settings, throttles, tokens, running a command to
read-your-writes, and the contract's pages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio.to_thread
from litestar import Request
from litestar.connection import ASGIConnection
from redis.asyncio import Redis

from cosmo.api.errors import NotSettled
from cosmo.api.pages import Page, page
from cosmo.api.throttle import Throttle
from cosmo.auth.tokens import TokenService
from cosmo.commands.base import Outcome
from cosmo.config import Rate, Settings
from cosmo.projections.queries import Slice
from cosmo.runtime import ReadModelsBehind, Runtime

T = TypeVar("T")


@dataclass
class Services:
    settings: Settings
    runtime: Runtime
    throttle: Throttle
    redis: Redis | None

    @property
    def tokens(self) -> TokenService:
        return self.runtime.tokens

    async def run(self, command: Awaitable[Outcome[T]]) -> T:
        """Await a command, then wait until its effect is readable from any process (read-your-writes)."""
        try:
            return await self.runtime.outcome(command)
        except ReadModelsBehind as exc:
            raise NotSettled(detail="The change was saved but is not visible yet; retry the read shortly.") from exc

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """A blocking call (password hashing, the refresh-token table) in a worker thread."""
        return await anyio.to_thread.run_sync(fn, *args)

    async def throttle_ip(self, connection: ASGIConnection[Any, Any, Any, Any], scope: str, rate: Rate) -> None:
        host = connection.client.host if connection.client else "unknown"
        await self.throttle.hit(scope, host, rate)

    def page(self, request: Request[Any, Any, Any], found: Slice[T]) -> Page[T]:
        return page(request, self.settings.public_url, found)


def services_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Services:
    return connection.app.state.services
