"""Reading the event store's notification log as envelopes, in position order.

Positions have holes (an append that rolls back has drawn its numbers) but the log only
ever grows at its end, in commit order: appends hold a table lock, and a hole is never
filled later. So the event read just before another is its predecessor for good, and
each envelope names it in `previous_position`."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import Any

import psycopg
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Composed, Identifier

from infra.eventstore.envelopes import to_envelope
from infra.eventstore.event_store import OrderFlowApplication
from infra.eventstore.log_rows import LogRow, columns, decode_following, decode_rows
from infra.eventstore.log_shares import (
    CUT,
    LogShares,
    count_query,
    gaps_query,
    predecessors,
    share_query,
)
from infra.eventstore.postgres_recorder import PostgresRecorder
from infra.eventstore.server_event_ids import event_id_function_on
from projections.collector import collection_paused
from schemas.envelope import Envelope

_CONNECT_TIMEOUT_S = 5
FIRST_FETCH = 200  # rows in a scan's first batch


class EventLog:
    def __init__(self, app: OrderFlowApplication) -> None:
        self._app = app  # held: the library closes its connections when the app is collected
        self._recorder = app.recorder
        self._transcoder = app.mapper.transcoder

    def commit_channel(self) -> str | None:
        """The PostgreSQL channel every append NOTIFYs as it commits (None on SQLite)."""
        if isinstance(self._recorder, PostgresApplicationRecorder):
            return self._recorder.channel_name
        return None

    def head(self) -> int:
        return self._recorder.max_notification_id() or 0

    def read(self, after: int, limit: int = 1000) -> list[Envelope]:
        """Up to `limit` envelopes after position `after`, which must be 0 or a position
        that exists (one read earlier): it becomes the first envelope's predecessor."""
        notifications = self._recorder.select_notifications(start=after + 1, limit=limit)
        envelopes = []
        for notification in notifications:
            envelopes.append(to_envelope(notification, self._transcoder, previous=after))
            after = notification.id
        return envelopes

    def iterate(
        self, after: int = 0, until: int | None = None, batch: int = 1000
    ) -> Iterator[list[Envelope]]:
        """Batches from `after` up to `until` (default: the head when asked)."""
        stop = self.head() if until is None else until
        while after < stop:
            envelopes = [e for e in self.read(after, batch) if e.position <= stop]
            if not envelopes:
                return
            yield envelopes
            after = envelopes[-1].position

    def scan(self, after: int = 0, batch: int = 2000) -> Iterator[list[Envelope]]:
        """Like `iterate` up to the head as it is now, for reading the whole log: on
        PostgreSQL one server-side cursor streams it (no query per batch, no row objects
        on the way), in one snapshot."""
        if not self.can_split():
            yield from self.iterate(after, batch=batch)
            return
        for rows in self._rows(after, batch):
            # Decoding a batch makes no reference cycles, but its thousands of new dicts
            # would set the collector walking the heap several times a batch (measured: a
            # quarter of a whole-log read). Paused per batch only, never while the caller
            # holds it.
            with collection_paused():
                envelopes = decode_rows(rows, self._transcoder, after)
            after = envelopes[-1].position
            yield envelopes

    def can_split(self) -> bool:
        """Whether `share_scan` can be used: the log is in PostgreSQL."""
        return isinstance(self._recorder, PostgresRecorder)

    def shares(self, until: int) -> LogShares:
        """What `share_scan` needs for a pass up to `until` (0 or a position that exists),
        read once for both shares, before the process reading the other share is forked:
        queries each process would otherwise make itself."""
        assert isinstance(self._recorder, PostgresRecorder)
        schema, table = self._recorder.datastore.schema, self._recorder.events_table_name
        bounds = {"after": 0, "until": until}
        with self._connection(False) as conn, conn.transaction():
            with conn.cursor(row_factory=tuple_row) as cursor:
                found = cursor.execute(count_query(schema, table), bounds).fetchone()
                gaps: dict[int, int] = {}
                if found is None or found[0] != until:  # a hole somewhere: where
                    gaps = dict(cursor.execute(gaps_query(schema, table), bounds).fetchall())
            return LogShares(until, gaps, event_id_function_on(conn))

    def share_scan(
        self, share: int, shares: LogShares, batch: int = 2000, forked: bool = False
    ) -> Iterator[list[Envelope]]:
        """`scan`'s envelopes of one share of the aggregates (`log_shares`; share 0 or 1)
        up to `shares.until`. Every envelope names its predecessor in the whole log.
        `forked`: this runs in a process forked from the one that made the log, which
        must not touch that one's connections, so the scan opens a connection of its own."""
        assert isinstance(self._recorder, PostgresRecorder)
        schema, table = self._recorder.datastore.schema, self._recorder.events_table_name
        query = share_query(share, schema, table, shares.event_id_function)
        bounds = {"after": 0, "until": shares.until, "cut": CUT}
        with self._connection(forked) as conn, conn.transaction():
            for rows in _fetched(conn, query, bounds, batch):
                with collection_paused():  # as in `scan`
                    envelopes = decode_following(
                        rows, predecessors((row[0] for row in rows), shares.gaps), self._transcoder
                    )
                yield envelopes

    def _connection(self, forked: bool) -> AbstractContextManager[psycopg.Connection[Any]]:
        assert isinstance(self._recorder, PostgresRecorder)
        datastore = self._recorder.datastore
        if not forked:
            return datastore.get_connection()
        pooled = datastore.pool.kwargs  # what the pool connects with
        assert isinstance(pooled, dict)
        parameters = {k: v for k, v in pooled.items() if k != "row_factory"}
        parameters.setdefault("connect_timeout", _CONNECT_TIMEOUT_S)  # unless configured
        return psycopg.connect(**parameters)

    def _rows(self, after: int, batch: int) -> Iterator[list[LogRow]]:
        """The log's rows after `after` (`log_rows.LogRow`), `batch` at a time, through
        one server-side cursor."""
        assert isinstance(self._recorder, PostgresRecorder)
        datastore = self._recorder.datastore
        query = SQL(
            "SELECT {columns} FROM {schema}.{table} "
            "WHERE notification_id > %s ORDER BY notification_id"
        ).format(
            columns=columns(self._recorder.event_id_function()),
            schema=Identifier(datastore.schema),
            table=Identifier(self._recorder.events_table_name),
        )
        with datastore.get_connection() as conn, conn.transaction():
            yield from _fetched(conn, query, (after,), batch)


def _fetched(
    conn: psycopg.Connection[Any], query: Composed, params: Any, batch: int
) -> Iterator[list[LogRow]]:
    """The rows of `query`, `batch` at a time, through a server-side cursor, in the
    connection's open transaction."""
    # binary: the state arrives as its bytes, not as hex digits to decode (half the
    # fetch's time)
    with conn.cursor(name="orderflow_log_scan", row_factory=tuple_row, binary=True) as cursor:
        cursor.itersize = batch
        cursor.execute(query, params)
        # The next batch is fetched while this one is decoded and used: psycopg lets go of
        # the GIL while it waits for the server, so the server's work overlaps ours. The
        # with-block waits for a fetch in flight before the cursor closes.
        with ThreadPoolExecutor(1, thread_name_prefix="log-scan") as reader:
            # a short first batch: the caller starts on it while the next is fetched,
            # instead of waiting for a whole batch before anything overlaps
            fetched = reader.submit(cursor.fetchmany, min(batch, FIRST_FETCH))
            while rows := fetched.result():
                fetched = reader.submit(cursor.fetchmany, batch)
                yield rows
