"""The relay: event store notification log -> Kafka, at least once, in order per aggregate.

Its position lives beside the events and moves only after the broker acknowledged every
event up to it (acks=all, idempotent producer). While one batch waits for its acks the
next is read, so a crash re-publishes at most two batches; projectors drop the duplicates
by position. One relay is active at a time: it holds a
PostgreSQL advisory lock for as long as it runs; others wait for it.

It wakes when an append commits: the event store NOTIFYs a channel in every appending
transaction, and the relay LISTENs on it. Polling stays as the fallback (docs/adr/0019)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from kafka import KafkaProducer
from kafka.producer.future import FutureRecordMetadata
from opentelemetry.trace import SpanKind
from psycopg.sql import SQL, Identifier

from infra.eventstore.event_log import EventLog
from infra.kafka.topics import encode, ensure_topics, kafka_connection, topic_for
from infra.observability import metrics
from infra.observability.logging import unique
from infra.observability.tracing import span_from
from infra.retrying import run_until_stopped
from infra.schema_lock import LOCK_FOR_TRANSACTION, SCHEMA_LOCK_KEY
from infra.settings import Settings
from schemas.envelope import Envelope

log = logging.getLogger(__name__)
LOCK_KEY = 0x0F_0F_0F_0F  # pg_advisory_lock key of the one active relay
ACK_TIMEOUT_S = 30
BATCH_BYTES = 256 * 1024  # per partition and request; kafka-python's 16 KiB costs a wake-up each
POLL_INTERVAL_S = 1.0  # with nothing notified, look anyway this often
LAG_EVERY_S = 1.0  # how often a busy relay asks for the head, for its lag metric
STOP_CHECK_S = 0.25  # a wait looks at the stop event at least this often


class RelayPosition:
    """The relay's progress, in a table of the event store's database."""

    def __init__(self, conn: psycopg.Connection[tuple[int]], name: str = "kafka") -> None:
        self.conn, self.name = conn, name
        with conn.transaction():
            conn.execute(LOCK_FOR_TRANSACTION, (SCHEMA_LOCK_KEY,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS relay_position "
                "(name text PRIMARY KEY, position bigint NOT NULL)"
            )
            conn.execute(
                "INSERT INTO relay_position VALUES (%s, 0) ON CONFLICT DO NOTHING", (name,)
            )

    def get(self) -> int:
        row = self.conn.execute(
            "SELECT position FROM relay_position WHERE name = %s", (self.name,)
        ).fetchone()
        return row[0] if row else 0

    def set(self, position: int) -> None:
        # one statement on an autocommit connection: atomic without BEGIN and COMMIT
        self.conn.execute(
            "UPDATE relay_position SET position = %s WHERE name = %s", (position, self.name)
        )


class CommitSignal:
    """Wakes the relay when an append commits. The NOTIFY is sent inside the appending
    transaction, so it arrives at commit and never before the events are readable.

    Woken, it lingers `linger_s` before it returns, so that the commits of those moments
    go out together. At one commit every few milliseconds, the rate of orders placed one
    at a time, each woke a read, a produce request, a projector batch and an offset
    commit of its own; the machine's CPU, not their latency, then set the freshness of
    the read models (docs/adr/0019, session 25)."""

    def __init__(
        self, conn: psycopg.Connection[tuple[int]], channel: str | None, linger_s: float = 0.0
    ) -> None:
        self.conn, self.listening, self.linger_s = conn, channel is not None, linger_s
        if channel is not None:
            conn.execute(SQL("LISTEN {}").format(Identifier(channel)))

    def wait(self, seconds: float, stop: threading.Event) -> None:
        """Until a commit is notified, `seconds` have passed, or `stop` is set."""
        deadline = time.monotonic() + seconds
        while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
            if not self.listening:
                stop.wait(min(left, STOP_CHECK_S))
                continue
            notified = list(self.conn.notifies(timeout=min(left, STOP_CHECK_S), stop_after=1))
            if notified:
                if self.linger_s:
                    stop.wait(self.linger_s)
                list(self.conn.notifies(timeout=0))  # one read covers those queued too
                return


@dataclass(frozen=True)
class InFlight:
    """A batch handed to the producer, its acknowledgements still to come."""

    batch: Sequence[Envelope]
    futures: list[FutureRecordMetadata]


class Relay:
    def __init__(
        self, settings: Settings, events: EventLog, poll_interval_s: float = POLL_INTERVAL_S
    ) -> None:
        if settings.database_url is None:
            raise RuntimeError("the relay needs ORDERFLOW_DATABASE_URL (PostgreSQL)")
        self.settings = settings
        self.events = events
        self.poll_interval_s = poll_interval_s
        self.stop_event = threading.Event()
        self.published = 0
        self.active = False
        self._lag_checked = 0.0

    def run(self) -> None:
        """Publishes until stopped; faults back off exponentially and retry."""
        run_until_stopped(self._run_once, self.stop_event, log, "relay")

    def _run_once(self) -> None:
        assert self.settings.database_url is not None
        with psycopg.connect(self.settings.database_url, autocommit=True) as conn:
            while not self._lock(conn):  # another relay is active: stand by
                self.active = False
                if self.stop_event.wait(1.0):
                    return
            self.active = True
            try:
                self._publish_until_stopped(conn)
            finally:
                self.active = False

    @staticmethod
    def _lock(conn: psycopg.Connection[tuple[bool]]) -> bool:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()
        return bool(row and row[0])

    def _publish_until_stopped(self, conn: psycopg.Connection[tuple[int]]) -> None:
        ensure_topics(self.settings)
        position = RelayPosition(conn)
        linger_s = self.settings.relay_linger_ms / 1000
        commits = CommitSignal(conn, self.events.commit_channel(), linger_s)  # before a read
        producer = KafkaProducer(
            **kafka_connection(self.settings),
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            batch_size=BATCH_BYTES,
            client_id="orderflow-relay",
        )
        in_flight: InFlight | None = None
        try:
            after = position.get()
            log.info("relay active from position %d", after)
            while not self.stop_event.is_set():
                batch = self.events.read(after, self.settings.relay_batch_size)
                sent = InFlight(batch, self._send(producer, batch)) if batch else None
                if in_flight is not None:  # acknowledged while the next was read and sent
                    self._confirm(in_flight, position)
                in_flight = sent
                if sent is not None:
                    after = sent.batch[-1].position
                    at_head = len(sent.batch) < self.settings.relay_batch_size
                    if not (at_head and commits.listening):
                        continue  # read on while this one is acknowledged
                    # it ended at the head when read, and a commit since is notified: no
                    # read to find nothing (a third of a quiet relay's statements). Sent
                    # now: nothing more will join it, so waiting out linger_ms would only
                    # delay it.
                    producer.flush(timeout=ACK_TIMEOUT_S)
                    self._confirm(sent, position)
                    in_flight = None
                metrics.RELAY_LAG_POSITIONS.set(0)
                metrics.RELAY_LAG_SECONDS.set(0)
                commits.wait(self.poll_interval_s, self.stop_event)
            if in_flight is not None:
                self._confirm(in_flight, position)
        finally:
            producer.close(timeout=5)

    def _send(
        self, producer: KafkaProducer, batch: Sequence[Envelope]
    ) -> list[FutureRecordMetadata]:
        """Hands the batch to the producer, which sends it in the background."""
        futures = []
        for envelope in batch:
            with span_from(f"publish {envelope.type}", envelope.traceparent, SpanKind.PRODUCER):
                key, value, headers = encode(envelope)
                topic = topic_for(self.settings, envelope.aggregate_type)
            futures.append(producer.send(topic, key=key, value=value, headers=headers))
        return futures

    def _confirm(self, sent: InFlight, position: RelayPosition) -> None:
        """Moves the position past the batch once the broker acknowledged all of it."""
        for future in sent.futures:
            future.get(timeout=ACK_TIMEOUT_S)  # raises unless the broker acknowledged
        position.set(sent.batch[-1].position)
        self.published += len(sent.batch)
        self._observe(sent.batch)

    def _observe(self, batch: Sequence[Envelope]) -> None:
        """Metrics and one log line per batch, naming the correlation ids it carried."""
        last = batch[-1].position
        metrics.RELAY_PUBLISHED.inc(len(batch))
        metrics.RELAY_POSITION.set(last)
        if len(batch) < self.settings.relay_batch_size:  # it ended at the head when read
            metrics.RELAY_LAG_POSITIONS.set(0)
        elif time.monotonic() - self._lag_checked >= LAG_EVERY_S:  # a query: now and then
            metrics.RELAY_LAG_POSITIONS.set(max(0, self.events.head() - last))
            self._lag_checked = time.monotonic()
        metrics.RELAY_LAG_SECONDS.set(metrics.age_seconds(batch[0].occurred_at))
        log.info(
            "relay published batch",
            extra={
                "events": len(batch),
                "first_position": batch[0].position,
                "last_position": last,
                "correlation_ids": unique(e.correlation_id for e in batch),
            },
        )

    def stop(self) -> None:
        self.stop_event.set()
