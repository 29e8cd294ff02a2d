"""Who is acting: what the aggregates' permission rules look at."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Actor:
    id: int
    role: str
    task_group: str
