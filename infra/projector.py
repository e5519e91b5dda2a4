"""Projectors: a Kafka consumer group applying envelopes to the read models.

Offsets are committed to Kafka only after the read-model transaction committed; a crash
in between redelivers, and the watermark drops what was already applied."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from kafka import KafkaConsumer

from infra.kafka_topics import all_topics, bootstrap_servers, decode, ensure_topics
from infra.retrying import run_until_stopped
from infra.settings import Settings
from schemas.envelope import Envelope

Apply = Callable[[Sequence[Envelope]], int]  # applies a batch in one transaction

log = logging.getLogger(__name__)


def group_for(settings: Settings, names: Sequence[str], everything: Sequence[str]) -> str:
    """Processes that run the same projections share a group and split the partitions;
    a process running another set needs every event too, so it gets a group of its own."""
    if sorted(names) == sorted(everything):
        return settings.projector_group
    return f"{settings.projector_group}-{'-'.join(sorted(names))}"


class KafkaProjector:
    def __init__(self, settings: Settings, apply: Apply, group: str | None = None) -> None:
        self.settings = settings
        self.apply = apply
        self.group = group or settings.projector_group
        self.stop_event = threading.Event()
        self.applied = 0

    def run(self) -> None:
        """Consumes until stopped; faults back off exponentially and retry."""
        run_until_stopped(self._consume_until_stopped, self.stop_event, log, "projector")

    def _consume_until_stopped(self) -> None:
        ensure_topics(self.settings)
        consumer = KafkaConsumer(
            *all_topics(self.settings),
            bootstrap_servers=bootstrap_servers(self.settings),
            group_id=self.group,
            client_id="orderflow-projector",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=1000,
        )
        try:
            while not self.stop_event.is_set():
                polled = consumer.poll(timeout_ms=200)
                if not polled:
                    continue
                envelopes = [decode(r.value) for records in polled.values() for r in records]
                # a failure here leaves the offsets uncommitted: the next consumer this
                # loop makes starts again from them
                self.applied += self.apply(envelopes)
                consumer.commit()
        finally:
            consumer.close()

    def stop(self) -> None:
        self.stop_event.set()
