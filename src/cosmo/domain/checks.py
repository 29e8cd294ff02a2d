"""Field checks shared by every aggregate: each returns the problems it found (empty when the value is fine), so a
command can report every bad field of a request at once."""

from __future__ import annotations

from collections.abc import Sequence
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
