"""Public identity endpoints: tokens, registration with an invite code, invite validation."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, post
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException
from litestar.params import JSONBody

from cosmo.api.deps import Context
from cosmo.api.security import user_for_claims
from cosmo.api.wire import Detail, RefreshRequest, RegisterRequest, TokenPair, TokenRequest, ValidateInviteRequest
from cosmo.auth.passwords import DUMMY_HASH, verify_password
from cosmo.auth.tokens import InvalidToken
from cosmo.commands.identity import InviteCheck
from cosmo.domain.checks import check_text
from cosmo.domain.errors import ValidationFailed
from cosmo.projections.users import RegisteredUser

BAD_CREDENTIALS = "No active account found with the given credentials"
LOGIN_MAX = 254  # a username or an email
PUBLIC = {"public": True}


class AuthController(Controller):
    path = "/api"
    tags = ["auth"]

    @post("/token/", status_code=200, opt=PUBLIC, summary="Obtain access and refresh tokens")
    async def obtain(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[TokenRequest],
        ctx: NamedDependency[Context],
    ) -> TokenPair:
        await ctx.services.throttle_ip(request, "auth-token", ctx.services.settings.throttle_auth)
        problems = check_text(data.username, LOGIN_MAX)
        if problems:
            raise ValidationFailed({"username": problems})
        login = await ctx.users.login(data.username)
        # Verify even for unknown ctx.users so response time does not reveal which usernames exist.
        ok = await ctx.services.call(verify_password, data.password, login.password_hash if login else DUMMY_HASH)
        if not (login and ok and login.is_active):
            raise NotAuthorizedException(BAD_CREDENTIALS)
        return TokenPair(**await ctx.services.call(ctx.services.tokens.issue_pair, login.id))

    @post("/token/refresh/", status_code=200, opt=PUBLIC, summary="Rotate a refresh token")
    async def refresh(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[RefreshRequest],
        ctx: NamedDependency[Context],
    ) -> TokenPair:
        tokens = ctx.services.tokens
        jti = tokens.unverified_jti(data.refresh)
        if jti:
            await ctx.services.throttle.hit("refresh", jti, ctx.services.settings.throttle_refresh)
        else:
            await ctx.services.throttle_ip(request, "refresh", ctx.services.settings.throttle_refresh)
        try:
            claims = await ctx.services.call(tokens.consume_refresh, data.refresh)
        except InvalidToken as exc:
            raise NotAuthorizedException(str(exc)) from exc
        await user_for_claims(request, claims)
        return TokenPair(**await ctx.services.call(tokens.issue_pair, claims.user_id))

    @post("/token/revoke/", status_code=200, opt=PUBLIC, summary="Revoke a refresh token")
    async def revoke(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[RefreshRequest],
        ctx: NamedDependency[Context],
    ) -> Detail:
        await ctx.services.throttle_ip(request, "auth-revoke", ctx.services.settings.throttle_auth)
        try:
            await ctx.services.call(ctx.services.tokens.revoke, data.refresh)
        except InvalidToken as exc:
            raise NotAuthorizedException(str(exc)) from exc
        return Detail("Token revoked")

    @post("/register/", status_code=201, opt=PUBLIC, summary="Register with an invite code")
    async def register(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[RegisterRequest],
        ctx: NamedDependency[Context],
    ) -> RegisteredUser:
        await ctx.services.throttle_ip(request, "auth-register", ctx.services.settings.throttle_auth)
        user_id = await ctx.services.run(ctx.identity.register(msgspec.structs.asdict(data)))
        return await ctx.users.registered(user_id)

    @post("/validate-invite/", status_code=200, opt=PUBLIC, summary="Check an invite code before registering")
    async def validate_invite(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[ValidateInviteRequest],
        ctx: NamedDependency[Context],
    ) -> InviteCheck:
        await ctx.services.throttle_ip(request, "auth-invite", ctx.services.settings.throttle_auth)
        return await ctx.identity.check_invite(data.code)
