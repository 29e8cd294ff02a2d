"""The baseline for the status change: a bare Litestar endpoint running one `UPDATE`, with none of Cosmo's machinery
(auth, throttle, event store, projections, read-your-writes). The reads are measured against `GET /api/users/me/`
instead (bench/operations.py)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from litestar import Litestar, get, patch
from litestar.params import FromPath, JSONBody
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

pool = AsyncConnectionPool(
    os.environ["BENCH_CONNINFO"],
    min_size=2,
    max_size=10,
    open=False,
    kwargs={"row_factory": dict_row, "autocommit": True},
)


async def _all(sql: str, params: tuple) -> list[dict[str, Any]]:
    async with pool.connection() as conn:
        cur = await conn.execute(sql, params, prepare=True)
        return await cur.fetchall()


@get("/bare/ready/")
async def ready() -> dict[str, str]:
    return {"status": "ok"}


@patch("/bare/tasks/{task_id:int}/")
async def change(task_id: FromPath[int], data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    rows = await _all(
        "UPDATE tasks_view SET status = %s, updated_at = %s WHERE id = %s RETURNING id, status, notes, updated_at",
        (data["status"], datetime.now(UTC), task_id),
    )
    return rows[0]


async def _open() -> None:
    await pool.open()


app = Litestar([ready, change], on_startup=[_open])
