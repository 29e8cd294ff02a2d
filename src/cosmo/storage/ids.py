"""Integer id allocation for creation commands (users, invite codes, tasks...)."""

from __future__ import annotations

from cosmo.storage.db import Database

_NEXT = (
    "INSERT INTO id_sequences (name, value) VALUES (%s, 1) "
    "ON CONFLICT (name) DO UPDATE SET value = id_sequences.value + 1 RETURNING value"
)

_BLOCK = (
    "INSERT INTO id_sequences (name, value) VALUES (%s, %s) "
    "ON CONFLICT (name) DO UPDATE SET value = id_sequences.value + %s RETURNING value"
)


class IdAllocator:
    """Gaps are possible (a command that fails after allocating); reuse never is."""

    def __init__(self, db: Database):
        self._db = db

    def next(self, kind: str) -> int:
        with self._db.transaction() as cur:
            row = cur.execute(_NEXT, (kind,)).fetchone()
        assert row is not None
        return int(row["value"])

    def block(self, kind: str, count: int) -> list[int]:
        """`count` consecutive ids in one round trip (a new task's checklist items)."""
        if count <= 0:
            return []
        with self._db.transaction() as cur:
            row = cur.execute(_BLOCK, (kind, count, count)).fetchone()
        assert row is not None
        last = int(row["value"])
        return list(range(last - count + 1, last + 1))
