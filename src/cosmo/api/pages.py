"""The contract's pages: `{count, next, previous, results}`, with absolute links to the neighbouring pages."""

from __future__ import annotations

from typing import Any, Generic, TypeVar
from urllib.parse import urlencode

import msgspec
from litestar import Request

from cosmo.projections.queries import Slice

T = TypeVar("T")


class Page(msgspec.Struct, Generic[T]):
    count: int
    next: str | None
    previous: str | None
    results: list[T]


def _link(request: Request[Any, Any, Any], public_url: str, page: int) -> str:
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "page"]
    if page > 1:
        params.append(("page", str(page)))
    # From the configured public address, never the request's Host header (which the client chooses). The path as
    # requested: Litestar's own drops the trailing slash every route here has.
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1").split("?", 1)[0] if raw else request.url.path
    base = public_url + path
    return f"{base}?{urlencode(params)}" if params else base


def page(request: Request[Any, Any, Any], public_url: str, found: Slice[T]) -> Page[T]:
    number = found.page.page
    return Page(
        count=found.count,
        next=_link(request, public_url, number + 1) if found.has_next else None,
        previous=_link(request, public_url, number - 1) if number > 1 else None,
        results=found.results,
    )
