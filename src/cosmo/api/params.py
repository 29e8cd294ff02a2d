"""Query parameters: how each is declared in the OpenAPI document, and how its text is decoded.

Parameters are declared as text (documented with their enum or pattern) and decoded here rather than by Litestar,
so a bad value is a 400 naming the parameter in the contract's words ("... is not a valid choice. Valid choices:
..."), and the strict rules hold: ASCII digits only (`str.isdigit()` and `int()` also take other scripts' digits),
64-bit integers, dates and times within the stated range.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from litestar.params import Parameter

from cosmo.domain.checks import MOMENT_RANGE, check_choice, check_int, check_text, has_control, utc
from cosmo.domain.errors import ValidationFailed
from cosmo.projections.queries import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, PageRequest

DIGITS = re.compile(r"[0-9]{1,18}")
INTEGER = re.compile(r"-?[0-9]{1,19}")
TRUE = ("true", "1", "yes")
FALSE = ("false", "0", "no")
SEARCH_MAX = 200


def described(description: str, **schema: Any) -> Parameter:  # type: ignore[valid-type]
    return Parameter(description=description, required=False, schema_extra=schema or None)


def choices(description: str, valid: Sequence[str]) -> Parameter:  # type: ignore[valid-type]
    return described(description, enum=list(valid))


POSITIVE = r"^(0*[1-9][0-9]*)?$"  # empty: the default
PageParam = Annotated[
    str | None, described("Page number, from 1; a page past the end is a 404.", pattern=POSITIVE, max_length=18)
]
PageSizeParam = Annotated[
    str | None,
    described(
        f"Items per page (default {DEFAULT_PAGE_SIZE}; above {MAX_PAGE_SIZE} means {MAX_PAGE_SIZE}).",
        pattern=POSITIVE,
        max_length=18,
    ),
]
SearchParam = Annotated[str | None, described("Text to look for (case-insensitive).", maxLength=SEARCH_MAX)]
BoolParam = Annotated[str | None, described("true or false.", enum=[*TRUE, *FALSE])]
IdParam = Annotated[str | None, described("An id.", pattern=r"^-?[0-9]{1,19}$")]
MomentParam = Annotated[
    str | None,
    described("ISO 8601 date or date and time (UTC when no offset), between 1900-01-01 and 9999-12-31."),
]


def ordering_param(fields: Sequence[str], default: str) -> Any:
    names = "|".join(sorted(fields))
    return Annotated[
        str | None,
        described(
            f"Comma-separated fields, `-` for descending: {', '.join(sorted(fields))} (default {default}).",
            pattern=rf"^-?({names})(,-?({names}))*$",
        ),
    ]


def _positive(name: str, raw: str | None, default: int) -> int:
    if raw is None or raw == "":
        return default
    if not DIGITS.fullmatch(raw) or int(raw) < 1:
        raise ValidationFailed.one(name, "A positive integer is required.")
    return int(raw)


def page_request(
    page: str | None, page_size: str | None, ordering: str | None, default_size: int = DEFAULT_PAGE_SIZE
) -> PageRequest:
    return PageRequest(_positive("page", page, 1), _positive("page_size", page_size, default_size), ordering or None)


def choice(name: str, raw: str | None, valid: Sequence[str]) -> str | None:
    if raw is None or raw == "":
        return None
    problems = check_choice(raw, valid)
    if problems:
        raise ValidationFailed({name: problems})
    return raw


def boolean(name: str, raw: str | None) -> bool | None:
    if raw is None or raw == "":
        return None
    if raw.lower() in TRUE:
        return True
    if raw.lower() in FALSE:
        return False
    raise ValidationFailed.one(name, "Must be true or false.")


def integer(name: str, raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    if not INTEGER.fullmatch(raw):
        raise ValidationFailed.one(name, "A valid integer is required.")
    problems = check_int(int(raw))
    if problems:
        raise ValidationFailed({name: problems})
    return int(raw)


def moment(name: str, raw: str | None) -> datetime | None:
    """ISO 8601; a date alone means its midnight, and a time without an offset is UTC."""
    if raw is None or raw == "":
        return None
    if has_control(raw):  # fromisoformat lets some through (a NUL before the zone)
        raise ValidationFailed.one(name, "Enter a valid ISO 8601 date/time, e.g. 2025-09-15T10:00:00Z.")
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise ValidationFailed.one(name, "Enter a valid ISO 8601 date/time, e.g. 2025-09-15T10:00:00Z.") from None
    found = utc(value)
    if found is None:
        raise ValidationFailed.one(name, MOMENT_RANGE)
    return found


def text(name: str, raw: str | None, max_length: int = SEARCH_MAX) -> str:
    """Free text such as `search`, stripped ("" when absent)."""
    value = (raw or "").strip()
    problems = check_text(value, max_length)
    if problems:
        raise ValidationFailed({name: problems})
    return value


_FORM_ID = re.compile(r"[0-9]{1,18}")


def form_id(name: str, raw: str | None) -> int | None:
    """An id sent as a multipart form field (text): empty is none."""
    value = (raw or "").strip()
    if not value:
        return None
    if not _FORM_ID.fullmatch(value):
        raise ValidationFailed.one(name, "A valid integer is required.")
    return int(value)
