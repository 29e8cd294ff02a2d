"""The checklist templates read model: the projection and its queries."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import msgspec

from cosmo.domain.checklists import ChecklistTemplate
from cosmo.domain.errors import NotFound
from cosmo.projections.base import Index, Projection, Table, handles, update_row
from cosmo.projections.queries import PageRequest, Reader, Slice, equals, order_clause, page_of
from cosmo.storage.db import Cursor

TEMPLATE_COLUMNS = """
    id bigint NOT NULL,
    uuid text NOT NULL,
    name text NOT NULL,
    task_type text NOT NULL,
    is_default boolean NOT NULL,
    items text NOT NULL,
    is_deleted boolean NOT NULL,
    created_by bigint NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
"""


class ChecklistTemplatesProjection(Projection):
    name = "checklist_templates"
    version = 1
    tables = (
        Table(
            "checklist_templates_view",
            TEMPLATE_COLUMNS,
            "id",
            (Index("uuid", "uuid", unique=True), Index("type", "task_type, is_deleted")),
        ),
    )

    @handles(ChecklistTemplate.Created)
    def created(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        cur.execute(
            f"INSERT INTO {t['checklist_templates_view']} (id, uuid, name, task_type, is_default, items, is_deleted,"
            " created_by, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                e.template_id,
                str(e.originator_id),
                e.name,
                e.task_type,
                e.is_default,
                json.dumps(e.items),
                False,
                e.actor_id,
                e.timestamp,
                e.timestamp,
            ),
        )

    @handles(ChecklistTemplate.Updated)
    def updated(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        columns = {k: (json.dumps(v) if k == "items" else v) for k, v in e.changes.items()}
        columns["updated_at"] = e.timestamp
        update_row(cur, t["checklist_templates_view"], columns, "uuid", str(e.originator_id))

    @handles(ChecklistTemplate.Deleted)
    def deleted(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        cur.execute(
            f"UPDATE {t['checklist_templates_view']} SET is_deleted = %s, is_default = %s, updated_at = %s"
            " WHERE uuid = %s",
            (True, False, e.timestamp, str(e.originator_id)),
        )


ALL = (ChecklistTemplatesProjection,)


class TemplateItemOut(msgspec.Struct):
    id: int
    text: str
    item_type: str
    is_required: bool
    room: str


class TemplateOut(msgspec.Struct):
    id: int
    name: str
    task_type: str
    is_default: bool
    items: list[TemplateItemOut]
    created_at: datetime
    updated_at: datetime


class TemplateFilters(msgspec.Struct):
    task_type: str | None = None
    is_default: bool | None = None


TEMPLATE_SELECT = "id, name, task_type, is_default, items, created_at, updated_at"
TEMPLATE_ORDERING = {"id": "id", "name": "name", "task_type": "task_type", "created_at": "created_at"}
_items = msgspec.json.Decoder(list[TemplateItemOut])


def _template(row: dict[str, Any]) -> TemplateOut:
    return TemplateOut(
        id=row["id"],
        name=row["name"],
        task_type=row["task_type"],
        is_default=bool(row["is_default"]),
        items=_items.decode(row["items"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class TemplateQueries:
    """Every signed-in user reads templates; deleted ones are gone (404)."""

    def __init__(self, read: Reader):
        self._read = read

    async def get(self, template_id: int) -> TemplateOut:
        row = await self._read.fetchone(
            f"SELECT {TEMPLATE_SELECT} FROM checklist_templates_view WHERE id = %s AND NOT is_deleted", (template_id,)
        )
        if row is None:
            raise NotFound(f"checklist template {template_id}")
        return _template(row)

    async def page(self, filters: TemplateFilters, request: PageRequest) -> Slice[TemplateOut]:
        where, params = equals(filters, {"task_type": "task_type", "is_default": "is_default"})
        return await page_of(
            self._read,
            request,
            select=TEMPLATE_SELECT,
            from_where=f"FROM checklist_templates_view WHERE {' AND '.join(['NOT is_deleted', *where])}",
            params=params,
            order_by=order_clause(request.ordering, TEMPLATE_ORDERING, "name") + ", id",
            shape=_template,
        )
