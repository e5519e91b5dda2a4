"""The library's PostgreSQL recorder, extended: a command's idempotent answer and one
tamper-evident chain link per event (infra/audit/chain.py) are written in the transaction
that appends its events; it also answers the audit's questions, which need each link."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

import psycopg
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    Notification,
    OperationalError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import retry
from psycopg.sql import SQL, Composable, Identifier, Literal

from commands.ports import StoredAnswer
from infra.audit.chain import TABLE, ChainRow
from infra.eventstore.held_connection import HeldConnections
from infra.eventstore.recorded import (
    IDEMPOTENCY_TABLE,
    AuditFilter,
    LoggedEvent,
    answer_rows,
    as_uuid,
    chain_row,
    stored_answer,
)
from infra.eventstore.server_event_ids import event_id_function, install_event_id_function
from infra.schema_lock import held_for_session

APPEND_FUNCTION = "orderflow_append"
ANSWER_COLUMNS = 7  # an answer row's values (recorded.answer_row), one array each
# One append, server side: the idempotent answers first (a key already taken fails before
# the lock is waited for), then the library's EXCLUSIVE lock that makes positions commit
# in order (ADR 0010), the wake-up of the relay (the library's NOTIFY), the events, and
# one chain link per event, in position order, from the chain's head under the lock:
# sha256(previous hash || "position|originator_id|version|topic|" || state), the bytes
# infra/audit/chain.py's canonical() and link() make, which the audit checks in Python.
APPEND_BODY = """
CREATE OR REPLACE FUNCTION {schema}.{append}(
    ids uuid[], versions bigint[], topics text[], states bytea[],
    scopes text[], keys text[], fingerprints text[], statuses integer[], bodies json[],
    answer_ids uuid[], answer_versions bigint[]
) RETURNS SETOF bigint LANGUAGE plpgsql AS $body$
DECLARE
    previous_position bigint := 0;
    previous_hash bytea := decode(repeat('00', 32), 'hex');
    head record;
    appended record;
BEGIN
    PERFORM set_config('lock_timeout', {lock_timeout}, true);
    INSERT INTO {schema}.{keys} (scope, key, fingerprint, status_code, body, originator_id,
        originator_version)
    SELECT * FROM unnest(scopes, keys, fingerprints, statuses, bodies, answer_ids,
        answer_versions);
    LOCK TABLE {schema}.{events} IN EXCLUSIVE MODE;
    PERFORM pg_notify({channel}, '');
    SELECT position, hash INTO head FROM {schema}.{chain} ORDER BY position DESC LIMIT 1;
    IF FOUND THEN
        previous_position := head.position;
        previous_hash := head.hash;
    END IF;
    FOR appended IN
        WITH inserted AS (
            INSERT INTO {schema}.{events} (originator_id, originator_version, topic, state)
            SELECT * FROM unnest(ids, versions, topics, states)
            RETURNING notification_id, originator_id, originator_version, topic, state
        )
        SELECT * FROM inserted ORDER BY notification_id
    LOOP
        previous_hash := sha256(previous_hash || convert_to(
            appended.notification_id::text || '|' || appended.originator_id::text || '|'
            || appended.originator_version::text || '|' || appended.topic || '|', 'UTF8')
            || appended.state);
        INSERT INTO {schema}.{chain} (position, previous_position, hash)
        VALUES (appended.notification_id, previous_position, previous_hash);
        previous_position := appended.notification_id;
        RETURN NEXT appended.notification_id;
    END LOOP;
END
$body$
"""


class PostgresRecorder(PostgresApplicationRecorder):
    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        self._held = HeldConnections(datastore)
        schema = Identifier(datastore.schema)
        keys = Identifier(IDEMPOTENCY_TABLE)
        events = Identifier(self.events_table_name)
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{keys} ("
                "scope text NOT NULL, key text NOT NULL, fingerprint text NOT NULL, "
                "status_code integer NOT NULL, body json NOT NULL, "
                "originator_id uuid NOT NULL, originator_version bigint NOT NULL, "
                "created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (scope, key))"
            ).format(schema=schema, keys=keys)
        )
        chain = Identifier(TABLE)
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{chain} (position bigint PRIMARY KEY, "
                "previous_position bigint NOT NULL, "
                "recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(), "
                "hash bytea NOT NULL)"
            ).format(schema=schema, chain=chain)
        )
        self._append = SQL(
            "SELECT {schema}.{append}(%b::uuid[], %b::bigint[], %b::text[], %b::bytea[], "
            "%b::text[], %b::text[], %b::text[], %b::integer[], %b::json[], %b::uuid[], "
            "%b::bigint[]) AS notification_id"
        ).format(schema=schema, append=Identifier(APPEND_FUNCTION))
        self.sql_create_statements.append(
            SQL(APPEND_BODY).format(
                schema=schema,
                append=Identifier(APPEND_FUNCTION),
                events=events,
                keys=keys,
                chain=chain,
                channel=Literal(self.channel_name),
                lock_timeout=Literal(f"{datastore.lock_timeout}s"),
            )
        )
        self._unread = SQL(
            "SELECT originator_id, originator_version, topic, state, notification_id "
            "FROM {schema}.{events} WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
        ).format(schema=schema, events=events)
        self._chain_rows = SQL(
            "SELECT COALESCE(e.notification_id, a.position) AS position, "
            "e.notification_id AS event_position, e.originator_id, e.originator_version, "
            "e.topic, e.state, a.previous_position, a.hash "
            "FROM {schema}.{events} e FULL OUTER JOIN {schema}.{chain} a "
            "ON a.position = e.notification_id "
            "WHERE COALESCE(e.notification_id, a.position) > %s ORDER BY 1 LIMIT %s"
        ).format(schema=schema, events=events, chain=chain)
        self._link_at = SQL("SELECT hash FROM {schema}.{chain} WHERE position = %s").format(
            schema=schema, chain=chain
        )
        self._logged = SQL(
            "SELECT e.notification_id, e.originator_id, e.originator_version, e.topic, e.state, "
            "a.previous_position, a.recorded_at, a.hash FROM {schema}.{events} e "
            "JOIN {schema}.{chain} a ON a.position = e.notification_id WHERE "
        ).format(schema=schema, events=events, chain=chain)
        self.sql_create_statements.append(
            SQL("CREATE INDEX IF NOT EXISTS {index} ON {schema}.{keys} (created_at)").format(
                index=Identifier(f"{IDEMPOTENCY_TABLE}_created_at"), schema=schema, keys=keys
            )
        )
        self._purge_answers = SQL("DELETE FROM {schema}.{keys} WHERE created_at < %s").format(
            schema=schema, keys=keys
        )
        # The position is the notification id of the command's last event, found by join.
        self._select_answer = SQL(
            "SELECT k.fingerprint, k.status_code, k.body, e.notification_id "
            "FROM {schema}.{keys} k JOIN {schema}.{events} e "
            "ON e.originator_id = k.originator_id AND e.originator_version = k.originator_version "
            "WHERE k.scope = %s AND k.key = %s"
        ).format(schema=schema, keys=keys, events=events)
        self._select_recorded = SQL(
            "SELECT e.originator_id, e.originator_version, e.notification_id, e.state "
            "FROM {schema}.{events} e JOIN unnest(%s::uuid[], %s::bigint[]) AS k(id, version) "
            "ON e.originator_id = k.id AND e.originator_version = k.version"
        ).format(schema=schema, events=events)

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if not stored_events:
            return []  # nothing to append, nothing to answer
        attempts: list[int] = []
        try:
            appended: list[int] = self._append_events(
                stored_events, answer_rows(kwargs, stored_events), attempts
            )
            return appended
        except IntegrityError:
            # A collision on the first attempt is another writer's: the append is one
            # statement in one transaction, so nothing of it was stored. Only a retry (the
            # connection broke, the first attempt's outcome unknown) can collide with the
            # events it committed itself; those are answered as committed, not as a
            # conflict to run the command again. Looking only then spares every ordinary
            # conflict a read (ADR 0016, session 25).
            if len(attempts) < 2:
                raise
            ids = self._already_recorded(stored_events)
            if ids is None:
                raise
            return ids

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def _append_events(
        self,
        stored_events: Sequence[StoredEvent],
        answers: Sequence[tuple[Any, ...]],
        attempts: list[int],
    ) -> list[int]:
        """Answers, events and their chain links in one statement: one round trip, one
        transaction (the connection is in autocommit), under the events table's lock.
        Each attempt (the library retries a broken connection) adds to `attempts`."""
        attempts.append(len(attempts) + 1)
        event_columns = [
            [e.originator_id for e in stored_events],
            [e.originator_version for e in stored_events],
            [e.topic for e in stored_events],
            [e.state for e in stored_events],
        ]
        answer_columns = columns(answers) if answers else [[] for _ in range(ANSWER_COLUMNS)]
        with self._held.cursor() as cursor:
            rows = cursor.execute(self._append, [*event_columns, *answer_columns]).fetchall()
        return [row[0] for row in rows]

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def notifications_after(self, position: int, limit: int) -> list[Notification]:
        """The library's select_notifications(position, limit, inclusive_of_start=False),
        for the log follower: on the appending thread's held connection, with a statement
        built once and rows read as tuples."""
        with self._held.cursor("read") as cursor:
            rows = cursor.execute(self._unread, (position, limit)).fetchall()
        return [Notification(*row) for row in rows]  # the fields' order, as selected

    def appending_on_one_connection(self) -> AbstractContextManager[None]:
        """While the block runs, this thread's appends keep one connection and cursor
        (infra/eventstore/held_connection.py)."""
        return self._held.held()

    def _already_recorded(self, stored_events: Sequence[StoredEvent]) -> list[int] | None:
        """Positions of exactly these events (same state, so the same command's causation
        id and timestamps), if all of them are stored; None otherwise."""
        if not stored_events:
            return None
        ids = [e.originator_id for e in stored_events]
        versions = [e.originator_version for e in stored_events]
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._select_recorded, (ids, versions))
            found = {(r["originator_id"], r["originator_version"]): r for r in curs.fetchall()}
        positions = []
        for e in stored_events:
            row = found.get((as_uuid(e.originator_id), e.originator_version))
            if row is None or bytes(row["state"]) != e.state:
                return None
            positions.append(row["notification_id"])
        return positions

    def create_table(self) -> None:
        with held_for_session(self.datastore):
            super().create_table()
            install_event_id_function(self.datastore)

    def event_id_function(self) -> Composable | None:
        return event_id_function(self.datastore)

    def version_taken(self, conflict: IntegrityError) -> bool:
        """Whether an append failed because another writer took one of its versions (not
        because an Idempotency-Key was used before)."""
        cause = conflict.__cause__
        return (
            isinstance(cause, psycopg.errors.UniqueViolation)
            and cause.diag.table_name == self.events_table_name
        )

    def find_answer(self, scope: str, key: str) -> StoredAnswer | None:
        # one statement on an autocommit connection: one round trip, no BEGIN/ROLLBACK
        with self.datastore.get_connection() as conn:
            row = conn.execute(self._select_answer, (scope, key)).fetchone()
        if row is None:
            return None
        return stored_answer(
            row["fingerprint"], row["status_code"], row["body"], row["notification_id"]
        )

    def purge_answers(self, before: datetime) -> int:
        """Forgets the idempotent answers stored before `before`; returns how many."""
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(self._purge_answers, (before,))
            return curs.rowcount

    def chain_rows(self, after: int, limit: int) -> list[ChainRow]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._chain_rows, (after, limit))
            return [chain_row(row, row["position"]) for row in curs.fetchall()]

    def link_at(self, position: int) -> bytes | None:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._link_at, (position,))
            row = curs.fetchone()
        return bytes(row["hash"]) if row else None

    def logged_events(self, query: AuditFilter) -> list[LoggedEvent]:
        where = [SQL("e.notification_id > %s")]
        params: list[Any] = [query.after]
        if query.originator_id is not None:
            where.append(SQL("e.originator_id = %s"))
            params.append(query.originator_id)
        if query.topics:
            where.append(SQL("e.topic = ANY(%s)"))
            params.append(list(query.topics))
        if query.since is not None:
            where.append(SQL("a.recorded_at >= %s"))
            params.append(query.since)
        if query.until is not None:
            where.append(SQL("a.recorded_at < %s"))
            params.append(query.until)
        statement = self._logged + SQL(" AND ").join(where)
        statement += SQL(" ORDER BY e.notification_id LIMIT %s")
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(statement, [*params, query.limit])
            return [
                LoggedEvent(
                    Notification(
                        id=r["notification_id"],
                        originator_id=r["originator_id"],
                        originator_version=r["originator_version"],
                        topic=r["topic"],
                        state=bytes(r["state"]),
                    ),
                    r["previous_position"],
                    r["recorded_at"],
                    bytes(r["hash"]),
                )
                for r in curs.fetchall()
            ]


def columns(rows: Sequence[tuple[Any, ...]]) -> list[list[Any]]:
    """Rows as one list per column, for a statement that unnests arrays."""
    return [list(column) for column in zip(*rows, strict=True)]
