"""The invite codes read model: the projection and its queries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from cosmo.domain.actors import Actor, require_admin
from cosmo.domain.errors import NotFound
from cosmo.domain.identity import InviteCode
from cosmo.projections.base import Index, Projection, Table, handles, update_row
from cosmo.projections.queries import PageRequest, Reader, Slice, equals, order_clause, page_of
from cosmo.storage.db import Cursor

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


ALL = (InviteCodesProjection,)


class InviteOut(msgspec.Struct):
    id: int
    code: str
    task_group: str
    role: str
    max_uses: int
    used_count: int
    expires_at: datetime | None
    is_active: bool
    notes: str
    created_by: int
    created_at: datetime


class InviteFilters(msgspec.Struct):
    is_active: bool | None = None
    role: str | None = None


INVITE_SELECT = "id, code, role, task_group, max_uses, used_count, expires_at, is_active, notes, created_by, created_at"
INVITE_ORDERING = {"id": "id", "created_at": "created_at", "expires_at": "expires_at", "role": "role"}


def _invite(row: dict[str, Any]) -> InviteOut:
    return InviteOut(**{k: row[k] for k in InviteOut.__struct_fields__} | {"is_active": bool(row["is_active"])})


class InviteQueries:
    """Managers and superusers."""

    def __init__(self, read: Reader):
        self._read = read

    async def get(self, actor: Actor, invite_id: int) -> InviteOut:
        require_admin(actor.role)
        row = await self._read.fetchone(f"SELECT {INVITE_SELECT} FROM invite_codes_view WHERE id = %s", (invite_id,))
        if row is None:
            raise NotFound(f"invite {invite_id}")
        return _invite(row)

    async def page(self, actor: Actor, filters: InviteFilters, request: PageRequest) -> Slice[InviteOut]:
        require_admin(actor.role)
        where, params = equals(filters, {"is_active": "is_active", "role": "role"})
        return await page_of(
            self._read,
            request,
            select=INVITE_SELECT,
            from_where=f"FROM invite_codes_view WHERE {' AND '.join(['1 = 1', *where])}",
            params=params,
            order_by=order_clause(request.ordering, INVITE_ORDERING, "-created_at") + ", id DESC",
            shape=_invite,
        )
