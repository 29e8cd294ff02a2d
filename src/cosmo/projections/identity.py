"""Read models of identity: users (for lists, login and auth) and invite codes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cosmo.domain.identity import InviteCode, User
from cosmo.projections.base import Index, Projection, Table, handles, update_row
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

INVITE_COLUMNS = """
    id bigint NOT NULL,
    uuid text NOT NULL,
    code text NOT NULL,
    role text NOT NULL,
    task_group text NOT NULL,
    max_uses bigint NOT NULL,
    used_count bigint NOT NULL,
    expires_at timestamptz,
    is_active boolean NOT NULL,
    notes text NOT NULL,
    created_by bigint NOT NULL,
    created_at timestamptz NOT NULL
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


class InviteCodesProjection(Projection):
    name = "invite_codes"
    version = 2
    tables = (
        Table(
            "invite_codes_view",
            INVITE_COLUMNS,
            "id",
            (
                Index("uuid", "uuid", unique=True),
                Index("code", "code", unique=True),
                Index("created", "created_at"),
            ),
        ),
    )

    @handles(InviteCode.Created)
    def created(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        cur.execute(
            f"INSERT INTO {t['invite_codes_view']} (id, uuid, code, role, task_group, max_uses, used_count,"
            " expires_at, is_active, notes, created_by, created_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, 0, %s, %s, %s, %s, %s)",
            (
                e.invite_id,
                str(e.originator_id),
                e.code,
                e.role,
                e.task_group,
                e.max_uses,
                e.expires_at,
                True,
                e.notes,
                e.created_by,
                e.timestamp,
            ),
        )

    @handles(InviteCode.Used)
    def used(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        cur.execute(
            f"UPDATE {t['invite_codes_view']} SET used_count = used_count + 1 WHERE uuid = %s",
            (str(e.originator_id),),
        )

    @handles(InviteCode.Revoked)
    def revoked(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        update_row(cur, t["invite_codes_view"], {"is_active": False}, "uuid", str(e.originator_id))


ALL = (UsersProjection, InviteCodesProjection)
