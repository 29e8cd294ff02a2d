"""Field checks shared by every aggregate: each returns the problems it found (empty when the value is fine), so a
command can report every bad field of a request at once."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def choice_error(value: str, valid: Sequence[str]) -> str:
    return f'"{value}" is not a valid choice. Valid choices: {", ".join(valid)}.'


def check_choice(value: str, valid: Sequence[str]) -> list[str]:
    return [] if value in valid else [choice_error(value, valid)]


def check_text(value: str, max_length: int, *, required: bool = False) -> list[str]:
    if required and not value.strip():
        return ["This field may not be blank."]
    if len(value) > max_length:
        return [f"Ensure this field has no more than {max_length} characters."]
    return []


def check_timezone(value: str) -> list[str]:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return [f'"{value}" is not a valid IANA time zone (e.g. "Europe/Lisbon", "UTC").']
    return []


Check = Callable[[Any], list[str]]


def field_problems(fields: Mapping[str, Any], checks: Mapping[str, Check]) -> dict[str, list[str]]:
    """Run the check of every field present (a create's fields or a PATCH's); only fields with problems appear."""
    found = {name: checks[name](value) for name, value in fields.items() if name in checks}
    return {name: messages for name, messages in found.items() if messages}


def changed(current: object, changes: Mapping[str, Any]) -> dict[str, Any]:
    """The changes that differ from the current values (an edit that changes nothing records no event)."""
    return {k: v for k, v in changes.items() if getattr(current, k) != v}
