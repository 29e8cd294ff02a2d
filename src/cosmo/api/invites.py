"""Invite codes, for superusers and managers."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from cosmo.api.deps import Context
from cosmo.api.pages import Page
from cosmo.api.params import BoolParam, PageParam, PageSizeParam, boolean, choice, choices, ordering_param, page_request
from cosmo.api.wire import CreateInviteRequest
from cosmo.domain.identity import ROLES
from cosmo.projections.invites import INVITE_ORDERING, InviteFilters, InviteOut

RoleParam = Annotated[str | None, choices("Only codes for this role.", ROLES)]
InviteOrdering = ordering_param(INVITE_ORDERING, "-created_at")


class InvitesController(Controller):
    path = "/api/admin"
    tags = ["admin"]

    @get("/invite-codes/", summary="List invite codes")
    async def list_invites(
        self,
        request: Request[Any, Any, Any],
        ctx: NamedDependency[Context],
        is_active: BoolParam = None,
        role: RoleParam = None,
        ordering: InviteOrdering = None,
        page: PageParam = None,
        page_size: PageSizeParam = None,
    ) -> Page[InviteOut]:
        filters = InviteFilters(is_active=boolean("is_active", is_active), role=choice("role", role, ROLES))
        found = await ctx.invites.page(ctx.actor, filters, page_request(page, page_size, ordering))
        return ctx.services.page(request, found)

    @post("/create-invite-code/", status_code=201, summary="Create an invite code")
    async def create_invite(
        self,
        data: JSONBody[CreateInviteRequest],
        ctx: NamedDependency[Context],
    ) -> InviteOut:
        invite_id = await ctx.services.run(ctx.identity.create_invite(ctx.actor, msgspec.structs.asdict(data)))
        return await ctx.invites.get(ctx.actor, invite_id)

    @post("/invite-codes/{invite_id:int}/revoke/", status_code=200, summary="Revoke an invite code")
    async def revoke_invite(
        self,
        invite_id: FromPath[int],
        ctx: NamedDependency[Context],
    ) -> InviteOut:
        await ctx.services.run(ctx.identity.revoke_invite(ctx.actor, invite_id))
        return await ctx.invites.get(ctx.actor, invite_id)
