"""The Kafka stages: OrderFlow's relay and the bare producer and consumer it is compared with."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.record import util as kafka_record_util

from bench.projection.rebuilds import SCAN_BATCH
from bench.projection.stages import STAGE_TIMEOUT_S, wait_until
from infra.eventstore.event_log import EventLog
from infra.eventstore.event_store import OrderFlowApplication
from infra.kafka.consumer import MAX_POLL_RECORDS
from infra.kafka.relay import Relay
from infra.kafka.topics import all_topics, bootstrap_servers, encode, ensure_topics, topic_for
from infra.settings import Settings

RAW_PRODUCE_CHUNK = 50_000  # records the raw producer gets ready before its clock runs


def relay_everything(settings: Settings, app: OrderFlowApplication, head: int) -> int:
    relay = Relay(settings, EventLog(app))
    thread = threading.Thread(target=relay.run, name="relay", daemon=True)
    thread.start()
    try:
        if not wait_until(lambda: relay.published >= head, "relay"):
            raise RuntimeError(f"relay: {relay.published} of {head} events in {STAGE_TIMEOUT_S} s")
    finally:
        relay.stop()
        thread.join(timeout=30)
    return relay.published


Record = tuple[str, bytes, bytes, list[tuple[str, bytes]]]  # topic, key, value, headers


def produced_records(settings: Settings, app: OrderFlowApplication) -> Iterator[list[Record]]:
    """The relay's records, encoded ahead, RAW_PRODUCE_CHUNK at a time (bounded memory)."""
    chunk: list[Record] = []
    for envelopes in EventLog(app).iterate(0, batch=SCAN_BATCH):
        for envelope in envelopes:
            key, value, headers = encode(envelope)
            chunk.append((topic_for(settings, envelope.aggregate_type), key, value, headers))
        if len(chunk) >= RAW_PRODUCE_CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def raw_produce(settings: Settings, app: OrderFlowApplication) -> tuple[int, float]:
    """A bare producer (kafka-python's defaults but acks=all) sends the same records to
    topics of their own; the clock runs only while it sends. Returns (records
    acknowledged, seconds)."""
    ensure_topics(settings)
    sent, seconds = 0, 0.0
    began = time.perf_counter()
    producer = KafkaProducer(
        bootstrap_servers=bootstrap_servers(settings), acks="all", client_id="bench-raw-producer"
    )
    seconds += time.perf_counter() - began
    try:
        for chunk in produced_records(settings, app):
            began = time.perf_counter()
            futures = [producer.send(t, key=k, value=v, headers=h) for t, k, v, h in chunk]
            producer.flush(timeout=STAGE_TIMEOUT_S)
            sent += sum(1 for future in futures if future.get(timeout=STAGE_TIMEOUT_S))
            seconds += time.perf_counter() - began
    finally:
        producer.close(timeout=5)
    return sent, seconds


def topic_end_offsets(settings: Settings) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers(settings))
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in all_topics(settings)
            for p in consumer.partitions_for_topic(topic) or ()
        ]
        return sum(consumer.end_offsets(partitions).values())
    finally:
        consumer.close()


# --- the raw consumer: the projector's baseline ---------------------------------------------


@dataclass(frozen=True)
class Consumed:
    records: int
    join_s: float  # from subscribing to the first records
    seconds: float  # from the first records to the last
    timed: int  # the records after the first poll's: those `seconds` covers


def raw_consume(settings: Settings, total: int) -> Consumed:
    """Subscribes with a fresh group like the projector does and reads to the end,
    decoding nothing."""
    began = time.perf_counter()
    consumer = KafkaConsumer(
        *all_topics(settings),
        bootstrap_servers=bootstrap_servers(settings),
        group_id=f"bench-raw-{uuid.uuid4().hex[:8]}",
        client_id="bench-raw-consumer",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=MAX_POLL_RECORDS,  # the projector's, for a fair baseline
    )
    try:
        first: float | None = None
        count = untimed = 0
        deadline = time.monotonic() + STAGE_TIMEOUT_S
        while count < total:
            polled = consumer.poll(timeout_ms=200)
            if not polled:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"raw consumer: {count} of {total} records")
                continue
            if first is None:
                # the clock starts with the first records in hand, so the work of parsing
                # them is not on it: neither are they (5,000 a poll, a fifth of a --quick run)
                first = time.perf_counter()
                untimed = sum(len(records) for records in polled.values())
            count += sum(len(records) for records in polled.values())
        end = time.perf_counter()
    finally:
        consumer.close()
    assert first is not None
    return Consumed(count, first - began, end - first, count - untimed)


def crc32c_implementation() -> str:
    """kafka-python checks every record batch's CRC-32C, in pure Python unless the optional
    `crc32c` package is installed; both consumers here pay the same."""
    return "python" if kafka_record_util.crc32c_c is None else "c"
