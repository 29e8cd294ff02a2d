"""What a projection is: a name, a version, its tables, and one handler per event class it reads."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic

from cosmo.storage.db import Cursor


@dataclass(frozen=True)
class Index:
    suffix: str
    columns: str
    unique: bool = False
    where: str = ""  # a partial index's condition


@dataclass(frozen=True)
class Table:
    """A read-model table. `columns` is DDL both databases accept; the projection owns the table, so a rebuild
    can create it under another name and swap it in."""

    name: str
    columns: str
    primary_key: str
    indexes: tuple[Index, ...] = ()

    def create_sql(self, physical: str) -> str:
        return (
            f"CREATE TABLE IF NOT EXISTS {physical} ({self.columns}, "
            f"CONSTRAINT {physical}_pk PRIMARY KEY ({self.primary_key}))"
        )

    def index_sql(self, physical: str, index_owner: str | None = None) -> list[str]:
        owner = index_owner or physical
        return [
            f"CREATE {'UNIQUE ' if ix.unique else ''}INDEX IF NOT EXISTS {owner}_{ix.suffix} "
            f"ON {physical} ({ix.columns}){f' WHERE {ix.where}' if ix.where else ''}"
            for ix in self.indexes
        ]


Handler = Callable[[Any, Cursor, Any, dict[str, str]], None]
Read = Callable[[str, Sequence[Any]], list[dict[str, Any]]]


def update_row(cur: Cursor, table: str, columns: dict[str, Any], key: str, value: Any) -> None:
    """UPDATE the view row whose `key` column is `value`, setting `columns` (named by the projection and its
    events, never by a request). The same columns give the same statement text, so a batch sends them as a run."""
    assignments = ", ".join(f"{c} = %s" for c in columns)
    cur.execute(f"UPDATE {table} SET {assignments} WHERE {key} = %s", (*columns.values(), value))


def handles(*event_classes: type) -> Callable[[Handler], Handler]:
    def mark(fn: Handler) -> Handler:
        fn.__cosmo_handles__ = event_classes  # type: ignore[attr-defined]
        return fn

    return mark


class Projection:
    """Subclasses set `name`, `version`, `tables` and decorate methods with @handles(EventClass).

    A handler gets a cursor inside the batch's transaction, the event, and the physical table names (`t["users"]`),
    which differ from the logical ones while a rebuild writes to its shadow tables. Bump `version` whenever the
    tables or the handlers change meaning: the runner then rebuilds the projection from the log.
    """

    name: ClassVar[str]
    version: ClassVar[int]
    tables: ClassVar[tuple[Table, ...]]
    # `raw`: the projection reads every event as stored (`apply_raw`, once per batch) rather than decoded events
    # by topic. `rebuildable=False`: its tables are not derived from the log as it is now (the audit chain).
    raw: ClassVar[bool] = False
    rebuildable: ClassVar[bool] = True

    def __init__(self) -> None:
        # Set by the runner around each event: the event's position in the log, and whether this is live
        # processing (effects are published after the batch commits) or a rebuild (they are not).
        self.position = 0
        self.after = 0  # for a `raw` projection: its committed position, the batch's events follow it
        self.live = False
        self.effects: list[tuple[str, Any]] = []
        self._handlers: dict[str, Handler] = {}
        for attr in dir(type(self)):
            fn = getattr(type(self), attr)
            for cls in getattr(fn, "__cosmo_handles__", ()):
                self._handlers[get_topic(cls)] = fn

    @property
    def topics(self) -> frozenset[str]:
        return frozenset(self._handlers)

    def apply(self, cur: Cursor, topic: str, event: Any, names: dict[str, str]) -> None:
        self._handlers[topic](self, cur, event, names)

    def apply_raw(self, cur: Cursor, notifications: Sequence[Notification], names: dict[str, str]) -> None:
        raise NotImplementedError

    def flush(self, cur: Cursor, names: dict[str, str]) -> None:
        """Called once the batch's events have all been applied, inside its transaction: a projection whose
        handlers gather rows rather than write them writes them here, in one statement."""

    def discard(self) -> None:
        """The batch failed before `flush`: forget what the handlers gathered."""

    def emit(self, kind: str, payload: Any) -> None:
        """Something to announce once the batch has committed (a live push), never during a rebuild."""
        if self.live:
            self.effects.append((kind, payload))

    def announce(self, read: Read, names: dict[str, str], first: int, last: int) -> None:
        """Called after a live batch (positions first..last) committed, with `read(sql, params) -> rows` on the
        committed tables: the place to emit effects with one read for the whole batch instead of one per event."""

    def drain(self) -> list[tuple[str, Any]]:
        effects, self.effects = self.effects, []
        return effects

    def live_names(self) -> dict[str, str]:
        return {t.name: t.name for t in self.tables}

    def shadow_names(self) -> dict[str, str]:
        return {t.name: f"{t.name}__rebuild" for t in self.tables}
