"""Reading the event store's notification log as envelopes, in position order.

Positions have holes (an append that rolls back has drawn its numbers) but the log only
ever grows at its end, in commit order: appends hold a table lock, and a hole is never
filled later. So the event read just before another is its predecessor for good, and
each envelope names it in `previous_position`."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

from infra.eventstore.envelopes import to_envelope
from infra.eventstore.event_store import OrderFlowApplication
from infra.eventstore.log_rows import (
    LogRow,
    Shard,
    columns,
    decode_rows,
    decode_shard,
    decode_split,
    split_rows,
)
from infra.eventstore.postgres_recorder import PostgresRecorder
from projections.collector import collection_paused
from projections.ports import SplitBatch
from schemas.envelope import Envelope


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
        """Whether `split_scan` can be used: the log is in PostgreSQL."""
        return isinstance(self._recorder, PostgresRecorder)

    def split_scan(self, after: int = 0, batch: int = 2000) -> Iterator[SplitBatch]:
        """`scan`'s batches split by aggregate: the envelopes of half the aggregates, and
        the other half's events still encoded, for `decode_shard` in a process forked
        from this one. Together, every event once; each share in log order, every
        envelope naming its predecessor in the whole log."""
        for rows in self._rows(after, batch):
            mine, before, theirs = split_rows(rows, after)
            with collection_paused():
                envelopes = decode_split(mine, before, self._transcoder)
            after = rows[-1][0]
            yield SplitBatch(envelopes, theirs if theirs[0] else None, len(rows), after)

    def decode_shard(self, shard: Shard) -> list[Envelope]:
        return decode_shard(shard, self._transcoder)

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
        with (
            datastore.get_connection() as conn,
            conn.transaction(),
            # binary: the state arrives as its bytes, not as hex digits to decode (half
            # the fetch's time)
            conn.cursor(name="orderflow_log_scan", row_factory=tuple_row, binary=True) as cursor,
        ):
            cursor.itersize = batch
            cursor.execute(query, (after,))
            # The next batch is fetched while this one is decoded and used: psycopg lets
            # go of the GIL while it waits for the server, so the server's work overlaps
            # ours. The with-block waits for a fetch in flight before the cursor closes.
            with ThreadPoolExecutor(1, thread_name_prefix="log-scan") as reader:
                fetched = reader.submit(cursor.fetchmany, batch)
                while rows := fetched.result():
                    fetched = reader.submit(cursor.fetchmany, batch)
                    yield rows
