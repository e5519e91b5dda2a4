"""The library's PostgreSQL recorder, extended: a command's idempotent answer and one
tamper-evident chain link per event (infra/audit/chain.py) are written in the transaction
that appends its events; it also answers the audit's questions, which need each link."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from weakref import WeakKeyDictionary

import psycopg
from eventsourcing.persistence import IntegrityError, Notification, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from commands.ports import StoredAnswer
from infra.audit.chain import GENESIS, TABLE, ChainRow
from infra.eventstore.recorded import (
    IDEMPOTENCY_TABLE,
    AuditFilter,
    LoggedEvent,
    answer_rows,
    as_uuid,
    chain_links,
    chain_row,
    stored_answer,
)
from infra.schema_lock import held_for_session


class PostgresRecorder(PostgresApplicationRecorder):
    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        self._heads: WeakKeyDictionary[Cursor[DictRow], Cursor[DictRow]] = WeakKeyDictionary()
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
        self._last_link = SQL(
            "SELECT position, hash FROM {schema}.{chain} ORDER BY position DESC LIMIT 1"
        ).format(schema=schema, chain=chain)
        self._insert_links = SQL(
            "INSERT INTO {schema}.{chain} (position, previous_position, hash) VALUES (%s, %s, %s)"
        ).format(schema=schema, chain=chain)
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
        self._insert_answer = SQL(
            "INSERT INTO {schema}.{keys} (scope, key, fingerprint, status_code, body, "
            "originator_id, originator_version) VALUES (%s, %s, %s, %s, %s, %s, %s)"
        ).format(schema=schema, keys=keys)
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
        try:
            inserted: Sequence[int] | None = super().insert_events(stored_events, **kwargs)
        except IntegrityError:
            # The library retries an append whose connection broke. If only the COMMIT's
            # reply was lost, the retry collides with the events it committed itself:
            # those are answered as committed, not as a conflict to run the command again.
            ids = self._already_recorded(stored_events)
            if ids is None:
                raise
            return ids
        return inserted

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

    def _insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        # no events: nothing to append, nothing to answer
        if stored_events and (rows := answer_rows(kwargs, stored_events)):
            curs.executemany(self._insert_answer, rows)
        super()._insert_events(curs, stored_events, **kwargs)

    def _insert_stored_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        try:
            super()._insert_stored_events(curs, stored_events, **kwargs)
        except psycopg.Error:
            # An earlier statement's error (the Idempotency-Key's row, taken by a concurrent
            # request) read back while the append is still being sent. The library keeps
            # the error for later and COMMITs into the aborted pipeline, which answers
            # "pipeline aborted", an OperationalError it retries for seconds as an outage.
            # A nested pipeline syncs, so that COMMIT is answered with a rollback and the
            # real error is what the library raises.
            with contextlib.suppress(psycopg.Error), curs.connection.pipeline():
                pass
            raise

    def _lock_table(self, curs: Cursor[DictRow]) -> None:
        super()._lock_table(curs)
        # Under the lock, the last link is the chain's head until this append commits. It
        # is asked for here, in the append's pipeline, so that it comes back with the
        # insert's reply instead of in a round trip of its own.
        head = curs.connection.cursor()
        head.execute(self._last_link)
        self._heads[curs] = head

    def _fetch_ids_after_insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        assert ids is not None
        with self._heads.pop(curs) as asked:
            head = asked.fetchone()
        previous = (head["position"], bytes(head["hash"])) if head else (0, GENESIS)
        curs.executemany(self._insert_links, chain_links(previous, ids, stored_events))
        return ids

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
