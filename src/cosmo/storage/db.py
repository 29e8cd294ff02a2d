"""Connections to the read-model and support tables, on SQLite or PostgreSQL.

SQL is written once, with %s placeholders and types both databases accept (`bigint`, `text`, `boolean`,
`timestamptz`); on SQLite the placeholders become `?` and declared types are converted back to Python values,
so rows look the same on both.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio.to_thread
import psycopg
from psycopg.rows import dict_row, tuple_row
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from cosmo.config import DatabaseURL
from cosmo.domain.checks import EARLIEST, LATEST, MAX_INT, MIN_INT, utc

Row = dict[str, Any]


def storable(value: Any) -> Any:
    """`value` as both databases can store it. Commands refuse what would need changing here (domain/checks.py);
    this keeps projections total for events stored before a rule existed, and reads safe from odd parameters: NUL
    and lone surrogates become U+FFFD, integers are clamped to 64 bits, dates and times to EARLIEST..LATEST (UTC)."""
    kind = type(value)
    if kind is str:
        if "\x00" in value:
            value = value.replace("\x00", "\ufffd")
        if not value.isascii():
            try:
                value.encode()
            except UnicodeEncodeError:
                value = _unsurrogate(value)
        return value
    if kind is int:
        return value if MIN_INT <= value <= MAX_INT else (MAX_INT if value > 0 else MIN_INT)
    if kind is datetime:
        return _bounded(value)
    return value


def _unsurrogate(value: str) -> str:
    return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in value)


def _bounded(moment: datetime) -> datetime:
    inside = utc(moment)
    if inside is not None:
        return inside
    return EARLIEST if moment.year < 5000 else LATEST


def storable_params(params: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(map(storable, params))


def _adapt_datetime(value: datetime) -> str:
    # Fixed width, always UTC, so text comparison and ordering match time order.
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def _convert_timestamp(raw: bytes) -> datetime:
    return datetime.fromisoformat(raw.decode())


sqlite3.register_adapter(datetime, _adapt_datetime)
sqlite3.register_converter("timestamptz", _convert_timestamp)
sqlite3.register_converter("boolean", lambda raw: raw not in (b"0", b""))


class Cursor:
    """The part of a DB-API cursor the projections and services use, the same on both databases."""

    def __init__(self, raw: Any, sqlite: bool):
        self._raw = raw
        self._sqlite = sqlite

    def _sql(self, sql: str) -> str:
        return sql.replace("%s", "?") if self._sqlite else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        self._raw.execute(self._sql(sql), storable_params(params))
        return self

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._raw.executemany(self._sql(sql), [storable_params(row) for row in rows])

    @property
    def is_postgres(self) -> bool:
        return not self._sqlite

    def flush(self) -> None:
        """Send statements held back (see BatchingCursor)."""

    def fetchone(self) -> Row | None:
        row = self._raw.fetchone()
        return dict(row) if (row is not None and self._sqlite) else row

    def fetchall(self) -> list[Row]:
        rows = self._raw.fetchall()
        return [dict(r) for r in rows] if self._sqlite else rows

    @property
    def rowcount(self) -> int:
        return self._raw.rowcount


class BatchingCursor(Cursor):
    """Holds statements back and sends runs of the same statement as one executemany: a projection batch is mostly
    the same INSERT or UPDATE a thousand times, and a per-statement round of the driver costs more than the work.

    Order is kept (a different statement flushes the run before it), and anything that needs a result (fetch,
    rowcount) flushes first and runs its own statement alone, so handlers read exactly what they would unbatched."""

    def __init__(self, raw: Any, sqlite: bool):
        super().__init__(raw, sqlite)
        self._pending_sql: str | None = None
        self._pending: list[Sequence[Any]] = []

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        if sql != self._pending_sql:
            self.flush()
            self._pending_sql = sql
        self._pending.append(params)
        return self

    def flush(self) -> None:
        if self._pending_sql is None:
            return
        sql, rows = self._pending_sql, self._pending
        self._pending_sql, self._pending = None, []
        if len(rows) == 1:
            super().execute(sql, rows[0])
        else:
            super().executemany(sql, rows)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.flush()
        super().executemany(sql, rows)

    def _settle(self) -> Any:
        """Run the held-back statements, then the last one (whose result is wanted) alone, on a cursor of its own:
        in a pipeline a shared cursor may still be answering for an earlier statement when it is fetched from."""
        if self._pending_sql is None:
            return self._raw
        sql, last = self._pending_sql, self._pending.pop()
        if not self._pending:
            self._pending_sql = None
        self.flush()
        reader = self._raw.connection.cursor()
        reader.execute(self._sql(sql), storable_params(last))
        return reader

    def fetchone(self) -> Row | None:
        row = self._settle().fetchone()
        return dict(row) if (row is not None and self._sqlite) else row

    def fetchall(self) -> list[Row]:
        rows = self._settle().fetchall()
        return [dict(r) for r in rows] if self._sqlite else rows

    @property
    def rowcount(self) -> int:
        reader = self._settle()
        if not self._sqlite:
            # In a pipeline the count arrives with the statement's result, which only a sync brings back.
            with self._raw.connection.pipeline() as pipeline:
                pipeline.sync()
        return reader.rowcount


class Database:
    """Synchronous access: commands' support tables, projection runners, CLI, migrations."""

    def __init__(self, url: DatabaseURL, pool_size: int = 8):
        self.url = url
        self.is_postgres = url.is_postgres
        self._local = threading.local()
        self._pool: ConnectionPool | None = None
        if self.is_postgres:
            self._pool = ConnectionPool(
                url.conninfo(),
                min_size=1,
                max_size=pool_size,
                kwargs={"row_factory": dict_row, "autocommit": True},
                open=True,
                name="cosmo-sync",
            )
        else:
            Path(url.path).resolve().parent.mkdir(parents=True, exist_ok=True)

    @property
    def dialect(self) -> str:
        return "postgresql" if self.is_postgres else "sqlite"

    def _sqlite_connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.url.path,
                timeout=30,
                isolation_level=None,
                check_same_thread=False,
                detect_types=sqlite3.PARSE_DECLTYPES,
            )
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self, write: bool = True, batched: bool = False, schema: bool = False) -> Iterator[Cursor]:
        """One transaction. On SQLite a writing transaction takes the write lock at BEGIN (IMMEDIATE), so
        read-then-write sequences inside it are serialized across threads and processes. `batched` (projection
        batches) holds statements back and sends them in runs, pipelined on PostgreSQL. `schema`: the transaction
        drops or alters tables, and runs on a connection of its own: psycopg answers a DROP or ALTER by
        deallocating the connection's prepared statements, which, on a pooled connection in pipeline mode, can
        take away a statement the next user of the connection has just prepared."""
        cursor_class = BatchingCursor if batched else Cursor
        if self._pool is not None:
            own = psycopg.connect(self.url.conninfo(), row_factory=dict_row, autocommit=True) if schema else None
            with own or self._pool.connection() as conn:
                if batched:
                    with conn.pipeline(), conn.transaction():
                        cur = cursor_class(conn.cursor(), sqlite=False)
                        yield cur
                        cur.flush()
                else:
                    with conn.transaction():
                        yield Cursor(conn.cursor(), sqlite=False)
            return
        conn = self._sqlite_connection()
        conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            cur = cursor_class(conn.cursor(), sqlite=True)
            yield cur
            cur.flush()
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextmanager
    def schema_lock(self) -> Iterator[None]:
        """Serializes start-up schema work between processes: PostgreSQL's CREATE TABLE IF NOT EXISTS is not safe
        when several processes run it at once. (SQLite's write lock already orders them.)"""
        if self._pool is None:
            yield
            return
        with self._pool.connection() as conn:
            conn.execute("SELECT pg_advisory_lock(7300)")
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(7300)")

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        if self._pool is not None:  # one statement needs no BEGIN/COMMIT around it: one round trip, not three
            with self._pool.connection() as conn:
                return conn.execute(sql, storable_params(params), prepare=True).fetchone()
        with self.transaction(write=False) as cur:
            return cur.execute(sql, params).fetchone()

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        if self._pool is not None:
            with self._pool.connection() as conn:
                return conn.execute(sql, storable_params(params), prepare=True).fetchall()
        with self.transaction(write=False) as cur:
            return cur.execute(sql, params).fetchall()

    def tuples(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows as plain tuples: bulk reads (verifying the audit chain) where a mapping per row costs more than the
        work done on it."""
        if self._pool is not None:
            with self._pool.connection() as conn:
                return conn.cursor(row_factory=tuple_row).execute(sql, storable_params(params)).fetchall()
        raw = self._sqlite_connection().cursor()
        raw.row_factory = None
        return raw.execute(sql.replace("%s", "?"), storable_params(params)).fetchall()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self.transaction() as cur:
            return cur.execute(sql, params).rowcount

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def packed_sql(reads: Sequence[tuple[str, Sequence[Any], Sequence[str]]], postgres: bool) -> str:
    """One SELECT whose column `rN` is the Nth read's rows as a JSON array of objects. Each aggregate takes its rows
    from the read as a subquery, in the read's order: PostgreSQL's manual gives a sorted subquery as a way to order
    an aggregate's input, which holds while that level does nothing else (no join, no grouping), and SQLite (3.40
    here, without ORDER BY in aggregates) does not flatten an ordered, limited subquery into an aggregate."""
    parts = []
    for n, (sql, _, columns) in enumerate(reads):
        if not all(c.isidentifier() for c in columns):
            raise ValueError(f"not column names: {columns}")
        pairs = ", ".join(f"'{c}', p.\"{c}\"" for c in columns)
        if postgres:
            rows = f"coalesce(json_agg(json_build_object({pairs})), '[]')::text"
        else:
            rows = f"json_group_array(json_object({pairs}))"
        parts.append(f"(SELECT {rows} FROM ({sql}) AS p) AS r{n}")
    return f"SELECT {', '.join(parts)}"


class AsyncDatabase:
    """The database for coroutines (queries, id allocation) without blocking the event loop: an async pool on
    PostgreSQL, a worker thread on SQLite."""

    def __init__(self, db: Database, pool_size: int = 20):
        self._db = db
        self._pool: AsyncConnectionPool | None = None
        self._pool_size = pool_size

    async def open(self) -> None:
        if self._db.is_postgres and self._pool is None:
            self._pool = AsyncConnectionPool(
                self._db.url.conninfo(),
                min_size=2,
                max_size=self._pool_size,
                # Every statement here is prepared, of a fixed shape, with ids and choices for parameters, over
                # tables indexed for it: one plan serves every value. Left to choose, PostgreSQL re-plans the
                # staff task list on each call, and planning it costs three times what running it does.
                # These options replace the conninfo's, so they repeat its time zone (see DatabaseURL.conninfo).
                kwargs={
                    "row_factory": dict_row,
                    "autocommit": True,
                    "options": "-c timezone=UTC -c plan_cache_mode=force_generic_plan",
                },
                open=False,
                name="cosmo-async",
            )
            await self._pool.open()

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        if self._pool is None:
            return await anyio.to_thread.run_sync(self._db.fetchone, sql, params)
        async with self._pool.connection() as conn:
            cur = await conn.execute(sql, storable_params(params), prepare=True, binary=True)
            return await cur.fetchone()

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        if self._pool is None:
            return await anyio.to_thread.run_sync(self._db.fetchall, sql, params)
        async with self._pool.connection() as conn:
            cur = await conn.execute(sql, storable_params(params), prepare=True, binary=True)
            return await cur.fetchall()

    async def fetch_many(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Row]]:
        """Several reads in one go: pipelined on one connection (one wait, one pool checkout) on PostgreSQL, one
        thread hop on SQLite."""
        if self._pool is None:
            return await anyio.to_thread.run_sync(self._fetch_many_sync, statements)
        async with self._pool.connection() as conn:
            async with conn.pipeline():
                cursors = []
                for sql, params in statements:
                    cursor = conn.cursor()
                    await cursor.execute(sql, storable_params(params), prepare=True, binary=True)
                    cursors.append(cursor)
            return [await cursor.fetchall() for cursor in cursors]

    async def fetch_packed(self, reads: Sequence[tuple[str, Sequence[Any], Sequence[str]]]) -> list[str]:
        """Several reads as one statement: each read's rows (sql, params, the columns to keep) as one JSON text, an
        array of objects keyed by those columns, in the read's order."""
        params = [p for _, read_params, _ in reads for p in read_params]
        row = await self.fetchone(packed_sql(reads, self._db.is_postgres), params)
        assert row is not None  # a SELECT of scalar subqueries has exactly one row
        return [row[f"r{n}"] for n in range(len(reads))]

    def _fetch_many_sync(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Row]]:
        with self._db.transaction(write=False) as cur:
            return [cur.execute(sql, params).fetchall() for sql, params in statements]

    async def write_one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        """One writing statement in a transaction of its own, and the row it returns."""
        if self._pool is None:
            return await anyio.to_thread.run_sync(self._write_one_sync, sql, params)
        async with self._pool.connection() as conn:
            cur = await conn.execute(sql, storable_params(params), prepare=True)
            return await cur.fetchone()

    def _write_one_sync(self, sql: str, params: Sequence[Any]) -> Row | None:
        with self._db.transaction() as cur:
            return cur.execute(sql, params).fetchone()

    async def write(self, sql: str, params: Sequence[Any] = ()) -> int:
        """One writing statement that returns no rows, in a transaction of its own; the rows it changed."""
        if self._pool is None:
            return await anyio.to_thread.run_sync(self._db.execute, sql, params)
        async with self._pool.connection() as conn:
            cur = await conn.execute(sql, storable_params(params), prepare=True)
            return cur.rowcount
