"""One PostgreSQL advisory lock serialises every OrderFlow process's DDL.

Each process creates the tables it needs when it starts. PostgreSQL's catalog is not safe
for concurrent `CREATE ... IF NOT EXISTS` or `CREATE OR REPLACE FUNCTION` of the same
object ("tuple concurrently updated", duplicate pg_type keys), so processes started
together take turns: the first creates, the others find everything there."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from eventsourcing.postgres import PostgresDatastore

SCHEMA_LOCK_KEY = 0x0F_0F_5C_E3  # pg_advisory_lock key (the relay's is 0x0F0F0F0F)
LOCK_FOR_TRANSACTION = "SELECT pg_advisory_xact_lock(%s)"  # released at commit/rollback
LOCK_FOR_SESSION = "SELECT pg_advisory_lock(%s)"
UNLOCK_FOR_SESSION = "SELECT pg_advisory_unlock(%s)"


@contextmanager
def held_for_session(datastore: PostgresDatastore) -> Iterator[None]:
    """The library's DDL spans several transactions: the lock is held on a connection of
    its own (a session lock) for all of them."""
    with datastore.get_connection() as conn:
        conn.execute(LOCK_FOR_SESSION, (SCHEMA_LOCK_KEY,))
        try:
            yield
        finally:
            conn.execute(UNLOCK_FOR_SESSION, (SCHEMA_LOCK_KEY,))
