"""Webhooks: superusers only (the commands and queries decide)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from msgspec import UNSET, UnsetType

from cosmo.api.deps import Context
from cosmo.api.pages import Page
from cosmo.api.params import PageParam, PageSizeParam, choice, choices, moment, page_request
from cosmo.api.wire import given, text
from cosmo.domain.errors import NotFound, ValidationFailed
from cosmo.domain.webhooks import DESCRIPTION_MAX, EVENT_TYPES, URL_MAX
from cosmo.projections.webhooks.queries import (
    DELIVERY_STATUSES,
    DeliveryFilters,
    DeliveryOut,
    Requested,
    SecretOut,
    WebhookCreated,
    WebhookOut,
)

EventTypes = Annotated[
    list[Annotated[str, msgspec.Meta(max_length=50)]],
    msgspec.Meta(max_length=len(EVENT_TYPES), extra_json_schema={"items": {"enum": list(EVENT_TYPES)}}),
]
DELIVERY_ID_MAX = 100


class CreateWebhookRequest(msgspec.Struct, forbid_unknown_fields=True):
    url: text(URL_MAX)
    event_types: EventTypes = []
    is_active: bool = True
    description: text(DESCRIPTION_MAX) = ""


class UpdateWebhookRequest(msgspec.Struct, forbid_unknown_fields=True):
    url: text(URL_MAX) | UnsetType = UNSET
    event_types: EventTypes | UnsetType = UNSET
    is_active: bool | UnsetType = UNSET
    description: text(DESCRIPTION_MAX) | UnsetType = UNSET


class ReplayRequest(msgspec.Struct, forbid_unknown_fields=True):
    since: Annotated[str, msgspec.Meta(max_length=40, description="ISO 8601 date and time (UTC when no offset).")]


StatusParam = Annotated[str | None, choices("Only deliveries in this status.", DELIVERY_STATUSES)]


class WebhooksController(Controller):
    path = "/api/webhooks"
    tags = ["webhooks"]

    @get("/", summary="List webhook endpoints (superusers)")
    async def list_webhooks(
        self,
        request: Request[Any, Any, Any],
        ctx: NamedDependency[Context],
        page: PageParam = None,
        page_size: PageSizeParam = None,
    ) -> Page[WebhookOut]:
        return ctx.services.page(request, await ctx.webhooks.page(ctx.actor, page_request(page, page_size, None)))

    @post("/", status_code=201, summary="Register a webhook endpoint; the answer shows its signing secret, once")
    async def create_webhook(
        self, data: JSONBody[CreateWebhookRequest], ctx: NamedDependency[Context]
    ) -> WebhookCreated:
        webhook_id, secret = await ctx.services.run(
            ctx.webhook_commands.create(ctx.actor, msgspec.structs.asdict(data))
        )
        shown = await ctx.webhooks.detail(ctx.actor, webhook_id)
        return WebhookCreated(**msgspec.structs.asdict(shown), secret=secret)

    @get("/{webhook_id:int}/", summary="A webhook endpoint")
    async def get_webhook(self, webhook_id: FromPath[int], ctx: NamedDependency[Context]) -> WebhookOut:
        return await ctx.webhooks.detail(ctx.actor, webhook_id)

    @patch("/{webhook_id:int}/", summary="Change a webhook endpoint")
    async def update_webhook(
        self, webhook_id: FromPath[int], data: JSONBody[UpdateWebhookRequest], ctx: NamedDependency[Context]
    ) -> WebhookOut:
        changes = given(data, *UpdateWebhookRequest.__struct_fields__)
        await ctx.services.run(ctx.webhook_commands.update(ctx.actor, webhook_id, changes))
        return await ctx.webhooks.detail(ctx.actor, webhook_id)

    @delete("/{webhook_id:int}/", status_code=204, summary="Delete a webhook endpoint (its undelivered messages too)")
    async def delete_webhook(self, webhook_id: FromPath[int], ctx: NamedDependency[Context]) -> None:
        await ctx.services.run(ctx.webhook_commands.delete(ctx.actor, webhook_id))

    @post(
        "/{webhook_id:int}/rotate-secret/",
        status_code=200,
        summary="A new signing secret; the old one keeps signing beside it for 24 hours",
    )
    async def rotate_secret(self, webhook_id: FromPath[int], ctx: NamedDependency[Context]) -> SecretOut:
        secret = await ctx.services.run(ctx.webhook_commands.rotate_secret(ctx.actor, webhook_id))
        shown = await ctx.webhooks.detail(ctx.actor, webhook_id)
        return SecretOut(secret=secret, previous_secret_expires_at=shown.previous_secret_expires_at)

    @get("/{webhook_id:int}/deliveries/", summary="An endpoint's deliveries, newest first")
    async def list_deliveries(
        self,
        request: Request[Any, Any, Any],
        webhook_id: FromPath[int],
        ctx: NamedDependency[Context],
        status: StatusParam = None,
        page: PageParam = None,
        page_size: PageSizeParam = None,
    ) -> Page[DeliveryOut]:
        filters = DeliveryFilters(choice("status", status, DELIVERY_STATUSES))
        found = await ctx.webhooks.deliveries(ctx.actor, webhook_id, filters, page_request(page, page_size, None))
        return ctx.services.page(request, found)

    @post(
        "/{webhook_id:int}/deliveries/{delivery_id:str}/redeliver/",
        status_code=202,
        summary="Send a delivery's message again (same webhook-id)",
    )
    async def redeliver(
        self, webhook_id: FromPath[int], delivery_id: FromPath[str], ctx: NamedDependency[Context]
    ) -> Requested:
        if len(delivery_id) > DELIVERY_ID_MAX:
            raise NotFound(f"delivery {delivery_id[:DELIVERY_ID_MAX]}")
        found = await ctx.webhooks.delivery(ctx.actor, webhook_id, delivery_id)
        request_id = await ctx.services.run(ctx.webhook_commands.redeliver(ctx.actor, webhook_id, found.message_id))
        return await ctx.webhooks.requested(ctx.actor, str(request_id))

    @post("/{webhook_id:int}/test/", status_code=202, summary="Send a webhook.test event")
    async def test_webhook(self, webhook_id: FromPath[int], ctx: NamedDependency[Context]) -> Requested:
        request_id = await ctx.services.run(ctx.webhook_commands.test(ctx.actor, webhook_id))
        return await ctx.webhooks.requested(ctx.actor, str(request_id))

    @post("/{webhook_id:int}/replay/", status_code=202, summary="Send again every matching event after `since`")
    async def replay(
        self, webhook_id: FromPath[int], data: JSONBody[ReplayRequest], ctx: NamedDependency[Context]
    ) -> Requested:
        since = moment("since", data.since)  # refuses control characters as every time parameter does
        if since is None:
            raise ValidationFailed.one("since", "This field is required.")
        request_id = await ctx.services.run(ctx.webhook_commands.replay(ctx.actor, webhook_id, since))
        return await ctx.webhooks.requested(ctx.actor, str(request_id))
