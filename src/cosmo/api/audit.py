"""The audit API: auditors and superusers read the event history (the queries decide who may)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Stream

from cosmo.api.deps import Context
from cosmo.api.params import MomentParam, choice, choices, described, integer, moment, text
from cosmo.domain.errors import NotFound, ValidationFailed
from cosmo.projections.audit import replay
from cosmo.projections.audit.projection import ENTITY_NAMES
from cosmo.projections.audit.queries import (
    ChainStatus,
    EventFilters,
    EventPage,
    History,
    check_range,
    require_auditor,
)
from cosmo.projections.audit.replay import EntityAsOf

ORDERS = ("newest", "oldest")
ID_MAX = 100
DEFAULT_PAGE = 50

EntityParam = Annotated[str | None, choices("Only events of this kind of entity.", ENTITY_NAMES)]
TextParam = Annotated[str | None, described("Exact match.", maxLength=ID_MAX)]
CursorParam = Annotated[str | None, described("A cursor (an event's `cursor`).", pattern=r"^[0-9]{1,18}$")]
ActorParam = Annotated[str | None, described("A user id: events that user caused.", pattern=r"^[0-9]{1,18}$")]
OrderParam = Annotated[str | None, choices("newest (default) or oldest first.", ORDERS)]
SizeParam = Annotated[str | None, described("Events per page (default 50, at most 500).", pattern=r"^[0-9]{1,18}$")]


def _natural(name: str, raw: str | None) -> int | None:
    value = integer(name, raw)
    if value is not None and value < 0:
        raise ValidationFailed.one(name, "Ensure this value is greater than or equal to 0.")
    return value


def _exact(name: str, raw: str | None) -> str | None:
    return text(name, raw, ID_MAX) if raw else None


def _entity(ctx: Context, entity: str, entity_id: str) -> None:
    require_auditor(ctx.actor)  # first: a 404 for an unknown name would tell others which names exist
    if entity not in ENTITY_NAMES or len(entity_id) > ID_MAX:
        raise NotFound(f"{entity[:50]} {entity_id[:ID_MAX]}")


class AuditController(Controller):
    path = "/api/audit"
    tags = ["audit"]

    @get("/events/", summary="The event history, by cursor (auditors and superusers)")
    async def events(
        self,
        ctx: NamedDependency[Context],
        entity: EntityParam = None,
        entity_id: TextParam = None,
        type: TextParam = None,  # the name for it, shadowing the builtin here only
        actor: ActorParam = None,
        after: MomentParam = None,
        before: MomentParam = None,
        since: CursorParam = None,
        cursor: CursorParam = None,
        ordering: OrderParam = None,
        page_size: SizeParam = None,
    ) -> EventPage:
        filters = EventFilters(
            entity=choice("entity", entity, ENTITY_NAMES),
            entity_id=_exact("entity_id", entity_id),
            type=_exact("type", type),
            actor=_natural("actor", actor),
            after=moment("after", after),
            before=moment("before", before),
            since=_natural("since", since),
        )
        order = choice("ordering", ordering, ORDERS) or "newest"
        size = _natural("page_size", page_size)
        if size == 0:
            raise ValidationFailed.one("page_size", "A positive integer is required.")
        cursor_at = _natural("cursor", cursor)
        return await ctx.audit.events(ctx.actor, filters, order == "newest", cursor_at, size or DEFAULT_PAGE)

    @get("/verify/", summary="The audit chain: how far it reaches, its latest seal, the last verification")
    async def verify(self, ctx: NamedDependency[Context]) -> ChainStatus:
        return await ctx.audit.chain_status(ctx.actor)

    @get(
        "/export/",
        summary="Events in a time range as JSON Lines, oldest first, streamed",
        # One AuditEvent per line: described for the document, which cannot say "lines of" itself.
        opt={"response_content": {"application/x-ndjson": {"schema": {"$ref": "#/components/schemas/AuditEvent"}}}},
    )
    async def export(
        self, ctx: NamedDependency[Context], after: MomentParam = None, before: MomentParam = None
    ) -> Stream:
        require_auditor(ctx.actor)  # before the stream starts: a refusal is a 403, not a broken stream
        start, end = moment("after", after), moment("before", before)
        check_range(start, end)
        rows = ctx.audit.export(ctx.actor, start, end)
        encoder = msgspec.json.Encoder()

        async def lines() -> AsyncIterator[bytes]:
            async for event in rows:
                yield encoder.encode(event) + b"\n"

        return Stream(lines(), media_type="application/x-ndjson")

    @get("/{entity:str}/{entity_id:str}/history/", summary="Every version of one entity and what each changed")
    async def history(self, entity: FromPath[str], entity_id: FromPath[str], ctx: NamedDependency[Context]) -> History:
        _entity(ctx, entity, entity_id)
        return await replay.history(ctx.audit, ctx.services.runtime.app, ctx.actor, entity, entity_id)

    @get("/{entity:str}/{entity_id:str}/", summary="One entity as it was at an instant, rebuilt from its events")
    async def as_of(
        self, entity: FromPath[str], entity_id: FromPath[str], ctx: NamedDependency[Context], as_of: MomentParam = None
    ) -> EntityAsOf:
        _entity(ctx, entity, entity_id)
        when = moment("as_of", as_of)
        if when is None:
            raise ValidationFailed.one("as_of", "This field is required.")
        return await replay.as_of(ctx.audit, ctx.services.runtime.app, ctx.actor, entity, entity_id, when)
