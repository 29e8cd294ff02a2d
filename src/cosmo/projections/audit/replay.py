"""One entity's history and its state at an instant: the audit queries find the versions, states.py rebuilds them
from the event store (off the event loop). The API and the CLI both come here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import anyio.to_thread
import msgspec
from eventsourcing.application import Application

from cosmo.domain.actors import Actor
from cosmo.projections.audit.queries import AuditQueries, History
from cosmo.projections.audit.states import at, shown, versions


class EntityAsOf(msgspec.Struct):
    entity: str
    entity_id: str
    as_of: datetime
    version: int
    state: dict[str, Any]


async def history(queries: AuditQueries, app: Application, actor: Actor, entity: str, entity_id: str) -> History:
    originator = await queries.originator(actor, entity, entity_id)
    changed = await anyio.to_thread.run_sync(versions, app, originator)
    return await queries.history(actor, entity, entity_id, changed)


async def as_of(
    queries: AuditQueries, app: Application, actor: Actor, entity: str, entity_id: str, when: datetime
) -> EntityAsOf:
    originator, version = await queries.version_at(actor, entity, entity_id, when)
    aggregate = await anyio.to_thread.run_sync(at, app, originator, version)
    state = await anyio.to_thread.run_sync(shown, entity, aggregate, app, when)
    return EntityAsOf(entity, entity_id, when, version, state)
