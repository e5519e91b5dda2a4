"""One connection and cursor that a thread keeps across its appends: the group appender's.

Every append took a connection from the pool and gave it back: the pool's lock, its
checkout check, the library's wrapping, and a new cursor whose fresh transformer looked
up again how to send each of the append's eleven arrays. Together they were about a tenth
of a command's CPU (ADR 0016, session 23 update). The appender thread is the one that
appends batch after batch, so it holds one connection and runs the append on one cursor:
psycopg keeps a cursor's adapters while the same statement runs again. Its other statement,
the log follower's read of what other processes appended (log_follower.py), runs on a
cursor of its own on the same connection, so each keeps its adapters: with two write
processes that read came before most batches, on a pool checkout of its own and a second
backend (ADR 0016, session 24 update).

A held connection that broke (a database restart, a lost reply) is handed back to the
pool, which discards it, and the next append takes another; errors reach the caller as
the library's own, as its connections raise them, so its retry of appends still works."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from eventsourcing.persistence import (
    DatabaseError,
    DataError,
    IntegrityError,
    InterfaceError,
    InternalError,
    NotSupportedError,
    OperationalError,
    PersistenceError,
    ProgrammingError,
)
from eventsourcing.postgres import PostgresDatastore
from psycopg.rows import TupleRow, tuple_row

# psycopg's errors and the library's, in the order the library's connections test them
_AS_LIBRARY_ERRORS: tuple[tuple[type[psycopg.Error], type[PersistenceError]], ...] = (
    (psycopg.InterfaceError, InterfaceError),
    (psycopg.OperationalError, OperationalError),
    (psycopg.DataError, DataError),
    (psycopg.IntegrityError, IntegrityError),
    (psycopg.InternalError, InternalError),
    (psycopg.ProgrammingError, ProgrammingError),
    (psycopg.NotSupportedError, NotSupportedError),
    (psycopg.DatabaseError, DatabaseError),
    (psycopg.Error, PersistenceError),
)


def as_library_error(error: psycopg.Error) -> PersistenceError:
    for theirs, ours in _AS_LIBRARY_ERRORS:
        if isinstance(error, theirs):
            return ours(str(error))
    raise AssertionError("psycopg.Error is the last entry")  # pragma: no cover


class HeldConnections:
    """`cursor(use)` gives a thread inside `held()` the cursor it holds for that use (one
    connection, a cursor per use), and any other thread a cursor on a connection from the
    pool for the block only."""

    def __init__(self, datastore: PostgresDatastore) -> None:
        self._datastore = datastore
        self._local = threading.local()

    @contextmanager
    def held(self) -> Iterator[None]:
        self._local.holding = True
        try:
            yield
        finally:
            self._local.holding = False
            self._release()

    @contextmanager
    def cursor(self, use: str = "append") -> Iterator[psycopg.Cursor[TupleRow]]:
        if not getattr(self._local, "holding", False):
            with (
                self._datastore.get_connection() as pooled,
                pooled.cursor(row_factory=tuple_row) as cur,
            ):
                yield cur
            return
        conn: psycopg.Connection[Any] | None = getattr(self._local, "connection", None)
        cursor: psycopg.Cursor[TupleRow] | None = None
        try:
            if conn is None or conn.broken or conn.closed:
                self._release()
                conn = self._local.connection = self._datastore.pool.getconn()
                self._local.cursors = {}
            cursors: dict[str, psycopg.Cursor[TupleRow]] = self._local.cursors
            cursor = cursors.get(use)
            if cursor is None:
                cursor = cursors[use] = conn.cursor(row_factory=tuple_row)
            yield cursor
        except psycopg.Error as error:
            if cursor is not None and cursor.connection.broken:
                self._release()
            raise as_library_error(error) from error
        except BaseException:
            self._release()  # a statement may be in flight: the pool resets or discards it
            raise

    def _release(self) -> None:
        conn: psycopg.Connection[Any] | None = getattr(self._local, "connection", None)
        if conn is None:
            return
        self._local.connection = None
        cursors: dict[str, psycopg.Cursor[TupleRow]] = self._local.cursors
        self._local.cursors = {}
        for cursor in cursors.values():
            cursor.close()
        self._datastore.pool.putconn(conn)
