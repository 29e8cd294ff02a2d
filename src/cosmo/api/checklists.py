"""Checklist templates: superusers and managers write; every signed-in user may read them."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from msgspec import UNSET, UnsetType

from cosmo.api.deps import Context
from cosmo.api.pages import Page
from cosmo.api.params import BoolParam, PageParam, PageSizeParam, boolean, choice, choices, ordering_param, page_request
from cosmo.api.wire import documented, given, one_of
from cosmo.api.wire import text as max_text
from cosmo.domain.checklists import ITEM_TEXT_MAX, ITEM_TYPES, MAX_ITEMS, NAME_MAX, ROOM_MAX, TASK_TYPES
from cosmo.projections.checklists import TEMPLATE_ORDERING, TemplateFilters, TemplateOut


class TemplateItem(msgspec.Struct, forbid_unknown_fields=True):
    text: max_text(ITEM_TEXT_MAX)
    item_type: one_of(ITEM_TYPES) = "check"
    is_required: bool = False
    room: max_text(ROOM_MAX) = ""


Items = documented(list[TemplateItem], max_items=MAX_ITEMS)


class CreateTemplateRequest(msgspec.Struct, forbid_unknown_fields=True):
    name: max_text(NAME_MAX)
    task_type: one_of(TASK_TYPES)
    items: Items = []
    is_default: bool = False


class UpdateTemplateRequest(msgspec.Struct, forbid_unknown_fields=True):
    """`items`, when given, replaces the whole list."""

    name: max_text(NAME_MAX) | UnsetType = UNSET
    task_type: one_of(TASK_TYPES) | UnsetType = UNSET
    items: Items | UnsetType = UNSET
    is_default: bool | UnsetType = UNSET


def _fields(data: CreateTemplateRequest | UpdateTemplateRequest) -> dict[str, Any]:
    fields = given(data, "name", "task_type", "items", "is_default")
    if "items" in fields:
        fields["items"] = [msgspec.structs.asdict(item) for item in fields["items"]]
    return fields


TypeParam = Annotated[str | None, choices("Only templates for this task type.", TASK_TYPES)]
TemplateOrdering = ordering_param(TEMPLATE_ORDERING, "name")


class ChecklistTemplatesController(Controller):
    path = "/api/checklist-templates"
    tags = ["checklists"]

    @get("/", summary="List checklist templates")
    async def list_templates(
        self,
        request: Request[Any, Any, Any],
        ctx: NamedDependency[Context],
        task_type: TypeParam = None,
        is_default: BoolParam = None,
        ordering: TemplateOrdering = None,
        page: PageParam = None,
        page_size: PageSizeParam = None,
    ) -> Page[TemplateOut]:
        filters = TemplateFilters(choice("task_type", task_type, TASK_TYPES), boolean("is_default", is_default))
        return ctx.services.page(request, await ctx.templates.page(filters, page_request(page, page_size, ordering)))

    @post("/", status_code=201, summary="Create a checklist template")
    async def create_template(
        self,
        data: JSONBody[CreateTemplateRequest],
        ctx: NamedDependency[Context],
    ) -> TemplateOut:
        template_id = await ctx.services.run(ctx.checklist_commands.create(ctx.actor, _fields(data)))
        return await ctx.templates.get(template_id)

    @get("/{template_id:int}/", summary="A checklist template")
    async def get_template(
        self,
        template_id: FromPath[int],
        ctx: NamedDependency[Context],
    ) -> TemplateOut:
        return await ctx.templates.get(template_id)

    @patch("/{template_id:int}/", summary="Change a template (existing tasks keep their checklists)")
    async def update_template(
        self,
        template_id: FromPath[int],
        data: JSONBody[UpdateTemplateRequest],
        ctx: NamedDependency[Context],
    ) -> TemplateOut:
        await ctx.services.run(ctx.checklist_commands.update(ctx.actor, template_id, _fields(data)))
        return await ctx.templates.get(template_id)

    @delete("/{template_id:int}/", status_code=204, summary="Delete a template (existing tasks keep their checklists)")
    async def delete_template(
        self,
        template_id: FromPath[int],
        ctx: NamedDependency[Context],
    ) -> None:
        await ctx.services.run(ctx.checklist_commands.delete(ctx.actor, template_id))
