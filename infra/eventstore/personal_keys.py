"""Per-customer data keys for personal fields, in their own tables beside the event store.

Destroying a customer's key is what forgetting them means: the events keep the ciphertext
(so the hash chain over the stored bytes still verifies) and nothing can decrypt it again.
Each forgetting leaves a row in `personal_data_forgotten`: who, when, by whom, which key.

Keys are read from the database on every use, never cached: a process must not go on
decrypting after another process destroyed the key."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore

from infra.schema_lock import LOCK_FOR_TRANSACTION, SCHEMA_LOCK_KEY

KEYS_TABLE = "personal_data_keys"
FORGOTTEN_TABLE = "personal_data_forgotten"
KEY_BYTES = 32  # AES-256-GCM

_CREATE = [
    f"CREATE TABLE IF NOT EXISTS {KEYS_TABLE} (key_id TEXT PRIMARY KEY, "
    "subject TEXT NOT NULL UNIQUE, key {blob} NOT NULL, created_at TEXT NOT NULL)",
    f"CREATE TABLE IF NOT EXISTS {FORGOTTEN_TABLE} (key_id TEXT PRIMARY KEY, "
    "subject TEXT NOT NULL, forgotten_at TEXT NOT NULL, actor TEXT NOT NULL)",
]


@dataclass(frozen=True)
class DataKey:
    key_id: str
    key: bytes


@dataclass(frozen=True)
class Forgetting:
    """The record a forgetting leaves."""

    subject: str
    keys_destroyed: int
    forgotten_at: datetime
    actor: str


class PersonalDataKeys:
    def __init__(self, datastore: PostgresDatastore | SQLiteDatastore) -> None:
        self._datastore = datastore
        postgres = isinstance(datastore, PostgresDatastore)
        self._mark = "%s" if postgres else "?"
        self._blob = "bytea" if postgres else "BLOB"
        schema = datastore.schema if isinstance(datastore, PostgresDatastore) else ""
        self._prefix = f'"{schema}".' if schema else ""

    @contextmanager
    def _cursor(self, *, commit: bool) -> Iterator[Any]:
        with self._datastore.transaction(commit=commit) as cursor:
            yield cursor

    def _sql(self, statement: str) -> str:
        return (
            statement.replace("?", self._mark)
            .replace(KEYS_TABLE, self._prefix + KEYS_TABLE)
            .replace(FORGOTTEN_TABLE, self._prefix + FORGOTTEN_TABLE)
        )

    def create_tables(self) -> None:
        with self._cursor(commit=True) as cursor:
            if self._mark == "%s":  # PostgreSQL: DDL takes turns with every other process's
                cursor.execute(LOCK_FOR_TRANSACTION, (SCHEMA_LOCK_KEY,))
            for statement in _CREATE:
                cursor.execute(self._sql(statement.replace("{blob}", self._blob)))

    def current(self, subject: str) -> DataKey:
        """The subject's key, made on first use (a race between two writers keeps one)."""
        found = self._find_by_subject(subject)
        if found is not None:
            return found
        with self._cursor(commit=True) as cursor:
            cursor.execute(
                self._sql(
                    f"INSERT INTO {KEYS_TABLE} (key_id, subject, key, created_at) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (subject) DO NOTHING"
                ),
                (str(uuid4()), subject, os.urandom(KEY_BYTES), _now()),
            )
        found = self._find_by_subject(subject)
        assert found is not None, "a key inserted or kept by the conflict"
        return found

    def _find_by_subject(self, subject: str) -> DataKey | None:
        with self._cursor(commit=False) as cursor:
            cursor.execute(
                self._sql(f"SELECT key_id, key FROM {KEYS_TABLE} WHERE subject = ?"), (subject,)
            )
            row = cursor.fetchone()
        return None if row is None else DataKey(row["key_id"], bytes(row["key"]))

    def find(self, key_id: str) -> bytes | None:
        """The key, or None once destroyed."""
        with self._cursor(commit=False) as cursor:
            cursor.execute(self._sql(f"SELECT key FROM {KEYS_TABLE} WHERE key_id = ?"), (key_id,))
            row = cursor.fetchone()
        return None if row is None else bytes(row["key"])

    def forget(self, subject: str, actor: str) -> Forgetting:
        """Destroys the subject's key and records that it did, in one transaction.
        Forgetting again destroys nothing more and records nothing more."""
        moment = _now()
        with self._cursor(commit=True) as cursor:
            if self._mark == "?":
                cursor.execute("PRAGMA secure_delete = ON")  # SQLite zeroes the deleted key
            cursor.execute(
                self._sql(f"SELECT key_id FROM {KEYS_TABLE} WHERE subject = ?"), (subject,)
            )
            key_ids = [row["key_id"] for row in cursor.fetchall()]
            for key_id in key_ids:
                cursor.execute(
                    self._sql(
                        f"INSERT INTO {FORGOTTEN_TABLE} (key_id, subject, forgotten_at, actor) "
                        "VALUES (?, ?, ?, ?)"
                    ),
                    (key_id, subject, moment, actor),
                )
            cursor.execute(self._sql(f"DELETE FROM {KEYS_TABLE} WHERE subject = ?"), (subject,))
        if key_ids:
            self._scrub()
        return Forgetting(subject, len(key_ids), datetime.fromisoformat(moment), actor)

    def _scrub(self) -> None:
        """Leave no copy of a deleted key in the database's files where it can help it:
        PostgreSQL keeps a deleted row in the table file until it is rewritten, SQLite in
        its write-ahead log until a checkpoint. (WAL archives and backups are beyond
        reach: ADR 0023.)"""
        if isinstance(self._datastore, PostgresDatastore):
            with self._datastore.get_connection() as connection:
                connection.autocommit = True  # VACUUM runs outside a transaction
                try:
                    connection.execute(f"VACUUM FULL {self._prefix}{KEYS_TABLE}")
                finally:
                    connection.autocommit = False
            return
        with self._cursor(commit=True) as cursor:
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def forgotten(self, subject: str) -> list[tuple[str, str, str]]:
        """(key_id, forgotten_at, actor) of each of the subject's destroyed keys."""
        with self._cursor(commit=False) as cursor:
            cursor.execute(
                self._sql(
                    f"SELECT key_id, forgotten_at, actor FROM {FORGOTTEN_TABLE} "
                    "WHERE subject = ? ORDER BY forgotten_at"
                ),
                (subject,),
            )
            rows = cursor.fetchall()
        return [(row["key_id"], row["forgotten_at"], row["actor"]) for row in rows]


def _now() -> str:
    return datetime.now(UTC).isoformat()
