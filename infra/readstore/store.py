"""Where read models live: PostgreSQL in production, a SQLite file embedded. Both implement
the read store port (projections/ports.py: ReadStore, Tx).

Projections and queries write one SQL (PostgreSQL flavour, `%s` placeholders, upserts with
ON CONFLICT) and run unchanged on both: SQLite 3.35+ understands the same statements."""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from infra.pool_health import check_all_when_one_fails, most_recent_first
from infra.schema_lock import LOCK_FOR_TRANSACTION, SCHEMA_LOCK_KEY
from projections.ports import Dialect, Row, Tx

POOL_TIMEOUT_S = 2.0  # waiting longer for a connection: PoolTimeout (503 in the APIs)
RECONNECT_TIMEOUT_S = 2.0
CONNECT_TIMEOUT_S = 5


class _PostgresTx:
    dialect: Dialect = "postgres"

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._cursor.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._cursor.executemany(sql, rows)

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        self._cursor.execute(sql, params)
        row: Row | None = self._cursor.fetchone()
        return row

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        self._cursor.execute(sql, params)
        rows: list[Row] = self._cursor.fetchall()
        return rows

    def load(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        with self._cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def all_each(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Row]]:
        # a cursor each: in a pipeline all are sent before the first answer is read
        connection = self._cursor.connection
        cursors = [connection.cursor() for _ in statements]
        try:
            for cursor, (sql, params) in zip(cursors, statements, strict=True):
                cursor.execute(sql, params)
            return [cursor.fetchall() for cursor in cursors]
        finally:
            for cursor in cursors:
                cursor.close()

    @contextmanager
    def pipeline(self) -> Iterator[None]:
        # Nothing prepared inside a pipeline: psycopg 3.3 could remember a statement as
        # prepared that the server never kept (a pipeline refused, then a rollback whose
        # DEALLOCATE ALL went out after the next PREPARE), and a later event failed on
        # "prepared statement does not exist" and was parked as a dead letter.
        connection = self._cursor.connection
        threshold = connection.prepare_threshold
        connection.prepare_threshold = None
        try:
            with connection.pipeline():
                yield
        finally:
            connection.prepare_threshold = threshold


class PostgresReadStore:
    """Connections are checked when handed out, all of them once one is dead
    (infra/pool_health.py); reconnect backoffs and waits for a connection last seconds, as
    the event store's (infra/eventstore/event_store.py): service resumes soon after the database."""

    dialect: Dialect = "postgres"

    def __init__(self, url: str, pool_size: int = 10) -> None:
        self._url = url
        self._pool: ConnectionPool[Any] = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            # a read is one statement or a few, each with its own snapshot, as in a READ
            # COMMITTED transaction; writes open one (`transaction`): no BEGIN and COMMIT
            # round trips around a read (an order's GET took seven round trips, now three)
            kwargs={"row_factory": dict_row, "autocommit": True},
            open=True,
            check=check_all_when_one_fails(lambda: self._pool),
            timeout=POOL_TIMEOUT_S,
            reconnect_timeout=RECONNECT_TIMEOUT_S,
        )
        most_recent_first(self._pool)

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cursor:
            yield _PostgresTx(cursor)

    @contextmanager
    def read(self) -> Iterator[Tx]:
        with self._pool.connection() as conn, conn.cursor() as cursor:
            yield _PostgresTx(cursor)

    @contextmanager
    def forked_transaction(self) -> Iterator[Tx]:
        with (
            psycopg.connect(
                self._url, row_factory=dict_row, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
            ) as conn,
            conn.transaction(),
            conn.cursor() as cursor,
        ):
            yield _PostgresTx(cursor)

    @contextmanager
    def schema(self) -> Iterator[Tx]:
        with self.transaction() as tx:
            tx.execute(LOCK_FOR_TRANSACTION, (SCHEMA_LOCK_KEY,))
            yield tx

    def close(self) -> None:
        self._pool.close()


_ROW_LOCK = re.compile(r" FOR (UPDATE|NO KEY UPDATE|SHARE|KEY SHARE)\b")


class _SQLiteTx:
    dialect: Dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    @staticmethod
    def _sql(sql: str) -> str:
        # SQLite has one writer at a time: row locks have nothing to add
        return _ROW_LOCK.sub("", sql.replace("%s", "?"))

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._conn.execute(self._sql(sql), params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._conn.executemany(self._sql(sql), rows)

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        row = self._conn.execute(self._sql(sql), params).fetchone()
        return dict(row) if row is not None else None

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return [dict(r) for r in self._conn.execute(self._sql(sql), params).fetchall()]

    def load(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        marks = ", ".join("?" * len(columns))
        self._conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)

    def all_each(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Row]]:
        return [self.all(sql, params) for sql, params in statements]

    def pipeline(self) -> AbstractContextManager[None]:
        return nullcontext()


class SQLiteReadStore:
    """One connection per thread; writers take the database lock up front (IMMEDIATE), so
    a projector and a rebuild serialise instead of failing on a lock upgrade."""

    dialect: Dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        self._path = path
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self._path, isolation_level=None, check_same_thread=False, timeout=30
            )
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def _begin(self, mode: str) -> Iterator[Tx]:
        conn = self._conn()
        conn.execute(f"BEGIN {mode}")
        try:
            yield _SQLiteTx(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def transaction(self) -> AbstractContextManager[Tx]:
        return self._begin("IMMEDIATE")

    def read(self) -> AbstractContextManager[Tx]:
        return self._begin("DEFERRED")

    schema = transaction  # IMMEDIATE: writers take turns already

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
