"""Checklist templates: superusers and managers write; every signed-in user may read them."""

from __future__ import annotations

import json
from typing import Any

import msgspec
from litestar import Controller, Request, delete, get, patch, post
from litestar.params import FromPath, JSONBody
from msgspec import UNSET, UnsetType

from cosmo.api.pagination import ordering, paginate, query_bool, query_choice
from cosmo.api.security import CurrentUser
from cosmo.api.state import services_of
from cosmo.api.wire import given
from cosmo.domain.checklists import TASK_TYPES
from cosmo.domain.errors import NotFound


class TemplateItem(msgspec.Struct, forbid_unknown_fields=True):
    text: str
    item_type: str = "check"
    is_required: bool = False
    room: str = ""


class CreateTemplateRequest(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    task_type: str
    items: list[TemplateItem] = []
    is_default: bool = False


class UpdateTemplateRequest(msgspec.Struct, forbid_unknown_fields=True):
    name: str | UnsetType = UNSET
    task_type: str | UnsetType = UNSET
    items: list[TemplateItem] | UnsetType = UNSET
    is_default: bool | UnsetType = UNSET


TEMPLATE_SELECT = "id, name, task_type, is_default, items, created_at, updated_at"
TEMPLATE_ORDERING = {"id": "id", "name": "name", "task_type": "task_type", "created_at": "created_at"}


def template_out(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "task_type": row["task_type"],
        "is_default": bool(row["is_default"]),
        "items": json.loads(row["items"]),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def _items(items: list[TemplateItem]) -> list[dict[str, Any]]:
    return [msgspec.structs.asdict(item) for item in items]


async def _template(request: Request[Any, Any, Any], template_id: int) -> dict[str, Any]:
    row = await services_of(request).reader.fetchone(
        f"SELECT {TEMPLATE_SELECT} FROM checklist_templates_view WHERE id = %s AND NOT is_deleted", (template_id,)
    )
    if row is None:
        raise NotFound(f"checklist template {template_id}")
    return template_out(row)


class ChecklistTemplatesController(Controller):
    path = "/api/checklist-templates"
    tags = ["checklists"]

    @get("/", summary="List checklist templates")
    async def list_templates(self, request: Request[CurrentUser, Any, Any]) -> dict[str, Any]:
        where, params = ["NOT is_deleted"], []
        task_type = query_choice(request, "task_type", TASK_TYPES)
        if task_type:
            where.append("task_type = %s")
            params.append(task_type)
        is_default = query_bool(request, "is_default")
        if is_default is not None:
            where.append("is_default = %s")
            params.append(is_default)
        return await paginate(
            request,
            services_of(request).reader,
            select=TEMPLATE_SELECT,
            from_where=f"FROM checklist_templates_view WHERE {' AND '.join(where)}",
            params=params,
            order_by=ordering(request, TEMPLATE_ORDERING, "name") + ", id",
            shape=template_out,
        )

    @post("/", status_code=201, summary="Create a checklist template")
    async def create_template(
        self, request: Request[CurrentUser, Any, Any], data: JSONBody[CreateTemplateRequest]
    ) -> dict[str, Any]:
        services = services_of(request)
        commands, actor = services.runtime.checklists, request.user.actor()
        fields = {"name": data.name, "task_type": data.task_type, "is_default": data.is_default}
        fields["items"] = _items(data.items)
        template_id = await services.run(commands.create(actor, fields))
        return await _template(request, template_id)

    @get("/{template_id:int}/", summary="A checklist template")
    async def get_template(self, request: Request[CurrentUser, Any, Any], template_id: FromPath[int]) -> dict[str, Any]:
        return await _template(request, template_id)

    @patch("/{template_id:int}/", summary="Change a template (existing tasks keep their checklists)")
    async def update_template(
        self,
        request: Request[CurrentUser, Any, Any],
        template_id: FromPath[int],
        data: JSONBody[UpdateTemplateRequest],
    ) -> dict[str, Any]:
        services = services_of(request)
        commands, actor = services.runtime.checklists, request.user.actor()
        changes = given(data, "name", "task_type", "is_default")
        if data.items is not UNSET:
            changes["items"] = _items(data.items)
        await services.run(commands.update(actor, template_id, changes))
        return await _template(request, template_id)

    @delete("/{template_id:int}/", status_code=204, summary="Delete a template (existing tasks keep their checklists)")
    async def delete_template(self, request: Request[CurrentUser, Any, Any], template_id: FromPath[int]) -> None:
        services = services_of(request)
        commands, actor = services.runtime.checklists, request.user.actor()
        await services.run(commands.delete(actor, template_id))
