"""Authentication (JWT bearer), the per-user rate limit, and role checks.

Every route requires a valid access token unless its handler is marked `opt={"public": True}`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from cosmo.api.state import services_of
from cosmo.auth.tokens import Claims, InvalidToken
from cosmo.domain.actors import Actor
from cosmo.domain.actors import require_admin as domain_require_admin
from cosmo.domain.identity import ADMIN_ROLES

USER_COLUMNS = (
    "id, username, email, first_name, last_name, role, task_group, is_active, password_changed_at, date_joined"
)
NO_CREDENTIALS = "Authentication credentials were not provided."


class CurrentUser:
    __slots__ = (
        "date_joined",
        "email",
        "first_name",
        "id",
        "is_active",
        "last_name",
        "role",
        "task_group",
        "username",
    )

    def __init__(self, row: dict[str, Any]):
        for name in self.__slots__:
            setattr(self, name, row[name])

    def as_row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    def actor(self) -> Actor:
        return Actor(self.id, self.role, self.task_group)

    @property
    def is_admin(self) -> bool:
        return self.role in ADMIN_ROLES


async def user_for_claims(connection: ASGIConnection[Any, Any, Any, Any], claims: Claims) -> CurrentUser:
    services = services_of(connection)
    row = await services.reader.fetchone(f"SELECT {USER_COLUMNS} FROM users_view WHERE id = %s", (claims.user_id,))
    if row is None or not row["is_active"]:
        raise NotAuthorizedException("User not found or inactive.")
    changed: datetime | None = row["password_changed_at"]
    if changed is not None and claims.issued_at.timestamp() < int(changed.timestamp()):
        raise NotAuthorizedException("Token is invalid or expired")
    return CurrentUser(row)


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
            claims = services.runtime.tokens.decode(bearer_token(connection), "access")
        except InvalidToken as exc:
            raise NotAuthorizedException("Given token not valid for any token type") from exc
        # Counted before the user lookup so a flood of requests costs no database work once over the limit.
        await services.throttle.hit("user", str(claims.user_id), services.settings.throttle_user)
        user = await user_for_claims(connection, claims)
        return AuthenticationResult(user=user, auth=claims)


def require_admin(user: CurrentUser) -> None:
    domain_require_admin(user.role)


def require_superuser(user: CurrentUser) -> None:
    if user.role != "superuser":
        raise PermissionDeniedException()
