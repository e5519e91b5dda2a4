"""Two projector processes in one group share the partitions evenly, over all topics:
each holds half of them, so the second process can take half of the work."""

from __future__ import annotations

import time
import uuid

from kafka import KafkaConsumer, TopicPartition

from infra.kafka.consumer import group_consumer
from infra.kafka.topics import all_topics
from infra.settings import Settings
from tests.harness.kafka import KafkaBroker

FORMED_WITHIN_S = 60.0


def settle(consumers: list[KafkaConsumer], partitions: int) -> list[set[TopicPartition]]:
    """Polls every member until, between them, they hold every partition once."""
    deadline = time.monotonic() + FORMED_WITHIN_S
    while time.monotonic() < deadline:
        for consumer in consumers:
            consumer.poll(timeout_ms=100)
        held = [set(c.assignment()) for c in consumers]
        if all(held) and sum(map(len, held)) == partitions:
            return held
    raise AssertionError(f"the group never shared its {partitions} partitions: {held}")


def test_two_members_of_the_projectors_group_hold_half_the_partitions_each(
    sqlite_settings: Settings, kafka_broker: KafkaBroker
) -> None:
    unique = uuid.uuid4().hex[:8]
    settings = sqlite_settings.model_copy(
        update={
            "kafka_bootstrap_servers": kafka_broker.bootstrap_servers,
            "kafka_topic_prefix": f"test-{unique}",
            "kafka_partitions": 3,
        }
    )
    topics = all_topics(settings)
    partitions = {TopicPartition(t, p) for t in topics for p in range(3)}
    assert len(topics) == 2  # two topics of three: dealt topic by topic, members get 4 and 2
    consumers = [group_consumer(settings, f"projectors-{unique}") for _ in range(2)]
    try:
        held = settle(consumers, len(partitions))
    finally:
        for consumer in consumers:
            consumer.close()
    assert held[0] | held[1] == partitions
    assert [len(h) for h in held] == [3, 3]
