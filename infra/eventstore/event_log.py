"""Reading the event store's notification log as envelopes, in position order.

Positions have holes (an append that rolls back has drawn its numbers) but the log only
ever grows at its end, in commit order: appends hold a table lock, and a hole is never
filled later. So the event read just before another is its predecessor for good, and
each envelope names it in `previous_position`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

from infra.eventstore.envelopes import stored_to_envelope, to_envelope
from infra.eventstore.event_store import OrderFlowApplication
from projections.collector import collection_paused
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
        if not isinstance(self._recorder, PostgresApplicationRecorder):
            yield from self.iterate(after, batch=batch)
            return
        datastore = self._recorder.datastore
        query = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state "
            "FROM {schema}.{table} WHERE notification_id > %s ORDER BY notification_id"
        ).format(
            schema=Identifier(datastore.schema), table=Identifier(self._recorder.events_table_name)
        )
        with (
            datastore.get_connection() as conn,
            conn.transaction(),
            conn.cursor(name="orderflow_log_scan", row_factory=tuple_row) as cursor,
        ):
            cursor.itersize = batch
            cursor.execute(query, (after,))
            while True:
                # Decoding a batch makes no reference cycles, but its thousands of new
                # dicts would set the collector walking the heap several times a batch
                # (measured: a quarter of a whole-log read). Paused per batch only, never
                # while the caller holds it.
                with collection_paused():
                    envelopes = self._decode(cursor.fetchmany(batch), after)
                if not envelopes:
                    return
                after = envelopes[-1].position
                yield envelopes

    def _decode(self, rows: list[tuple[Any, ...]], after: int) -> list[Envelope]:
        envelopes = []
        for position, originator, version, topic, state in rows:
            envelopes.append(
                stored_to_envelope(
                    position, originator, version, topic, bytes(state), self._transcoder, after
                )
            )
            after = position
        return envelopes
