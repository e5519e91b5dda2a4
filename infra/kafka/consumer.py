"""The Kafka transport (projections/feed.py's Feed): a consumer group delivering the
relay's topics to a projector.

Offsets are committed to Kafka only after the projector's batch is in; a crash in between
redelivers, and the watermark drops what was already applied."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from functools import partial
from typing import Any

from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from opentelemetry.trace import Span

from infra.kafka.topics import all_topics, decode, ensure_topics, kafka_connection
from infra.observability import metrics
from infra.observability.logging import unique
from infra.observability.tracing import HEADER, open_span
from infra.observability.tracing import enabled as tracing_enabled
from infra.retrying import retried_in_place, run_until_stopped
from infra.settings import Settings
from projections.collector import collection_paused
from projections.projector import Projector
from schemas.envelope import Envelope

log = logging.getLogger(__name__)
LAG_EVERY_S = 1.0  # how often the consumer lag is measured


def group_for(settings: Settings, names: Sequence[str], everything: Sequence[str]) -> str:
    """Processes that run the same read models share a group and split the partitions;
    a process running another set needs every event too, so it gets a group of its own.
    `everything`: the set that owns the base group (the read store's read models)."""
    if sorted(names) == sorted(everything):
        return settings.projector_group
    return f"{settings.projector_group}-{'-'.join(sorted(names))}"


SESSION_TIMEOUT_MS = 10_000
# Records per batch, at most: each batch costs a few statements per read model, a
# compaction and an offset commit whatever its size (a fifth of the time at 1,000 a batch,
# ADR 0018); a projector that keeps up polls fewer than this anyway.
MAX_POLL_RECORDS = 5_000
APPLY_RETRY_S = 60.0  # well within max_poll_interval_ms (300 s): the group keeps us
# Partitions dealt out over all the topics together, not topic by topic: with the relay's
# two topics of three partitions, the range assignor (kafka-python's first choice) gave one
# of two processes four partitions and the other two, so the second process could add a
# half at most (ADR 0018, session 25). Range stays second: a group holding a process of an
# earlier release still agrees on a strategy both sides know.
ASSIGNORS = (RoundRobinPartitionAssignor, RangePartitionAssignor)


def group_consumer(settings: Settings, group: str) -> KafkaConsumer:
    """A member of the projectors' consumer group `group`, subscribed to every topic."""
    ensure_topics(settings)
    consumer = KafkaConsumer(
        *all_topics(settings),
        **kafka_connection(settings),
        group_id=group,
        client_id="orderflow-projector",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=MAX_POLL_RECORDS,
        # a killed member's partitions move on after this, not kafka-python's 45 s
        session_timeout_ms=SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=SESSION_TIMEOUT_MS // 3,
        partition_assignment_strategy=ASSIGNORS,
    )
    # Joining before the topics' metadata arrived can leave kafka-python 3.0 in a group
    # with no partitions for good (no error, no records): fetch the metadata first.
    for topic in all_topics(settings):
        consumer.partitions_for_topic(topic)
    return consumer


class KafkaFeed:
    def __init__(self, settings: Settings, projector: Projector, group: str | None = None) -> None:
        self.settings = settings
        self.apply = projector.apply
        self.group = group or settings.projector_group
        self.stop_event = threading.Event()
        self.applied = 0
        self._lag_checked = 0.0
        self._assigned_at = 0.0  # when partitions were last seen assigned
        self._unconfirmed: dict[TopicPartition, OffsetAndMetadata] = {}  # applied, sent

    def run(self) -> None:
        """Consumes until stopped; faults back off exponentially and retry."""
        run_until_stopped(self._consume_until_stopped, self.stop_event, log, "projector")

    def _consume_until_stopped(self) -> None:
        consumer = group_consumer(self.settings, self.group)
        self._assigned_at = time.monotonic()
        try:
            while not self.stop_event.is_set():
                # The whole batch, not only its poll: a collection while its records and
                # envelopes are alive walks and promotes every one of them (measured: a
                # twentieth of the thread). They are dropped when `_batch` returns, so the
                # collector, back on, finds only what the batch left in cycles.
                with collection_paused():
                    self._batch(consumer)
        finally:
            try:
                # only partitions still ours: the group does not check who commits, and a
                # partition moved on may have been committed further by its new owner
                ours = consumer.assignment()
                last = {tp: at for tp, at in self._unconfirmed.items() if tp in ours}
                if last:
                    consumer.commit(last)
            except Exception as failed:  # redelivered then, and dropped by the watermark
                log.warning("last offsets not committed: %r", failed)
            self._unconfirmed = {}
            consumer.close()

    def _batch(self, consumer: KafkaConsumer) -> None:
        """Polls a batch, applies it and commits its offsets."""
        polled = consumer.poll(timeout_ms=200)
        records = [r for batch in polled.values() for r in batch]
        envelopes = [decode(r.value) for r in records]
        if consumer.assignment():
            self._assigned_at = time.monotonic()
        elif time.monotonic() - self._assigned_at > 2 * SESSION_TIMEOUT_MS / 1000:
            raise RuntimeError(f"no partitions assigned in group {self.group}")
        if not polled:
            return
        spans = traced(records, envelopes)
        # Tried again with this consumer (the database restarting, say): a new one would
        # rejoin the group and move partitions. A failure that lasts leaves the offsets
        # uncommitted: the next consumer this loop makes starts again from them.
        applied = retried_in_place(
            partial(self.apply, envelopes), self.stop_event, log, "apply", APPLY_RETRY_S
        )
        self.applied += applied
        # Not waited for (a broker round trip per batch, and the next poll need not wait
        # for it): a commit lost with a crash or a rebalance redelivers events the
        # watermark drops. A clean stop commits the last offsets and waits.
        self._unconfirmed = applied_offsets(records)
        consumer.commit_async(self._unconfirmed, callback=_log_refused_commit)
        for span in spans:
            span.end()
        self._observe(consumer, records, envelopes, applied)

    def _observe(
        self,
        consumer: KafkaConsumer,
        records: Sequence[Any],
        envelopes: Sequence[Envelope],
        applied: int,
    ) -> None:
        """One log line per batch with the correlation ids it carried (the header, else
        the envelope's field); the consumer lag at most once a second."""
        if log.isEnabledFor(logging.INFO):  # the ids cost a pass over the records' headers
            headers = (dict(r.headers or []).get("correlation_id") for r in records)
            pairs = zip(headers, envelopes, strict=True)
            ids = [h.decode() if h else e.correlation_id for h, e in pairs]
            log.info(
                "projector applied batch",
                extra={
                    "group": self.group,
                    "events": len(envelopes),
                    "applied": applied,
                    "first_position": min(e.position for e in envelopes),
                    "last_position": max(e.position for e in envelopes),
                    "correlation_ids": unique(ids),
                },
            )
        if time.monotonic() - self._lag_checked < LAG_EVERY_S:
            return
        self._lag_checked = time.monotonic()
        try:
            # the end of each partition as the last fetch saw it (the broker sends it with
            # every fetch): asking the broker for it (`end_offsets`) took 50-100 ms of the
            # projector's thread on a busy machine
            for tp in consumer.assignment():
                end = consumer.highwater(tp)
                if end is None:  # nothing fetched from it yet
                    continue
                behind = max(0, end - consumer.position(tp))
                metrics.KAFKA_CONSUMER_LAG.labels(self.group, tp.topic, str(tp.partition)).set(
                    behind
                )
        except Exception as failed:  # metrics only: never stop consuming for them
            log.debug("consumer lag not measured: %r", failed)

    def stop(self) -> None:
        self.stop_event.set()


def applied_offsets(records: Sequence[Any]) -> dict[TopicPartition, OffsetAndMetadata]:
    """What to commit once these records are applied: per partition, the next offset."""
    ends: dict[TopicPartition, int] = {}
    for record in records:
        partition = TopicPartition(record.topic, record.partition)
        ends[partition] = max(ends.get(partition, 0), record.offset + 1)
    return {tp: OffsetAndMetadata(end, "", -1) for tp, end in ends.items()}


def _log_refused_commit(offsets: Any, response: Any) -> None:
    if isinstance(response, Exception):
        log.warning("offsets not committed (redelivered, then dropped): %r", response)


def traced(records: Sequence[Any], envelopes: Sequence[Envelope]) -> list[Span]:
    """One span per event, in the trace its message's `traceparent` header continues,
    open while the batch is applied and committed (none when tracing is off)."""
    if not tracing_enabled():  # not even the headers read: a fiftieth of the thread
        return []
    spans = []
    for record, envelope in zip(records, envelopes, strict=True):
        span = open_span(f"project {envelope.type}", dict(record.headers or []).get(HEADER))
        if span is not None:
            span.set_attribute("orderflow.position", envelope.position)
            spans.append(span)
    return spans
