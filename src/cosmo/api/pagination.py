"""The contract's pagination ({count, next, previous, results}), `ordering`, and strict query parsing."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from litestar import Request
from litestar.exceptions import NotFoundException

from cosmo.api.state import services_of
from cosmo.domain.checks import MOMENT_RANGE, check_choice, check_int, check_text, clean_text, utc
from cosmo.domain.errors import ValidationFailed
from cosmo.storage.db import AsyncDatabase

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
TRUE = {"true", "1", "yes"}
FALSE = {"false", "0", "no"}


# ASCII digits only: str.isdigit() and int() also take other scripts' digits, and int() refuses 4,300+ of them.
DIGITS = re.compile(r"[0-9]{1,18}")
INTEGER = re.compile(r"-?[0-9]{1,19}")
SEARCH_MAX = 200


def _positive_int(request: Request[Any, Any, Any], name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not DIGITS.fullmatch(raw) or int(raw) < 1:
        raise ValidationFailed.one(name, "A positive integer is required.")
    return int(raw)


def query_choice(request: Request[Any, Any, Any], name: str, valid: Sequence[str]) -> str | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    problems = check_choice(raw, valid)
    if problems:
        raise ValidationFailed({name: problems})
    return raw


def query_text(request: Request[Any, Any, Any], name: str, max_length: int = SEARCH_MAX) -> str:
    """A free-text parameter such as `search`, stripped ("" when absent)."""
    raw = (request.query_params.get(name) or "").strip()
    problems = check_text(raw, max_length)
    if problems:
        raise ValidationFailed({name: problems})
    return raw


def query_bool(request: Request[Any, Any, Any], name: str) -> bool | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if raw.lower() in TRUE:
        return True
    if raw.lower() in FALSE:
        return False
    raise ValidationFailed.one(name, "Must be true or false.")


def ordering(request: Request[Any, Any, Any], allowed: dict[str, str], default: str) -> str:
    """`?ordering=-created_at,username` -> an ORDER BY clause built only from whitelisted columns."""
    raw = request.query_params.get("ordering") or default
    parts = []
    for field in raw.split(","):
        field = field.strip()
        column = allowed.get(field.lstrip("-"))
        if column is None:
            choices = ", ".join(sorted(allowed))
            shown = clean_text(field)[:100]
            raise ValidationFailed.one("ordering", f'"{shown}" is not a valid ordering. Valid fields: {choices}.')
        parts.append(f"{column} {'DESC' if field.startswith('-') else 'ASC'}")
    return ", ".join(parts)


def _page_url(request: Request[Any, Any, Any], page: int) -> str:
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "page"]
    if page > 1:
        params.append(("page", str(page)))
    # From the configured public address, never the request's Host header (which the client chooses). The path as
    # requested: Litestar's own drops the trailing slash every route here has.
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1").split("?", 1)[0] if raw else request.url.path
    base = services_of(request).settings.public_url + path
    return f"{base}?{urlencode(params)}" if params else base


async def paginate(
    request: Request[Any, Any, Any],
    reader: AsyncDatabase,
    *,
    select: str,
    from_where: str,
    params: Sequence[Any],
    order_by: str,
    shape: Callable[[dict[str, Any]], dict[str, Any]],
) -> dict[str, Any]:
    page = _positive_int(request, "page", 1)
    size = min(_positive_int(request, "page_size", DEFAULT_PAGE_SIZE), MAX_PAGE_SIZE)
    count_row = await reader.fetchone(f"SELECT count(*) AS n {from_where}", params)
    count = int(count_row["n"]) if count_row else 0
    if page > 1 and (page - 1) * size >= count:
        raise NotFoundException("Invalid page.")
    rows = await reader.fetchall(
        f"SELECT {select} {from_where} ORDER BY {order_by} LIMIT %s OFFSET %s",
        (*params, size, (page - 1) * size),
    )
    return {
        "count": count,
        "next": _page_url(request, page + 1) if page * size < count else None,
        "previous": _page_url(request, page - 1) if page > 1 else None,
        "results": [shape(r) for r in rows],
    }


def query_int(request: Request[Any, Any, Any], name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if not INTEGER.fullmatch(raw):
        raise ValidationFailed.one(name, "A valid integer is required.")
    problems = check_int(int(raw))
    if problems:
        raise ValidationFailed({name: problems})
    return int(raw)


def query_datetime(request: Request[Any, Any, Any], name: str) -> datetime | None:
    """ISO 8601; a date alone means its midnight, and a time without an offset is UTC."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise ValidationFailed.one(name, "Enter a valid ISO 8601 date/time, e.g. 2025-09-15T10:00:00Z.") from None
    moment = utc(value)
    if moment is None:
        raise ValidationFailed.one(name, MOMENT_RANGE)
    return moment
