"""The library's recorders, extended to keep idempotent answers beside the events.

The answer row is written inside the transaction that appends the command's events,
so either both exist or neither does: a retried request can never append twice."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteDatastore
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from infra.ports import IdempotentAnswer, StoredResponse

IDEMPOTENCY_TABLE = "idempotency_keys"


def _answer_row(answer: IdempotentAnswer, last: StoredEvent) -> tuple[Any, ...]:
    return (
        answer.claim.scope,
        answer.claim.key,
        answer.claim.fingerprint,
        answer.status_code,
        json.dumps(answer.body, separators=(",", ":")),
        str(last.originator_id),
        last.originator_version,
    )


def _stored(fingerprint: str, status: int, body: Any, position: int) -> StoredResponse:
    decoded = json.loads(body) if isinstance(body, str | bytes) else body
    return StoredResponse(fingerprint, status, {**decoded, "position": position})


class PostgresRecorder(PostgresApplicationRecorder):
    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
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

    def _insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        answer: IdempotentAnswer | None = kwargs.get("idempotency")
        if answer is not None:
            curs.execute(self._insert_answer, _answer_row(answer, stored_events[-1]))
        super()._insert_events(curs, stored_events, **kwargs)

    def find_answer(self, scope: str, key: str) -> StoredResponse | None:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._select_answer, (scope, key))
            row = curs.fetchone()
        if row is None:
            return None
        return _stored(row["fingerprint"], row["status_code"], row["body"], row["notification_id"])


class SQLiteRecorder(SQLiteApplicationRecorder):
    def __init__(
        self, datastore: SQLiteDatastore, events_table_name: str = "stored_events"
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        self._insert_answer = (
            f"INSERT INTO {IDEMPOTENCY_TABLE} (scope, key, fingerprint, status_code, body, "
            "originator_id, originator_version) VALUES (?, ?, ?, ?, ?, ?, ?)"
        )
        self._select_answer = (
            "SELECT k.fingerprint, k.status_code, k.body, e.rowid "
            f"FROM {IDEMPOTENCY_TABLE} k JOIN {self.events_table_name} e "
            "ON e.originator_id = k.originator_id AND e.originator_version = k.originator_version "
            "WHERE k.scope = ? AND k.key = ?"
        )

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {IDEMPOTENCY_TABLE} ("
            "scope TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL, "
            "status_code INTEGER NOT NULL, body TEXT NOT NULL, "
            "originator_id TEXT NOT NULL, originator_version INTEGER NOT NULL, "
            "created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (scope, key))",
        ]

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        answer: IdempotentAnswer | None = kwargs.get("idempotency")
        if answer is not None:
            row = list(_answer_row(answer, stored_events[-1]))
            last_id = stored_events[-1].originator_id
            row[5] = last_id.hex if isinstance(last_id, UUID) else last_id  # stored as hex here
            c.execute(self._insert_answer, row)
        return super()._insert_events(c, stored_events, **kwargs)

    def find_answer(self, scope: str, key: str) -> StoredResponse | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(self._select_answer, (scope, key))
            row = c.fetchone()
        if row is None:
            return None
        return _stored(row[0], row[1], row[2], row[3])
