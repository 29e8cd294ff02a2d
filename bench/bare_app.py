"""The baseline for the HTTP figure: a bare Litestar endpoint doing the same single-row read as /api/users/me/."""

from __future__ import annotations

import os
from typing import Any

from litestar import Litestar, get
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

pool = AsyncConnectionPool(
    os.environ["BENCH_CONNINFO"],
    min_size=2,
    max_size=10,
    open=False,
    kwargs={"row_factory": dict_row, "autocommit": True},
)


@get("/bare/me/")
async def me() -> dict[str, Any]:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT id, username, email, first_name, last_name, role, task_group, is_active FROM users_view "
            "WHERE id = %s",
            (1,),
            prepare=True,
        )
        row = await cur.fetchone()
    return {
        "id": row["id"],
        "username": row["username"],
        "email": row["email"],
        "first_name": row["first_name"],
        "last_name": row["last_name"],
        "is_active": row["is_active"],
        "profile": {"role": row["role"], "task_group": row["task_group"]},
    }


async def _open() -> None:
    await pool.open()


app = Litestar([me], on_startup=[_open])
