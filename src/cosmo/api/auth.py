"""Public identity endpoints: tokens, registration with an invite code, invite validation."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, post
from litestar.exceptions import NotAuthorizedException
from litestar.params import JSONBody

from cosmo.api.security import USER_COLUMNS, user_for_claims
from cosmo.api.state import services_of
from cosmo.api.wire import (
    RefreshRequest,
    RegisterRequest,
    TokenRequest,
    ValidateInviteRequest,
    user_out,
)
from cosmo.auth.passwords import DUMMY_HASH, verify_password
from cosmo.auth.tokens import InvalidToken
from cosmo.domain.checks import check_text
from cosmo.domain.errors import ValidationFailed

BAD_CREDENTIALS = "No active account found with the given credentials"
LOGIN_MAX = 254  # a username or an email
PUBLIC = {"public": True}


class AuthController(Controller):
    path = "/api"
    tags = ["auth"]

    @post("/token/", status_code=200, opt=PUBLIC, summary="Obtain access and refresh tokens")
    async def obtain(self, request: Request[Any, Any, Any], data: JSONBody[TokenRequest]) -> dict[str, str]:
        services = services_of(request)
        await services.throttle_ip(request, "auth-token", services.settings.throttle_auth)
        problems = check_text(data.username, LOGIN_MAX)
        if problems:
            raise ValidationFailed({"username": problems})
        key = data.username.strip().lower()
        row = await services.reader.fetchone(
            "SELECT id, is_active, password_hash FROM users_view WHERE username_key = %s OR email_key = %s "
            "ORDER BY CASE WHEN username_key = %s THEN 0 ELSE 1 END LIMIT 1",
            (key, key, key),
        )
        # Verify even for unknown users so response time does not reveal which usernames exist.
        ok = await services.call(verify_password, data.password, row["password_hash"] if row else DUMMY_HASH)
        if not (row and ok and row["is_active"]):
            raise NotAuthorizedException(BAD_CREDENTIALS)
        return await services.call(services.runtime.tokens.issue_pair, int(row["id"]))

    @post("/token/refresh/", status_code=200, opt=PUBLIC, summary="Rotate a refresh token")
    async def refresh(self, request: Request[Any, Any, Any], data: JSONBody[RefreshRequest]) -> dict[str, str]:
        services = services_of(request)
        tokens = services.runtime.tokens
        jti = tokens.unverified_jti(data.refresh)
        if jti:
            await services.throttle.hit("refresh", jti, services.settings.throttle_refresh)
        else:
            await services.throttle_ip(request, "refresh", services.settings.throttle_refresh)
        try:
            claims = await services.call(tokens.consume_refresh, data.refresh)
        except InvalidToken as exc:
            raise NotAuthorizedException(str(exc)) from exc
        await user_for_claims(request, claims)
        return await services.call(tokens.issue_pair, claims.user_id)

    @post("/token/revoke/", status_code=200, opt=PUBLIC, summary="Revoke a refresh token")
    async def revoke(self, request: Request[Any, Any, Any], data: JSONBody[RefreshRequest]) -> dict[str, str]:
        services = services_of(request)
        await services.throttle_ip(request, "auth-revoke", services.settings.throttle_auth)
        try:
            await services.call(services.runtime.tokens.revoke, data.refresh)
        except InvalidToken as exc:
            raise NotAuthorizedException(str(exc)) from exc
        return {"detail": "Token revoked"}

    @post("/register/", status_code=201, opt=PUBLIC, summary="Register with an invite code")
    async def register(self, request: Request[Any, Any, Any], data: JSONBody[RegisterRequest]) -> dict[str, Any]:
        services = services_of(request)
        await services.throttle_ip(request, "auth-register", services.settings.throttle_auth)
        user_id = await services.run(services.runtime.identity.register(msgspec.structs.asdict(data)))
        row = await services.reader.fetchone(f"SELECT {USER_COLUMNS} FROM users_view WHERE id = %s", (user_id,))
        assert row is not None
        body = user_out(row)
        del body["is_active"]  # the contract's registration body
        return body

    @post("/validate-invite/", status_code=200, opt=PUBLIC, summary="Check an invite code before registering")
    async def validate_invite(
        self, request: Request[Any, Any, Any], data: JSONBody[ValidateInviteRequest]
    ) -> dict[str, Any]:
        services = services_of(request)
        await services.throttle_ip(request, "auth-invite", services.settings.throttle_auth)
        return await services.runtime.identity.check_invite(data.code)
