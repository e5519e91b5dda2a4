"""Event ids made by the database: uuid-ossp's `uuid_generate_v5` names each event a log
scan hands out (infra/eventstore/log_rows.py), which takes a SHA-1 per event off the
scan's Python (ADR 0018, session 22). A trusted extension, created by each process where
its role may; a database may not ship it, or the role may not create it: the scan then
makes the same ids itself."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from eventsourcing.persistence import PersistenceError
from eventsourcing.postgres import PostgresDatastore
from psycopg.rows import tuple_row
from psycopg.sql import Composable, Identifier

log = logging.getLogger(__name__)
EVENT_ID_EXTENSION = "uuid-ossp"


def install_event_id_function(datastore: PostgresDatastore) -> None:
    try:
        with datastore.get_connection() as conn:
            conn.execute(f'CREATE EXTENSION IF NOT EXISTS "{EVENT_ID_EXTENSION}"')
    except PersistenceError as error:  # the library's wrapping of psycopg's errors
        log.info("log scans name events in Python: no %s (%s)", EVENT_ID_EXTENSION, error)


def event_id_function(datastore: PostgresDatastore) -> Composable | None:
    """The server's `uuid_generate_v5`, schema-qualified, if the database has it."""
    with datastore.get_connection() as conn:
        return event_id_function_on(conn)


def event_id_function_on(conn: psycopg.Connection[Any]) -> Composable | None:
    """`event_id_function`, asked on a connection of the caller's."""
    with conn.cursor(row_factory=tuple_row) as cursor:
        found = cursor.execute(
            "SELECT n.nspname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE p.proname = 'uuid_generate_v5' AND p.pronargs = 2 LIMIT 1"
        ).fetchone()
    return None if found is None else Identifier(found[0], "uuid_generate_v5")
