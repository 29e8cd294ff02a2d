"""Integer id allocation for creation commands (users, invite codes, tasks...)."""

from __future__ import annotations

from cosmo.storage.db import AsyncDatabase

_BLOCK = (
    "INSERT INTO id_sequences (name, value) VALUES (%s, %s) "
    "ON CONFLICT (name) DO UPDATE SET value = id_sequences.value + %s RETURNING value"
)


class IdAllocator:
    """Gaps are possible (a command that fails after allocating); reuse never is."""

    def __init__(self, db: AsyncDatabase):
        self._db = db
        self._reserves: dict[str, list[int]] = {}

    async def reserved(self, kind: str, count: int, reserve: int = 1000) -> list[int]:
        """`count` ids (not always consecutive) from a reserve this process takes `reserve` at a time: for bulk
        creators (an import, the turnover policy), which would otherwise pay a round trip per object. The ids a
        process still holds when it stops are gaps."""
        held = self._reserves.setdefault(kind, [])
        while len(held) < count:  # a loop: others may take from it while this one waits
            held.extend(await self.block(kind, max(reserve, count - len(held))))
        taken = held[:count]
        del held[:count]
        return taken

    async def next(self, kind: str) -> int:
        return (await self.block(kind, 1))[0]

    async def block(self, kind: str, count: int) -> list[int]:
        """`count` consecutive ids in one round trip (a new task's checklist items)."""
        if count <= 0:
            return []
        row = await self._db.write_one(_BLOCK, (kind, count, count))
        assert row is not None
        last = int(row["value"])
        return list(range(last - count + 1, last + 1))
