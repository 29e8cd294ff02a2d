"""Invite codes, for superusers and managers."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from cosmo.api.pages import Page
from cosmo.api.params import BoolParam, PageParam, PageSizeParam, boolean, choice, choices, ordering_param, page_request
from cosmo.api.state import Services
from cosmo.api.wire import CreateInviteRequest
from cosmo.commands.identity import IdentityCommands
from cosmo.domain.actors import Actor
from cosmo.domain.identity import ROLES
from cosmo.projections.invites import INVITE_ORDERING, InviteFilters, InviteOut, InviteQueries

RoleParam = Annotated[str | None, choices("Only codes for this role.", ROLES)]
InviteOrdering = ordering_param(INVITE_ORDERING, "-created_at")


class InvitesController(Controller):
    path = "/api/admin"
    tags = ["admin"]

    @get("/invite-codes/", summary="List invite codes")
    async def list_invites(
        self,
        request: Request[Any, Any, Any],
        actor: NamedDependency[Actor],
        services: NamedDependency[Services],
        invites: NamedDependency[InviteQueries],
        is_active: BoolParam = None,
        role: RoleParam = None,
        ordering: InviteOrdering = None,
        page: PageParam = None,
        page_size: PageSizeParam = None,
    ) -> Page[InviteOut]:
        filters = InviteFilters(is_active=boolean("is_active", is_active), role=choice("role", role, ROLES))
        found = await invites.page(actor, filters, page_request(page, page_size, ordering))
        return services.page(request, found)

    @post("/create-invite-code/", status_code=201, summary="Create an invite code")
    async def create_invite(
        self,
        data: JSONBody[CreateInviteRequest],
        actor: NamedDependency[Actor],
        services: NamedDependency[Services],
        identity: NamedDependency[IdentityCommands],
        invites: NamedDependency[InviteQueries],
    ) -> InviteOut:
        invite_id = await services.run(identity.create_invite(actor, msgspec.structs.asdict(data)))
        return await invites.get(actor, invite_id)

    @post("/invite-codes/{invite_id:int}/revoke/", status_code=200, summary="Revoke an invite code")
    async def revoke_invite(
        self,
        invite_id: FromPath[int],
        actor: NamedDependency[Actor],
        services: NamedDependency[Services],
        identity: NamedDependency[IdentityCommands],
        invites: NamedDependency[InviteQueries],
    ) -> InviteOut:
        await services.run(identity.revoke_invite(actor, invite_id))
        return await invites.get(actor, invite_id)
