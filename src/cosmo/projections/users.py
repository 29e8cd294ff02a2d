"""The users read model: the users projection (lists, login, authentication) and its queries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from cosmo.domain.actors import Actor, require_admin
from cosmo.domain.errors import NotFound
from cosmo.domain.identity import User
from cosmo.projections.base import Index, Projection, Table, handles, update_row
from cosmo.projections.queries import PageRequest, Reader, Slice, equals, like, order_clause, page_of
from cosmo.storage.db import Cursor

USER_COLUMNS = """
    id bigint NOT NULL,
    uuid text NOT NULL,
    username text NOT NULL,
    username_key text NOT NULL,
    email text NOT NULL,
    email_key text,
    first_name text NOT NULL,
    last_name text NOT NULL,
    role text NOT NULL,
    task_group text NOT NULL,
    is_active boolean NOT NULL,
    password_hash text NOT NULL,
    password_changed_at timestamptz,
    date_joined timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
"""


class UsersProjection(Projection):
    name = "users"
    version = 1
    tables = (
        Table(
            "users_view",
            USER_COLUMNS,
            "id",
            (
                Index("uuid", "uuid", unique=True),
                Index("username", "username_key", unique=True),
                Index("email", "email_key"),
                Index("role", "role, task_group"),
            ),
        ),
    )

    @handles(User.Registered)
    def registered(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        cur.execute(
            f"INSERT INTO {t['users_view']} (id, uuid, username, username_key, email, email_key, first_name,"
            " last_name, role, task_group, is_active, password_hash, password_changed_at, date_joined, updated_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, NULL, %s, %s)",
            (
                e.user_id,
                str(e.originator_id),
                e.username,
                e.username.lower(),
                e.email,
                e.email.lower() or None,
                e.first_name,
                e.last_name,
                e.role,
                e.task_group,
                True,
                e.password_hash,
                e.timestamp,
                e.timestamp,
            ),
        )

    @staticmethod
    def _changed(cur: Cursor, table: str, e: Any, changes: dict[str, Any], at: datetime) -> None:
        columns = dict(changes)
        if "email" in columns:
            columns["email_key"] = columns["email"].lower() or None
        columns["updated_at"] = at
        update_row(cur, table, columns, "uuid", str(e.originator_id))

    @handles(User.ProfileUpdated)
    def changed(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        self._changed(cur, t["users_view"], e, e.changes, e.timestamp)

    @handles(User.AccessChanged)
    def access_changed(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        self._changed(cur, t["users_view"], e, e.changes, e.timestamp)
        if e.changes.get("is_active") is False:
            self.emit("session_ended", str(e.originator_id))

    @handles(User.PasswordChanged)
    def password_changed(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        changes = {"password_hash": e.password_hash, "password_changed_at": e.timestamp}
        self._changed(cur, t["users_view"], e, changes, e.timestamp)
        self.emit("session_ended", str(e.originator_id))


ALL = (UsersProjection,)


# -- what the queries answer -------------------------------------------------------------------------------------


class Profile(msgspec.Struct):
    role: str
    task_group: str


class UserOut(msgspec.Struct):
    id: int
    username: str
    email: str
    first_name: str
    last_name: str
    is_active: bool
    profile: Profile


class RegisteredUser(msgspec.Struct):
    """The contract's registration body: a user without `is_active`."""

    id: int
    username: str
    email: str
    first_name: str
    last_name: str
    profile: Profile


class AuthUser(msgspec.Struct):
    """Who is signed in: what authentication checks and what requests act as."""

    id: int
    username: str
    email: str
    first_name: str
    last_name: str
    role: str
    task_group: str
    is_active: bool
    password_changed_at: datetime | None
    date_joined: datetime

    def actor(self) -> Actor:
        return Actor(self.id, self.role, self.task_group)

    def out(self) -> UserOut:
        return UserOut(
            self.id,
            self.username,
            self.email,
            self.first_name,
            self.last_name,
            self.is_active,
            Profile(self.role, self.task_group),
        )


class Login(msgspec.Struct):
    id: int
    is_active: bool
    password_hash: str


class UserFilters(msgspec.Struct):
    role: str | None = None
    task_group: str | None = None
    is_active: bool | None = None
    search: str = ""


AUTH_COLUMNS = (
    "id, username, email, first_name, last_name, role, task_group, is_active, password_changed_at, date_joined"
)
USER_ORDERING = {
    "id": "id",
    "username": "username_key",
    "email": "email_key",
    "first_name": "first_name",
    "last_name": "last_name",
    "role": "role",
    "date_joined": "date_joined",
}


def _auth_user(row: dict[str, Any]) -> AuthUser:
    return AuthUser(**{k: row[k] for k in AuthUser.__struct_fields__} | {"is_active": bool(row["is_active"])})


class UserQueries:
    def __init__(self, read: Reader):
        self._read = read

    async def authenticated(self, user_id: int) -> AuthUser | None:
        row = await self._read.fetchone(f"SELECT {AUTH_COLUMNS} FROM users_view WHERE id = %s", (user_id,))
        return _auth_user(row) if row is not None else None

    async def login(self, name: str) -> Login | None:
        """The user whose username or email (case-insensitively) is `name`; a username match first."""
        key = name.strip().lower()
        row = await self._read.fetchone(
            "SELECT id, is_active, password_hash FROM users_view WHERE username_key = %s OR email_key = %s "
            "ORDER BY CASE WHEN username_key = %s THEN 0 ELSE 1 END LIMIT 1",
            (key, key, key),
        )
        return Login(int(row["id"]), bool(row["is_active"]), row["password_hash"]) if row is not None else None

    async def _one(self, user_id: int) -> AuthUser:
        user = await self.authenticated(user_id)
        if user is None:
            raise NotFound(f"user {user_id}")
        return user

    async def me(self, user_id: int) -> UserOut:
        return (await self._one(user_id)).out()

    async def registered(self, user_id: int) -> RegisteredUser:
        user = await self._one(user_id)
        return RegisteredUser(
            user.id, user.username, user.email, user.first_name, user.last_name, Profile(user.role, user.task_group)
        )

    async def get(self, actor: Actor, user_id: int) -> UserOut:
        """Managers and superusers."""
        require_admin(actor.role)
        return await self.me(user_id)

    async def page(self, actor: Actor, filters: UserFilters, request: PageRequest) -> Slice[UserOut]:
        """Managers and superusers."""
        require_admin(actor.role)
        where, params = equals(filters, {c: c for c in ("role", "task_group", "is_active")})
        if filters.search:
            where.append(
                "(username_key LIKE %s ESCAPE '\\' OR lower(email) LIKE %s ESCAPE '\\'"
                " OR lower(first_name) LIKE %s ESCAPE '\\' OR lower(last_name) LIKE %s ESCAPE '\\')"
            )
            params.extend([like(filters.search)] * 4)
        return await page_of(
            self._read,
            request,
            select=AUTH_COLUMNS,
            from_where=f"FROM users_view WHERE {' AND '.join(['1 = 1', *where])}",
            params=params,
            order_by=order_clause(request.ordering, USER_ORDERING, "id") + ", id",
            shape=lambda row: _auth_user(row).out(),
        )
