"""The baseline for the operations figures: bare Litestar endpoints running the same SQL as Cosmo's staff task
list, staff dashboard and status change, with none of Cosmo's machinery (auth, throttle, event store, projections,
read-your-writes)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from litestar import Litestar, get, patch
from litestar.params import FromPath, FromQuery, JSONBody
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

USER_ID = int(os.environ["BENCH_USER_ID"])
GROUP = os.environ["BENCH_GROUP"]
VISIBLE = "NOT t.is_deleted AND (t.assigned_to = %s OR (t.assigned_to IS NULL AND t.task_type = %s))"
TASK_FROM = (
    "FROM tasks_view t LEFT JOIN users_view u ON u.id = t.assigned_to"
    " LEFT JOIN properties_view p ON p.id = t.property_id LEFT JOIN units_view un ON un.id = t.unit_id"
)
TASK_SELECT = (
    "t.id, t.title, t.description, t.status, t.task_type, t.priority, t.assigned_to, u.username AS assignee,"
    " t.property_id, p.name AS property_name, t.unit_id, un.unit_number, t.due_date, t.notes,"
    " t.checklist_template_id, t.checklist_template_name, t.checklist_total, t.checklist_completed,"
    " t.created_by, t.created_at, t.updated_at"
)

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


@get("/bare/tasks/")
async def tasks(status: FromQuery[str]) -> dict[str, Any]:
    where = f"{VISIBLE} AND t.status = %s"
    params = (USER_ID, GROUP, status)
    count = (await _all(f"SELECT count(*) AS n {TASK_FROM} WHERE {where}", params))[0]["n"]
    rows = await _all(
        f"SELECT {TASK_SELECT} {TASK_FROM} WHERE {where} ORDER BY t.created_at DESC, t.id DESC LIMIT %s OFFSET %s",
        (*params, 20, 0),
    )
    return {"count": count, "next": None, "previous": None, "results": rows}


@get("/bare/dashboard/")
async def dashboard() -> dict[str, Any]:
    counts = await _all(
        f"SELECT t.status, count(*) AS n FROM tasks_view t WHERE {VISIBLE} GROUP BY t.status", (USER_ID, GROUP)
    )
    recent = await _all(
        f"SELECT t.id, t.title, t.status, t.priority, t.due_date FROM tasks_view t WHERE {VISIBLE}"
        " ORDER BY t.updated_at DESC, t.id DESC LIMIT %s",
        (USER_ID, GROUP, 5),
    )
    notes = await _all(
        "SELECT id, verb, message, task_id, created_at, is_read, read_at FROM notifications_view WHERE user_id = %s"
        " ORDER BY id DESC LIMIT %s",
        (USER_ID, 5),
    )
    return {"task_counts": {r["status"]: r["n"] for r in counts}, "recent_tasks": recent, "notifications": notes}


@patch("/bare/tasks/{task_id:int}/")
async def change(task_id: FromPath[int], data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    rows = await _all(
        "UPDATE tasks_view SET status = %s, updated_at = %s WHERE id = %s RETURNING id, status, notes, updated_at",
        (data["status"], datetime.now(UTC), task_id),
    )
    return rows[0]


async def _open() -> None:
    await pool.open()


app = Litestar([tasks, dashboard, change], on_startup=[_open])
