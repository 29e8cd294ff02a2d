"""What every read model's queries share: the reader they run on, pages, ordering and search patterns.

Queries live with the projection that owns their tables (one module per read model); the API calls them and
encodes what they return. They take the acting user where the answer depends on who asks (the task visibility
rule, the admin-only lists) and raise the domain's errors (NotFound, PermissionDenied, ValidationFailed).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from cosmo.domain.checks import clean_text
from cosmo.domain.errors import NotFound, ValidationFailed

T = TypeVar("T")
Row = dict[str, Any]
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


class Reader(Protocol):
    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None: ...

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    async def fetch_many(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Row]]: ...

    async def fetch_packed(self, reads: Sequence[tuple[str, Sequence[Any], Sequence[str]]]) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class Statement(Generic[T]):
    """A read and how to shape its rows: queries hand these out so that a view of several read models (the
    dashboard) can send them together."""

    sql: str
    params: tuple[Any, ...]
    shape: Callable[[list[Row]], T]

    async def run(self, read: Reader) -> T:
        return self.shape(await read.fetchall(self.sql, self.params))


@dataclass(frozen=True, slots=True)
class Packed(Generic[T]):
    """A read that travels with others as one statement (`Reader.fetch_packed`): its rows come back as one JSON
    array of objects keyed by `columns`, which `decode` turns straight into typed values. For a view read together
    (the dashboard): on PostgreSQL each statement, pipelined or not, costs the driver about as much as a small read
    does, more than the reads themselves."""

    sql: str
    params: tuple[Any, ...]
    columns: tuple[str, ...]
    decode: Callable[[str], T]


@dataclass(frozen=True, slots=True)
class PageRequest:
    """Which page of a list, how large (clamped to MAX_PAGE_SIZE), and the `ordering` asked for (None: default)."""

    page: int = 1
    size: int = DEFAULT_PAGE_SIZE
    ordering: str | None = None

    @property
    def limit(self) -> int:
        return min(self.size, MAX_PAGE_SIZE)

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


@dataclass(frozen=True, slots=True)
class Slice(Generic[T]):
    """One page of a list: how many there are in all, and this page's items."""

    count: int
    results: list[T]
    page: PageRequest

    @property
    def has_next(self) -> bool:
        return self.page.page * self.page.limit < self.count


def order_clause(ordering: str | None, allowed: dict[str, str], default: str) -> str:
    """`-created_at,username` -> an ORDER BY clause built only from whitelisted columns."""
    parts = []
    for field in (ordering or default).split(","):
        field = field.strip()
        column = allowed.get(field.lstrip("-"))
        if column is None:
            choices = ", ".join(sorted(allowed))
            shown = clean_text(field)[:100]
            raise ValidationFailed.one("ordering", f'"{shown}" is not a valid ordering. Valid fields: {choices}.')
        parts.append(f"{column} {'DESC' if field.startswith('-') else 'ASC'}")
    return ", ".join(parts)


def equals(filters: Any, columns: dict[str, str]) -> tuple[list[str], list[Any]]:
    """`column = %s` conditions for the filters (struct fields, by name) that are set, and their parameters."""
    where, params = [], []
    for name, column in columns.items():
        value = getattr(filters, name)
        if value is not None:
            where.append(f"{column} = %s")
            params.append(value)
    return where, params


def like(search: str) -> str:
    """A LIKE pattern matching `search` anywhere, case-folded, its wildcards taken literally (with ESCAPE '\\')."""
    escaped = search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def ensure_page(request: PageRequest, count: int) -> None:
    if request.page > 1 and request.offset >= count:
        raise NotFound("Invalid page.")


async def page_of(
    read: Reader,
    request: PageRequest,
    *,
    select: str,
    from_where: str,
    params: Sequence[Any],
    order_by: str,
    shape: Callable[[Row], T],
) -> Slice[T]:
    count_row = await read.fetchone(f"SELECT count(*) AS n {from_where}", params)
    count = int(count_row["n"]) if count_row else 0
    ensure_page(request, count)
    rows = await read.fetchall(
        f"SELECT {select} {from_where} ORDER BY {order_by} LIMIT %s OFFSET %s",
        (*params, request.limit, request.offset),
    )
    return Slice(count, [shape(r) for r in rows], request)
