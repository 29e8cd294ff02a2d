"""Who is acting: what the aggregates' permission rules look at."""

from __future__ import annotations

from dataclasses import dataclass

from cosmo.domain.errors import PermissionDenied
from cosmo.domain.identity import ADMIN_ROLES


@dataclass(frozen=True, slots=True)
class Actor:
    id: int
    role: str
    task_group: str

    @property
    def is_admin(self) -> bool:
        return self.role in ADMIN_ROLES


# The operator at the command line (`cosmo createsuperuser`): no user, but trusted like a superuser.
SYSTEM = Actor(0, "system", "none")


def require_admin(role: str) -> None:
    """Superusers and managers only (and the system itself: the CLI's operator, the policies): the one place that
    says who administers."""
    if role not in ADMIN_ROLES and role != SYSTEM.role:
        raise PermissionDenied("managers only")


def require_superuser(actor: Actor) -> None:
    if actor.role not in ("superuser", SYSTEM.role):
        raise PermissionDenied("superusers only")
