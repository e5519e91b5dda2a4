"""The library's recorders, extended with two rows written inside the transaction that
appends a command's events, so either all exist or none does:

- the idempotent answer, so a retried request can never append twice;
- one link of the tamper-evident chain per event (infra/audit/chain.py).

They also answer the audit's questions, which need each event's link."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import IntegrityError, Notification, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteDatastore
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from commands.ports import Answer, IdempotentAnswer, StoredAnswer
from infra.audit.chain import GENESIS, TABLE, ChainRow, canonical, link
from infra.schema_lock import LOCK_FOR_SESSION, SCHEMA_LOCK_KEY, UNLOCK_FOR_SESSION

IDEMPOTENCY_TABLE = "idempotency_keys"


@dataclass(frozen=True)
class LoggedEvent:
    """A stored event with its position, its predecessor in the log and when it was
    recorded: what audit answers are made of."""

    notification: Notification
    previous_position: int
    recorded_at: datetime
    hash: bytes = b""


@dataclass(frozen=True)
class AuditFilter:
    after: int = 0
    limit: int = 1000
    originator_id: UUID | None = None
    topics: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None


def _links(
    previous: tuple[int, bytes], ids: Sequence[int], stored_events: Sequence[StoredEvent]
) -> list[tuple[int, int, bytes]]:
    position, last = previous
    rows = []
    for notification_id, e in zip(ids, stored_events, strict=True):
        last = link(
            last,
            canonical(notification_id, e.originator_id, e.originator_version, e.topic, e.state),
        )
        rows.append((notification_id, position, last))
        position = notification_id
    return rows


def _bytes(value: Any) -> bytes:
    """Stored state as bytes, whatever a tampering hand left in the column."""
    return value.encode() if isinstance(value, str) else bytes(value)


def _chain_row(row: Any, position: int) -> ChainRow:
    event_bytes = None
    if row["event_position"] is not None:
        event_bytes = canonical(
            row["event_position"],
            row["originator_id"],
            row["originator_version"],
            row["topic"],
            _bytes(row["state"]),
        )
    link_hash = bytes(row["hash"]) if row["hash"] is not None else None
    return ChainRow(position, event_bytes, row["previous_position"], link_hash)


def _answer_row(answer: IdempotentAnswer, last: StoredEvent) -> tuple[Any, ...]:
    return (
        answer.claim.scope,
        answer.claim.key,
        answer.claim.fingerprint,
        answer.answer.status,
        json.dumps(answer.answer.body, separators=(",", ":")),
        str(last.originator_id),
        last.originator_version,
    )


def _answer_rows(kwargs: dict[str, Any], events: Sequence[StoredEvent]) -> list[tuple[Any, ...]]:
    """`idempotency`: one command's answer, tied to the last event; `answers` (group
    commit): each command's answer with the index of its own last event."""
    answer: IdempotentAnswer | None = kwargs.get("idempotency")
    pairs: Sequence[tuple[IdempotentAnswer, int]] = kwargs.get("answers", ())
    if answer is not None:
        pairs = [*pairs, (answer, len(events) - 1)]
    return [_answer_row(a, events[last]) for a, last in pairs]


def _stored(fingerprint: str, status: int, body: Any, position: int) -> StoredAnswer:
    decoded = json.loads(body) if isinstance(body, str | bytes) else body
    return StoredAnswer(fingerprint, Answer(status, decoded), position)


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
            row = found.get((_as_uuid(e.originator_id), e.originator_version))
            if row is None or bytes(row["state"]) != e.state:
                return None
            positions.append(row["notification_id"])
        return positions

    def create_table(self) -> None:
        """The library's DDL spans several transactions: the lock is held on a connection
        of its own (a session lock) for all of them."""
        with self.datastore.get_connection() as conn:
            conn.execute(LOCK_FOR_SESSION, (SCHEMA_LOCK_KEY,))
            try:
                super().create_table()
            finally:
                conn.execute(UNLOCK_FOR_SESSION, (SCHEMA_LOCK_KEY,))

    def _insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        # no events: nothing to append, nothing to answer
        if stored_events and (rows := _answer_rows(kwargs, stored_events)):
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

    def _fetch_ids_after_insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        assert ids is not None
        # Still under the table lock the append took: the last link is the chain's head.
        curs.execute(self._last_link)
        head = curs.fetchone()
        previous = (head["position"], bytes(head["hash"])) if head else (0, GENESIS)
        curs.executemany(self._insert_links, _links(previous, ids, stored_events))
        return ids

    def find_answer(self, scope: str, key: str) -> StoredAnswer | None:
        # one statement on an autocommit connection: one round trip, no BEGIN/ROLLBACK
        with self.datastore.get_connection() as conn:
            row = conn.execute(self._select_answer, (scope, key)).fetchone()
        if row is None:
            return None
        return _stored(row["fingerprint"], row["status_code"], row["body"], row["notification_id"])

    def purge_answers(self, before: datetime) -> int:
        """Forgets the idempotent answers stored before `before`; returns how many."""
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(self._purge_answers, (before,))
            return curs.rowcount

    def chain_rows(self, after: int, limit: int) -> list[ChainRow]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._chain_rows, (after, limit))
            return [_chain_row(row, row["position"]) for row in curs.fetchall()]

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


class SQLiteRecorder(SQLiteApplicationRecorder):
    def __init__(
        self, datastore: SQLiteDatastore, events_table_name: str = "stored_events"
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        self._insert_answer = (
            f"INSERT INTO {IDEMPOTENCY_TABLE} (scope, key, fingerprint, status_code, body, "
            "originator_id, originator_version) VALUES (?, ?, ?, ?, ?, ?, ?)"
        )
        events = self.events_table_name
        self._last_link = f"SELECT position, hash FROM {TABLE} ORDER BY position DESC LIMIT 1"
        self._insert_links = (
            f"INSERT INTO {TABLE} (position, previous_position, hash) VALUES (?, ?, ?)"
        )
        # SQLite's FULL OUTER JOIN: events with or without links, and links without events
        self._chain_rows = (
            "SELECT COALESCE(e.rowid, a.position) AS position, e.rowid AS event_position, "
            "e.originator_id, e.originator_version, e.topic, e.state, a.previous_position, "
            f"a.hash FROM {events} e FULL OUTER JOIN {TABLE} a ON a.position = e.rowid "
            "WHERE COALESCE(e.rowid, a.position) > ? ORDER BY 1 LIMIT ?"
        )
        self._logged = (
            "SELECT e.rowid AS notification_id, e.originator_id, e.originator_version, e.topic, "
            f"e.state, a.previous_position, a.recorded_at, a.hash FROM {events} e "
            f"JOIN {TABLE} a ON a.position = e.rowid WHERE "
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
            f"CREATE INDEX IF NOT EXISTS {IDEMPOTENCY_TABLE}_created_at "
            f"ON {IDEMPOTENCY_TABLE} (created_at)",
            f"CREATE TABLE IF NOT EXISTS {TABLE} (position INTEGER PRIMARY KEY, "
            "previous_position INTEGER NOT NULL, "
            "recorded_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')), "
            "hash BLOB NOT NULL)",
        ]

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if not stored_events:  # nothing to append, so no answer to keep and no link to add
            return []
        for answer_row in _answer_rows(kwargs, stored_events):
            row = list(answer_row)
            row[5] = row[5].replace("-", "")  # SQLite stores the originator id as hex
            c.execute(self._insert_answer, row)
        ids = super()._insert_events(c, stored_events, **kwargs)
        assert ids is not None
        # The append holds SQLite's write lock: the last link is the chain's head.
        c.execute(self._last_link)
        head = c.fetchone()
        previous = (head[0], bytes(head[1])) if head else (0, GENESIS)
        c.executemany(self._insert_links, _links(previous, ids, stored_events))
        return ids

    def find_answer(self, scope: str, key: str) -> StoredAnswer | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(self._select_answer, (scope, key))
            row = c.fetchone()
        if row is None:
            return None
        return _stored(row[0], row[1], row[2], row[3])

    def purge_answers(self, before: datetime) -> int:
        """Forgets the idempotent answers stored before `before`; returns how many."""
        # created_at is SQLite's CURRENT_TIMESTAMP: UTC, "YYYY-MM-DD HH:MM:SS"
        cutoff = before.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        with self.datastore.transaction(commit=True) as c:
            c.execute(f"DELETE FROM {IDEMPOTENCY_TABLE} WHERE created_at < ?", (cutoff,))
            c.execute("SELECT changes()")
            purged: int = c.fetchone()[0]
        return purged

    def chain_rows(self, after: int, limit: int) -> list[ChainRow]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(self._chain_rows, (after, limit))
            rows = c.fetchall()
        return [
            _chain_row({**dict(row), "originator_id": _uuid(row["originator_id"])}, row["position"])
            for row in rows
        ]

    def link_at(self, position: int) -> bytes | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT hash FROM {TABLE} WHERE position = ?", (position,))
            row = c.fetchone()
        return bytes(row[0]) if row else None

    def logged_events(self, query: AuditFilter) -> list[LoggedEvent]:
        where = ["e.rowid > ?"]
        params: list[Any] = [query.after]
        if query.originator_id is not None:
            where.append("e.originator_id = ?")
            params.append(query.originator_id.hex)
        if query.topics:
            where.append(f"e.topic IN ({', '.join('?' * len(query.topics))})")
            params.extend(query.topics)
        if query.since is not None:
            where.append("a.recorded_at >= ?")
            params.append(sqlite_time(query.since))
        if query.until is not None:
            where.append("a.recorded_at < ?")
            params.append(sqlite_time(query.until))
        statement = self._logged + " AND ".join(where) + " ORDER BY e.rowid LIMIT ?"
        with self.datastore.transaction(commit=False) as c:
            c.execute(statement, [*params, query.limit])
            rows = c.fetchall()
        return [
            LoggedEvent(
                Notification(
                    id=r["notification_id"],
                    originator_id=UUID(r["originator_id"]),
                    originator_version=r["originator_version"],
                    topic=r["topic"],
                    state=bytes(r["state"]),
                ),
                r["previous_position"],
                datetime.fromisoformat(r["recorded_at"]),
                bytes(r["hash"]),
            )
            for r in rows
        ]


def _as_uuid(value: UUID | str) -> UUID:
    return value if isinstance(value, UUID) else UUID(value)


def _uuid(value: str | None) -> UUID | None:
    return UUID(value) if value is not None else None


def sqlite_time(moment: datetime) -> str:
    """The form SQLite's strftime writes, so text comparison orders correctly."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
