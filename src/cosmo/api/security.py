"""Authentication: a JWT bearer token on every route not marked `opt={"public": True}`, the per-user rate limit,
and the signed-in user (`request.user`, an `AuthUser`). Authorization is not decided here but by the commands and
queries, which take the acting user."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from cosmo.api.state import services_of
from cosmo.auth.tokens import Claims, InvalidToken
from cosmo.projections.users import AuthUser

NO_CREDENTIALS = "Authentication credentials were not provided."


async def user_for_claims(connection: ASGIConnection[Any, Any, Any, Any], claims: Claims) -> AuthUser:
    """The active user a token names. Read on every request, so deactivation and password changes take effect at
    once: a token issued before the password changed is refused."""
    user = await services_of(connection).runtime.queries.users.authenticated(claims.user_id)
    if user is None or not user.is_active:
        raise NotAuthorizedException("User not found or inactive.")
    changed = user.password_changed_at
    if changed is not None and claims.issued_at.timestamp() < int(changed.timestamp()):
        raise NotAuthorizedException("Token is invalid or expired")
    return user


def bearer_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthorizedException(NO_CREDENTIALS)
    return token.strip()


class JWTAuthMiddleware(AbstractAuthenticationMiddleware):
    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        services = services_of(connection)
        try:
            claims = services.tokens.decode(bearer_token(connection), "access")
        except InvalidToken as exc:
            raise NotAuthorizedException("Given token not valid for any token type") from exc
        # Counted before the user lookup so a flood of requests costs no database work once over the limit.
        await services.throttle.hit("user", str(claims.user_id), services.settings.throttle_user)
        user = await user_for_claims(connection, claims)
        return AuthenticationResult(user=user, auth=claims)
