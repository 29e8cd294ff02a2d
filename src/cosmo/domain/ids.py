"""Aggregate UUIDs derived from the contract's integer ids and from unique keys.

Integer ids are allocated when a command runs and carried in creation events; deriving the aggregate UUID from
them means a URL id leads straight to the aggregate, and ids survive projection rebuilds unchanged.
"""

from __future__ import annotations

from functools import lru_cache
from uuid import UUID, uuid5

NAMESPACE = UUID("5b0c3a8e-2f4d-4f6e-9a51-0c05c0505c05")
# Every aggregate snapshots after each SNAPSHOT_EVERY events (storage/snapshots.py): a load then replays at most
# that many events however long the stream. Streams that stay short never reach it and cost nothing.
SNAPSHOT_EVERY = 100


@lru_cache(maxsize=65_536)  # derived on every command and read of an aggregate; a SHA-1 each time otherwise
def aggregate_id(kind: str, number: int) -> UUID:
    return uuid5(NAMESPACE, f"{kind}:{number}")


@lru_cache(maxsize=65_536)  # an import derives each row's code key several times (prefetch, lookup, claim)
def unique_key_id(scope: str, value: str) -> UUID:
    return uuid5(NAMESPACE, f"unique:{scope}:{value}")
