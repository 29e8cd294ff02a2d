"""The Litestar application factory."""

from __future__ import annotations

import logging

from litestar import Litestar
from litestar.enums import ScopeType
from litestar.middleware.base import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from redis.asyncio import Redis

from cosmo.api import openapi
from cosmo.api.audit import AuditController
from cosmo.api.auth import AuthController
from cosmo.api.bookings import BookingsController
from cosmo.api.chat import ChatMessagesController, ChatParticipantsController, ChatRoomsController
from cosmo.api.chat_socket import chat_socket
from cosmo.api.checklists import ChecklistTemplatesController
from cosmo.api.deps import dependencies
from cosmo.api.edge import CosmoRequest, bounded_path_ids, redact_access_log, security_headers
from cosmo.api.errors import handle_exception
from cosmo.api.health import health, ready
from cosmo.api.invites import InvitesController
from cosmo.api.live import notifications_socket
from cosmo.api.notifications import DashboardController, NotificationsController
from cosmo.api.photos import PhotosController, media
from cosmo.api.properties import PropertiesController
from cosmo.api.security import JWTAuthMiddleware
from cosmo.api.state import Services
from cosmo.api.tasks import StaffTasksController, TasksController, list_tasks, task_detail
from cosmo.api.throttle import Throttle
from cosmo.api.users import UsersController
from cosmo.api.webhooks import WebhooksController
from cosmo.config import Settings, load_settings
from cosmo.runtime import Runtime

log = logging.getLogger("cosmo")


def create_app(
    settings: Settings | None = None, runtime: Runtime | None = None, run_projections: bool = True
) -> Litestar:
    settings = settings or load_settings()
    redact_access_log()
    own_runtime = runtime is None
    runtime = runtime or Runtime(settings)
    redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
    services = Services(
        settings=settings, runtime=runtime, throttle=Throttle(redis, settings.redis_prefix), redis=redis
    )

    async def startup() -> None:
        await runtime.open()
        runtime.start(run_projections=run_projections, serving=True)

    async def shutdown() -> None:
        await runtime.aclose()
        if redis is not None:
            await redis.aclose()
        if own_runtime:
            runtime.close()

    auth = DefineMiddleware(
        JWTAuthMiddleware, exclude=["^/api/schema"], exclude_from_auth_key="public", scopes={ScopeType.HTTP}
    )
    app = Litestar(
        route_handlers=[
            AuthController,
            UsersController,
            InvitesController,
            PropertiesController,
            BookingsController,
            ChecklistTemplatesController,
            TasksController,
            StaffTasksController,
            list_tasks,
            task_detail,
            PhotosController,
            media,
            NotificationsController,
            DashboardController,
            notifications_socket,
            ChatRoomsController,
            ChatMessagesController,
            ChatParticipantsController,
            chat_socket,
            WebhooksController,
            AuditController,
            health,
            ready,
        ],
        middleware=[bounded_path_ids, auth],
        dependencies=dependencies(services),
        request_class=CosmoRequest,
        before_send=[security_headers],
        exception_handlers={Exception: handle_exception},
        on_startup=[startup],
        on_shutdown=[shutdown],
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="Cosmo API",
            version="2.0",
            path="/api/schema",
            render_plugins=[SwaggerRenderPlugin()],
            components=Components(
                security_schemes={"BearerToken": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")}
            ),
            security=[{"BearerToken": []}],
        ),
        debug=False,
    )
    app.state.services = services
    openapi.install(app)
    return app


def create_app_from_env() -> Litestar:
    """uvicorn's factory for `cosmo serve`: one app (and runtime) per worker process."""
    import os

    return create_app(run_projections=os.environ.get("COSMO_SERVE_PROJECTIONS", "1") == "1")
