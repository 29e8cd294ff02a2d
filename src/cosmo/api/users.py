"""Users: the caller's own account, and the admin list and edits."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, patch
from litestar.params import FromPath, JSONBody

from cosmo.api.pagination import ordering, paginate, query_bool, query_choice, query_text
from cosmo.api.security import USER_COLUMNS, CurrentUser, require_admin
from cosmo.api.state import services_of
from cosmo.api.wire import UpdateMeRequest, UpdateUserRequest, given, user_out
from cosmo.domain.errors import NotFound
from cosmo.domain.identity import ROLES, TASK_GROUPS

USER_ORDERING = {
    "id": "id",
    "username": "username_key",
    "email": "email_key",
    "first_name": "first_name",
    "last_name": "last_name",
    "role": "role",
    "date_joined": "date_joined",
}


async def _user_row(request: Request[Any, Any, Any], user_id: int) -> dict[str, Any]:
    row = await services_of(request).reader.fetchone(f"SELECT {USER_COLUMNS} FROM users_view WHERE id = %s", (user_id,))
    if row is None:
        raise NotFound(f"user {user_id}")
    return row


class UsersController(Controller):
    path = "/api/users"
    tags = ["users"]

    @get("/me/", summary="The caller's account")
    async def me(self, request: Request[CurrentUser, Any, Any]) -> dict[str, Any]:
        return user_out(request.user.as_row())

    @patch("/me/", summary="Change names, email or password")
    async def update_me(
        self, request: Request[CurrentUser, Any, Any], data: JSONBody[UpdateMeRequest]
    ) -> dict[str, Any]:
        services = services_of(request)
        user = request.user
        changes = given(data, "first_name", "last_name", "email")
        passwords = given(data, "old_password", "new_password")
        await services.run(
            services.runtime.identity.update_me(
                user.actor(), changes, passwords.get("old_password"), passwords.get("new_password")
            )
        )
        if passwords:
            # Every session ends with a password change; the client logs in again.
            await services.call(services.runtime.tokens.revoke_all, user.id)
        return user_out(await _user_row(request, user.id))

    @get("/", summary="List users (managers and superusers)")
    async def list_users(self, request: Request[CurrentUser, Any, Any]) -> dict[str, Any]:
        require_admin(request.user)
        where, params = ["1 = 1"], []
        role = query_choice(request, "role", ROLES)
        if role:
            where.append("role = %s")
            params.append(role)
        group = query_choice(request, "task_group", TASK_GROUPS)
        if group:
            where.append("task_group = %s")
            params.append(group)
        active = query_bool(request, "is_active")
        if active is not None:
            where.append("is_active = %s")
            params.append(active)
        search = query_text(request, "search").lower()
        if search:
            like = "%" + search.replace("\\", "").replace("%", "").replace("_", "") + "%"
            where.append(
                "(username_key LIKE %s OR lower(email) LIKE %s"
                " OR lower(first_name) LIKE %s OR lower(last_name) LIKE %s)"
            )
            params.extend([like] * 4)
        return await paginate(
            request,
            services_of(request).reader,
            select=USER_COLUMNS,
            from_where=f"FROM users_view WHERE {' AND '.join(where)}",
            params=params,
            order_by=ordering(request, USER_ORDERING, "id") + ", id",
            shape=user_out,
        )

    @get("/{user_id:int}/", summary="One user (managers and superusers)")
    async def get_user(self, request: Request[CurrentUser, Any, Any], user_id: FromPath[int]) -> dict[str, Any]:
        require_admin(request.user)
        return user_out(await _user_row(request, user_id))

    @patch("/{user_id:int}/", summary="Change a user's role, task group or active flag (superusers)")
    async def update_user(
        self,
        request: Request[CurrentUser, Any, Any],
        user_id: FromPath[int],
        data: JSONBody[UpdateUserRequest],
    ) -> dict[str, Any]:
        services = services_of(request)
        changes = given(data, "role", "task_group", "is_active")
        await services.run(services.runtime.identity.change_access(request.user.actor(), user_id, changes))
        if changes.get("is_active") is False:
            await services.call(services.runtime.tokens.revoke_all, user_id)
        return user_out(await _user_row(request, user_id))
