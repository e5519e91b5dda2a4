"""Writing a checked export into an empty store with its own positions and links.

The library's append draws new positions; an import instead keeps the exported ones and
the exported links, so the imported store has the very same chain (and a checkpoint of
the source still verifies against it). One transaction: all of the file or nothing."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from uuid import UUID

from psycopg.sql import SQL, Identifier

from infra.audit.chain import TABLE
from infra.eventstore.postgres_recorder import PostgresRecorder
from infra.eventstore.recorded import sqlite_time
from infra.eventstore.sqlite_recorder import SQLiteRecorder


@dataclass(frozen=True)
class ChainedEvent:
    position: int
    originator_id: UUID
    version: int
    topic: str
    state: bytes
    previous_position: int
    hash: bytes
    recorded_at: datetime


def write_chain(
    recorder: PostgresRecorder | SQLiteRecorder, events: Iterable[ChainedEvent], batch: int = 2000
) -> int:
    if isinstance(recorder, PostgresRecorder):
        return _postgres(recorder, events, batch)
    return _sqlite(recorder, events, batch)


def _postgres(recorder: PostgresRecorder, events: Iterable[ChainedEvent], batch: int) -> int:
    schema, table = Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name)
    insert_events = SQL(
        "INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state, "
        "notification_id) VALUES (%s, %s, %s, %s, %s)"
    ).format(schema=schema, table=table)
    insert_links = SQL(
        "INSERT INTO {schema}.{chain} (position, previous_position, recorded_at, hash) "
        "VALUES (%s, %s, %s, %s)"
    ).format(schema=schema, chain=Identifier(TABLE))
    written, last = 0, 0
    with recorder.datastore.transaction(commit=True) as curs:
        curs.execute(
            SQL("LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE").format(schema=schema, table=table)
        )
        for chunk in _batches(events, batch):
            curs.executemany(
                insert_events,
                [(e.originator_id, e.version, e.topic, e.state, e.position) for e in chunk],
            )
            curs.executemany(
                insert_links,
                [(e.position, e.previous_position, e.recorded_at, e.hash) for e in chunk],
            )
            written, last = written + len(chunk), chunk[-1].position
        if last:  # later appends go on after the imported positions
            qualified = f"{recorder.datastore.schema}.{recorder.events_table_name}"
            curs.execute(
                "SELECT setval(pg_get_serial_sequence(%s, 'notification_id'), %s)",
                (qualified, last),
            )
    return written


def _sqlite(recorder: SQLiteRecorder, events: Iterable[ChainedEvent], batch: int) -> int:
    insert_events = (
        f"INSERT INTO {recorder.events_table_name} "
        "(rowid, originator_id, originator_version, topic, state) VALUES (?, ?, ?, ?, ?)"
    )
    insert_links = (
        f"INSERT INTO {TABLE} (position, previous_position, recorded_at, hash) VALUES (?, ?, ?, ?)"
    )
    written = 0
    with recorder.datastore.transaction(commit=True) as c:
        for chunk in _batches(events, batch):
            c.executemany(
                insert_events,
                [(e.position, e.originator_id.hex, e.version, e.topic, e.state) for e in chunk],
            )
            c.executemany(
                insert_links,
                [
                    (e.position, e.previous_position, sqlite_time(e.recorded_at), e.hash)
                    for e in chunk
                ],
            )
            written += len(chunk)
    return written


def _batches(events: Iterable[ChainedEvent], size: int) -> Iterator[list[ChainedEvent]]:
    it = iter(events)
    while chunk := list(islice(it, size)):
        yield chunk
