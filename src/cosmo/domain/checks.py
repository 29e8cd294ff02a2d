"""The field types every command accepts, as checks: text, integers, dates and times, choices, time zones.

Each check returns the problems it found (empty when the value is fine), so a command can report every bad field
of a request at once. The bounds are what both databases store and every projection can write: a value that
passed here can never stall the read side (see `storage.db.storable` for what projections do with older events).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# 64-bit signed: SQLite's INTEGER and PostgreSQL's bigint.
MIN_INT = -(2**63)
MAX_INT = 2**63 - 1
# Dates and times, after normalising to UTC. Four-digit years keep SQLite's text timestamps in time order.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
MOMENT_RANGE = "Enter a date and time between 1900-01-01 and 9999-12-31 (UTC)."

# Control characters (NUL included: PostgreSQL text cannot hold it) and lone surrogates (not encodable as UTF-8).
# Multi-line text may keep tab, line feed and carriage return.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_CONTROL_MULTILINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
CONTROL_CHARACTERS = "Remove the control characters (such as NUL) from this field."


def choice_error(value: str, valid: Sequence[str]) -> str:
    return f'"{value}" is not a valid choice. Valid choices: {", ".join(valid)}.'


def check_choice(value: str, valid: Sequence[str]) -> list[str]:
    return [] if value in valid else [choice_error(clean_text(value)[:100], valid)]


def has_control(value: str, multiline: bool = False) -> bool:
    return (_CONTROL_MULTILINE if multiline else _CONTROL).search(value) is not None


def clean_text(value: str) -> str:
    """`value` with control characters replaced: safe to echo in a message."""
    return _CONTROL.sub("\ufffd", value)


def check_text(value: str, max_length: int, *, required: bool = False, multiline: bool = False) -> list[str]:
    if len(value) > max_length:
        return [f"Ensure this field has no more than {max_length} characters."]
    if has_control(value, multiline):
        return [CONTROL_CHARACTERS]
    if required and not value.strip():
        return ["This field may not be blank."]
    return []


def check_int(value: int, low: int = MIN_INT, high: int = MAX_INT) -> list[str]:
    if value < low:
        return [f"Ensure this value is greater than or equal to {low}."]
    if value > high:
        return [f"Ensure this value is less than or equal to {high}."]
    return []


def check_id(value: int | None) -> list[str]:
    """A reference to another object by its integer id (None: no reference)."""
    return [] if value is None else check_int(value, 1, MAX_INT)


def utc(moment: datetime) -> datetime | None:
    """`moment` in UTC (one without an offset is read as UTC), or None when that falls outside EARLIEST..LATEST."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:  # year 1 with a positive offset, or 9999 with a negative one
        return None
    return moment if EARLIEST <= moment <= LATEST else None


def check_moment(value: datetime | None) -> list[str]:
    return [] if value is None or utc(value) is not None else [MOMENT_RANGE]


def check_timezone(value: str) -> list[str]:
    if has_control(value) or len(value) > 100:
        return [f'"{clean_text(value)[:100]}" is not a valid IANA time zone (e.g. "Europe/Lisbon", "UTC").']
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
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
