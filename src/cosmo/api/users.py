"""Users: the caller's own account, and the admin list and edits."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, patch
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from cosmo.api.deps import Context
from cosmo.api.pages import Page
from cosmo.api.params import (
    BoolParam,
    PageParam,
    PageSizeParam,
    SearchParam,
    boolean,
    choice,
    choices,
    ordering_param,
    page_request,
    text,
)
from cosmo.api.wire import UpdateMeRequest, UpdateUserRequest, given
from cosmo.domain.identity import ROLES, TASK_GROUPS
from cosmo.projections.users import USER_ORDERING, AuthUser, UserFilters, UserOut

RoleParam = Annotated[str | None, choices("Only users of this role.", ROLES)]
GroupParam = Annotated[str | None, choices("Only users of this task group.", TASK_GROUPS)]
UserOrdering = ordering_param(USER_ORDERING, "id")


class UsersController(Controller):
    path = "/api/users"
    tags = ["users"]

    @get("/me/", summary="The caller's account")
    async def me(self, request: Request[AuthUser, Any, Any]) -> UserOut:
        return request.user.out()

    @patch("/me/", summary="Change names, email or password (all or nothing)")
    async def update_me(
        self,
        data: JSONBody[UpdateMeRequest],
        ctx: NamedDependency[Context],
    ) -> UserOut:
        changes = given(data, "first_name", "last_name", "email")
        passwords = given(data, "old_password", "new_password")
        await ctx.services.run(
            ctx.identity.update_me(ctx.actor, changes, passwords.get("old_password"), passwords.get("new_password"))
        )
        if passwords:
            # Every session ends with a password change; the client logs in again.
            await ctx.services.call(ctx.services.tokens.revoke_all, ctx.actor.id)
        return await ctx.users.me(ctx.actor.id)

    @get("/", summary="List users (managers and superusers)")
    async def list_users(
        self,
        request: Request[AuthUser, Any, Any],
        ctx: NamedDependency[Context],
        role: RoleParam = None,
        task_group: GroupParam = None,
        is_active: BoolParam = None,
        search: SearchParam = None,
        ordering: UserOrdering = None,
        page: PageParam = None,
        page_size: PageSizeParam = None,
    ) -> Page[UserOut]:
        filters = UserFilters(
            role=choice("role", role, ROLES),
            task_group=choice("task_group", task_group, TASK_GROUPS),
            is_active=boolean("is_active", is_active),
            search=text("search", search).lower(),
        )
        found = await ctx.users.page(ctx.actor, filters, page_request(page, page_size, ordering))
        return ctx.services.page(request, found)

    @get("/{user_id:int}/", summary="One user (managers and superusers)")
    async def get_user(
        self,
        user_id: FromPath[int],
        ctx: NamedDependency[Context],
    ) -> UserOut:
        return await ctx.users.get(ctx.actor, user_id)

    @patch("/{user_id:int}/", summary="Change a user's role, task group or active flag (superusers)")
    async def update_user(
        self,
        user_id: FromPath[int],
        data: JSONBody[UpdateUserRequest],
        ctx: NamedDependency[Context],
    ) -> UserOut:
        changes = given(data, "role", "task_group", "is_active")
        await ctx.services.run(ctx.identity.change_access(ctx.actor, user_id, changes))
        if changes.get("is_active") is False:
            await ctx.services.call(ctx.services.tokens.revoke_all, user_id)
        return await ctx.users.get(ctx.actor, user_id)
