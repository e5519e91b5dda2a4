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
from datetime import datetime
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
        # Binary: each value goes as its column's type (a timestamp as its 8 bytes), not as
        # text the server must parse; measured, a third of the load's CPU on both sides.
        types = self._column_types(table, columns)  # asked before: no query during a COPY
        copy_sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
        with self._cursor.copy(copy_sql) as copy:
            copy.set_types(types)
            for row in rows:
                copy.write_row(row)

    def _column_types(self, table: str, columns: Sequence[str]) -> list[int]:
        """The type oids of the table's columns, in the order given (binary COPY needs them)."""
        found = self.all(
            "SELECT attname, atttypid FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
            (table,),
        )
        types = {row["attname"]: int(row["atttypid"]) for row in found}
        return [types[column] for column in columns]

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


def _as_text(params: Sequence[Any]) -> Sequence[Any]:
    """Timestamps as the ISO text SQLite's TEXT columns hold (`isoformat`, as everything
    here writes them; sqlite3's own adapter would put a space for the "T")."""
    if any(isinstance(value, datetime) for value in params):
        return [value.isoformat() if isinstance(value, datetime) else value for value in params]
    return params


class _SQLiteTx:
    dialect: Dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    @staticmethod
    def _sql(sql: str) -> str:
        # SQLite has one writer at a time: row locks have nothing to add
        return _ROW_LOCK.sub("", sql.replace("%s", "?"))

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._conn.execute(self._sql(sql), _as_text(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._conn.executemany(self._sql(sql), map(_as_text, rows))

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        row = self._conn.execute(self._sql(sql), _as_text(params)).fetchone()
        return dict(row) if row is not None else None

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        found = self._conn.execute(self._sql(sql), _as_text(params)).fetchall()
        return [dict(r) for r in found]

    def load(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        marks = ", ".join("?" * len(columns))
        insert = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
        self._conn.executemany(insert, map(_as_text, rows))

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
