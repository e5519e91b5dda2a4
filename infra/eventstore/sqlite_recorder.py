"""The library's SQLite recorder, extended as the PostgreSQL one is
(`postgres_recorder.py`): answers and chain links in the appending transaction, and the
audit's questions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError, Notification, StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteDatastore

from commands.ports import StoredAnswer
from infra.audit.chain import GENESIS, TABLE, ChainRow
from infra.eventstore.recorded import (
    IDEMPOTENCY_TABLE,
    AuditFilter,
    LoggedEvent,
    answer_rows,
    chain_links,
    chain_row,
    sqlite_time,
    stored_answer,
    uuid_or_none,
)


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
        for answer_row in answer_rows(kwargs, stored_events):
            row = list(answer_row)
            row[5] = row[5].replace("-", "")  # SQLite stores the originator id as hex
            c.execute(self._insert_answer, row)
        ids = super()._insert_events(c, stored_events, **kwargs)
        assert ids is not None
        # The append holds SQLite's write lock: the last link is the chain's head.
        c.execute(self._last_link)
        head = c.fetchone()
        previous = (head[0], bytes(head[1])) if head else (0, GENESIS)
        c.executemany(self._insert_links, chain_links(previous, ids, stored_events))
        return ids

    def version_taken(self, conflict: IntegrityError) -> bool:
        """Never said here: a conflicting batch then goes one command at a time, which is
        always correct; the embedded store has one writing process in practice."""
        return False

    def find_answer(self, scope: str, key: str) -> StoredAnswer | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(self._select_answer, (scope, key))
            row = c.fetchone()
        if row is None:
            return None
        return stored_answer(row[0], row[1], row[2], row[3])

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
            chain_row(
                {**dict(row), "originator_id": uuid_or_none(row["originator_id"])}, row["position"]
            )
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
