"""What handlers receive through Litestar's dependency injection: one `ctx` per request, holding the acting user,
the read side's queries, the command families and the request-level services (throttles, tokens, read-your-writes).

One dependency rather than one per query or command family: Litestar resolves a handler's independent dependencies
concurrently in a task group, and that cost more than the handlers' own work on the cheap reads."""

from __future__ import annotations

from litestar.di import Provide
from litestar.exceptions import NotAuthorizedException
from litestar.types import Scope

from cosmo.api.state import Services
from cosmo.commands.bookings import BookingCommands
from cosmo.commands.chat import ChatCommands
from cosmo.commands.checklists import ChecklistCommands
from cosmo.commands.identity import IdentityCommands
from cosmo.commands.imports import ImportCommands
from cosmo.commands.inbox import InboxCommands
from cosmo.commands.photos import PhotoCommands
from cosmo.commands.properties import PropertyCommands
from cosmo.commands.tasks import TaskCommands
from cosmo.commands.webhooks import WebhookCommands
from cosmo.domain.actors import Actor
from cosmo.projections.audit.queries import AuditQueries
from cosmo.projections.bookings import BookingQueries
from cosmo.projections.chat.queries import ChatQueries
from cosmo.projections.checklists import TemplateQueries
from cosmo.projections.counts import CountQueries
from cosmo.projections.dashboard import DashboardQueries
from cosmo.projections.imports import ImportQueries
from cosmo.projections.invites import InviteQueries
from cosmo.projections.notifications import NotificationQueries
from cosmo.projections.properties import PropertyQueries
from cosmo.projections.tasks import TaskQueries
from cosmo.projections.users import UserQueries
from cosmo.projections.webhooks.queries import WebhookQueries


class Context:
    __slots__ = ("_scope", "services")

    def __init__(self, scope: Scope, services: Services):
        self._scope = scope
        self.services = services

    @property
    def actor(self) -> Actor:
        """The signed-in user, as commands and queries take them."""
        user = self._scope.get("user")
        if user is None:
            raise NotAuthorizedException("Authentication credentials were not provided.")
        return user.actor()

    # -- queries ---------------------------------------------------------------------------------------------------

    @property
    def users(self) -> UserQueries:
        return self.services.runtime.queries.users

    @property
    def invites(self) -> InviteQueries:
        return self.services.runtime.queries.invites

    @property
    def properties(self) -> PropertyQueries:
        return self.services.runtime.queries.properties

    @property
    def templates(self) -> TemplateQueries:
        return self.services.runtime.queries.templates

    @property
    def tasks(self) -> TaskQueries:
        return self.services.runtime.queries.tasks

    @property
    def counts(self) -> CountQueries:
        return self.services.runtime.queries.counts

    @property
    def notifications(self) -> NotificationQueries:
        return self.services.runtime.queries.notifications

    @property
    def dashboard(self) -> DashboardQueries:
        return self.services.runtime.queries.dashboard

    @property
    def bookings(self) -> BookingQueries:
        return self.services.runtime.queries.bookings

    @property
    def imports(self) -> ImportQueries:
        return self.services.runtime.queries.imports

    @property
    def chat(self) -> ChatQueries:
        return self.services.runtime.queries.chat

    @property
    def audit(self) -> AuditQueries:
        return self.services.runtime.queries.audit

    @property
    def webhooks(self) -> WebhookQueries:
        return self.services.runtime.queries.webhooks

    # -- commands --------------------------------------------------------------------------------------------------

    @property
    def identity(self) -> IdentityCommands:
        return self.services.runtime.commands.identity

    @property
    def property_commands(self) -> PropertyCommands:
        return self.services.runtime.commands.properties

    @property
    def checklist_commands(self) -> ChecklistCommands:
        return self.services.runtime.commands.checklists

    @property
    def task_commands(self) -> TaskCommands:
        return self.services.runtime.commands.tasks

    @property
    def photo_commands(self) -> PhotoCommands:
        return self.services.runtime.commands.photos

    @property
    def inbox(self) -> InboxCommands:
        return self.services.runtime.commands.inbox

    @property
    def booking_commands(self) -> BookingCommands:
        return self.services.runtime.commands.bookings

    @property
    def import_commands(self) -> ImportCommands:
        return self.services.runtime.commands.imports

    @property
    def chat_commands(self) -> ChatCommands:
        return self.services.runtime.commands.chat

    @property
    def webhook_commands(self) -> WebhookCommands:
        return self.services.runtime.commands.webhooks


def dependencies(services: Services) -> dict[str, Provide]:
    def ctx(scope: Scope) -> Context:  # the scope, not the request: WebSocket handlers take it too
        return Context(scope, services)

    return {"ctx": Provide(ctx, sync_to_thread=False)}
