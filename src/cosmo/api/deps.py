"""What handlers receive by name (Litestar dependency injection): the acting user, the read side's queries, the
command families, and the request-level services (throttles, tokens, settings). Handlers declare what they use,
as `NamedDependency[...]` parameters; nothing reaches for a global runtime."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.di import Provide

from cosmo.api.state import Services
from cosmo.domain.actors import Actor
from cosmo.runtime import Runtime


async def _actor(request: Request[Any, Any, Any]) -> Actor:
    return request.user.actor()


def _value(value: Any) -> Provide:
    return Provide(lambda: value, use_cache=True, sync_to_thread=False)


def dependencies(runtime: Runtime, services: Services) -> dict[str, Provide]:
    q = runtime.queries
    return {
        "actor": Provide(_actor),
        "services": _value(services),
        # queries
        "users": _value(q.users),
        "invites": _value(q.invites),
        "properties": _value(q.properties),
        "templates": _value(q.templates),
        "tasks": _value(q.tasks),
        "counts": _value(q.counts),
        "notifications": _value(q.notifications),
        # commands
        "identity": _value(runtime.identity),
        "property_commands": _value(runtime.properties),
        "checklist_commands": _value(runtime.checklists),
        "task_commands": _value(runtime.tasks),
        "photo_commands": _value(runtime.photos),
        "inbox": _value(runtime.inbox),
    }
