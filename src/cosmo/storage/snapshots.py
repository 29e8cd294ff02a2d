"""Snapshots: what keeps loading an aggregate whose stream grows with use (an inbox, an unlimited invite code, a
unit's calendar) as cheap after 10,000 events as after 10.

An aggregate class opts in with `snapshot_every = N`; the command side takes a snapshot when a save carries the
aggregate's version across a multiple of N, into the library's snapshot table (`cosmo_snapshots` beside
`cosmo_events` on PostgreSQL, `stored_snapshots` on SQLite). Loading reads the latest snapshot and only the events
after it.

Snapshots are derived data: deleting them all changes nothing but speed. Each one records a fingerprint of the
code behind its state (its class's module and the library's version); a snapshot taken by other code, or one that
cannot be read, is ignored and the aggregate is replayed from its events, so a deploy can never load state in a
shape the code no longer means.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
from collections.abc import Iterable, Sequence
from functools import cache
from importlib.metadata import version as package_version
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, Snapshot
from eventsourcing.utils import resolve_topic

log = logging.getLogger(__name__)

EVENTSOURCING = package_version("eventsourcing")
FINGERPRINT = "cosmo_class_fingerprint"
STATE = "cosmo_state"
# Shapes JSON would change: a dict with non-text keys (its keys would come back as text), a set, a tuple.
_ITEMS, _SET, _FROZEN, _TUPLE = "__cosmo_items__", "__cosmo_set__", "__cosmo_frozenset__", "__cosmo_tuple__"


def pack(value: Any) -> Any:
    """`value` with every dict, set and tuple tagged so that it comes back from the JSON transcoder as it went in
    (the transcoder itself keeps UUIDs, decimals and datetimes)."""
    kind = type(value)
    if kind is dict:
        if all(type(k) is str for k in value):
            return {k: pack(v) for k, v in value.items()}
        return {_ITEMS: [[pack(k), pack(v)] for k, v in value.items()]}
    if kind is list:
        return [pack(v) for v in value]
    if kind is set:
        return {_SET: [pack(v) for v in value]}
    if kind is frozenset:
        return {_FROZEN: [pack(v) for v in value]}
    if kind is tuple:
        return {_TUPLE: [pack(v) for v in value]}
    return value


def unpack(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        if len(value) == 1:
            if _ITEMS in value:
                return {_hashable(unpack(k)): unpack(v) for k, v in value[_ITEMS]}
            if _SET in value:
                return {_hashable(unpack(v)) for v in value[_SET]}
            if _FROZEN in value:
                return frozenset(_hashable(unpack(v)) for v in value[_FROZEN])
            if _TUPLE in value:
                return tuple(unpack(v) for v in value[_TUPLE])
        return {k: unpack(v) for k, v in value.items()}
    if kind is list:
        return [unpack(v) for v in value]
    return value


def _hashable(value: Any) -> Any:
    """A set member or dict key as it was: a tuple (JSON made it a list) or a frozenset (unpacked as a set)."""
    if type(value) is list:
        return tuple(value)
    if type(value) is set:
        return frozenset(value)
    return value


@cache
def fingerprint(cls: type) -> str:
    """Changes whenever the code that shapes the class's state may have: its whole module (the handlers and the
    constants they use) and the library's version. Taken once per process, for every aggregate class at start-up
    (`remember_fingerprints`), so it describes the code this process loaded, not a file replaced since."""
    try:
        source = inspect.getsource(inspect.getmodule(cls) or cls)
    except (OSError, TypeError, SyntaxError):  # no readable source: never trust a snapshot of it
        return ""
    return hashlib.sha256(f"{EVENTSOURCING}\n{source}".encode()).hexdigest()[:16]


def remember_fingerprints(classes: Iterable[type]) -> None:
    for cls in classes:
        fingerprint(cls)


def interval(aggregate: Aggregate) -> int:
    return int(getattr(type(aggregate), "snapshot_every", 0) or 0)


class StaleSnapshot(Exception):
    """The snapshot was taken by another version of the aggregate's class."""


class CosmoSnapshot(Snapshot):
    """The library's snapshot, with the state packed (see `pack`) and the class's fingerprint beside it."""

    @classmethod
    def take(cls, aggregate: Any) -> CosmoSnapshot:
        snapshot = super().take(aggregate)
        packed = {STATE: pack(snapshot.state), FINGERPRINT: fingerprint(type(aggregate))}
        object.__setattr__(snapshot, "state", packed)
        return snapshot

    def mutate(self, _: None) -> Any:
        try:
            current = fingerprint(resolve_topic(self.topic))
        except Exception:  # the class is gone or moved: replay
            raise StaleSnapshot(self.originator_id) from None
        if not current or self.state.get(FINGERPRINT) != current or STATE not in self.state:
            raise StaleSnapshot(self.originator_id)
        try:
            object.__setattr__(self, "state", unpack(self.state[STATE]))
            return super().mutate(None)
        except Exception:  # a snapshot that cannot be read is as good as none: the events say it all
            raise StaleSnapshot(self.originator_id) from None


def due(aggregate: Aggregate, saved: int) -> bool:
    """Whether saving `saved` events carried the aggregate's version across a multiple of its interval."""
    every = interval(aggregate)
    return every > 0 and saved > 0 and aggregate.version // every > (aggregate.version - saved) // every


def to_take(aggregates: Iterable[tuple[Aggregate, int]]) -> list[CosmoSnapshot]:
    """Snapshots of the aggregates a save carried across their interval (one that cannot be taken is skipped)."""
    taken = []
    for aggregate, saved in aggregates:
        if due(aggregate, saved):
            try:
                taken.append(CosmoSnapshot.take(aggregate))
            except Exception:
                log.exception("a snapshot of %s could not be taken", type(aggregate).__name__)
    return taken


def replay(events: Iterable[Any], snapshot: Any | None = None) -> Any:
    """The aggregate from its snapshot (if any) and the events after it. Raises StaleSnapshot."""
    aggregate: Any = snapshot.mutate(None) if snapshot is not None else None
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


def load(app: Application, aggregate_id: UUID, version: int | None = None) -> Any:
    """Through the library's stores (SQLite, and reads of past versions on both databases): the latest snapshot at
    or before `version`, then the events after it; from the first event if the snapshot is stale."""
    snapshot = None
    if app.snapshots is not None:
        try:
            found = list(app.snapshots.get(aggregate_id, desc=True, limit=1, lte=version))
        except Exception:  # a snapshot row that cannot be decoded: replay without it
            found = []
        snapshot = found[0] if found else None
    try:
        after = snapshot.originator_version if snapshot is not None else None
        aggregate = replay(app.events.get(aggregate_id, gt=after, lte=version), snapshot)
    except Exception:
        if snapshot is None:
            raise  # no snapshot involved: the events themselves are the problem
        aggregate = replay(app.events.get(aggregate_id, lte=version))
    if aggregate is None:
        raise AggregateNotFoundError(aggregate_id)
    return aggregate


def load_at(app: Application, aggregate_id: UUID, moment: Any) -> Any:
    """The aggregate as it was at `moment` (its events up to then), or None if it did not exist yet."""
    aggregate: Any = None
    for event in app.events.get(aggregate_id):
        if event.timestamp > moment:
            break
        aggregate = event.mutate(aggregate)
    return aggregate


def put(app: Application, snapshots: Sequence[CosmoSnapshot]) -> None:
    if snapshots and app.snapshots is not None:
        app.snapshots.put(list(snapshots))
