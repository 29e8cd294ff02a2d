"""Invite codes, for superusers and managers."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.params import FromPath, JSONBody

from cosmo.api.pagination import ordering, paginate, query_bool, query_choice
from cosmo.api.security import CurrentUser, require_admin
from cosmo.api.state import services_of
from cosmo.api.wire import CreateInviteRequest, invite_out
from cosmo.domain.errors import NotFound
from cosmo.domain.identity import ROLES

INVITE_COLUMNS = (
    "id, code, role, task_group, max_uses, used_count, expires_at, is_active, notes, created_by, created_at"
)
INVITE_ORDERING = {"id": "id", "created_at": "created_at", "expires_at": "expires_at", "role": "role"}


async def _invite_row(request: Request[Any, Any, Any], invite_id: int) -> dict[str, Any]:
    row = await services_of(request).reader.fetchone(
        f"SELECT {INVITE_COLUMNS} FROM invite_codes_view WHERE id = %s", (invite_id,)
    )
    if row is None:
        raise NotFound(f"invite {invite_id}")
    return row


class InvitesController(Controller):
    path = "/api/admin"
    tags = ["admin"]

    @get("/invite-codes/", summary="List invite codes")
    async def list_invites(self, request: Request[CurrentUser, Any, Any]) -> dict[str, Any]:
        require_admin(request.user)
        where, params = ["1 = 1"], []
        active = query_bool(request, "is_active")
        if active is not None:
            where.append("is_active = %s")
            params.append(active)
        role = query_choice(request, "role", ROLES)
        if role:
            where.append("role = %s")
            params.append(role)
        return await paginate(
            request,
            services_of(request).reader,
            select=INVITE_COLUMNS,
            from_where=f"FROM invite_codes_view WHERE {' AND '.join(where)}",
            params=params,
            order_by=ordering(request, INVITE_ORDERING, "-created_at") + ", id DESC",
            shape=invite_out,
        )

    @post("/create-invite-code/", status_code=201, summary="Create an invite code")
    async def create_invite(
        self, request: Request[CurrentUser, Any, Any], data: JSONBody[CreateInviteRequest]
    ) -> dict[str, Any]:
        services = services_of(request)
        fields = msgspec.structs.asdict(data)
        invite_id = await services.run(services.runtime.identity.create_invite(request.user.actor(), fields))
        return invite_out(await _invite_row(request, invite_id))

    @post("/invite-codes/{invite_id:int}/revoke/", status_code=200, summary="Revoke an invite code")
    async def revoke_invite(self, request: Request[CurrentUser, Any, Any], invite_id: FromPath[int]) -> dict[str, Any]:
        services = services_of(request)
        await services.run(services.runtime.identity.revoke_invite(request.user.actor(), invite_id))
        return invite_out(await _invite_row(request, invite_id))
