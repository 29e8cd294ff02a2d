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


def require_admin(role: str) -> None:
    """Superusers and managers only: the one place that says who administers."""
    if role not in ADMIN_ROLES:
        raise PermissionDenied("managers only")
