"""The relay wakes on the NOTIFY of a committing append, not on its polling clock."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition

from commands.ports import CommandContext
from infra.bootstrap import WriteSide, write_side
from infra.eventstore.event_log import EventLog
from infra.kafka.relay import Relay
from infra.settings import Settings
from schemas.commands import ReceiveStock, RegisterItem
from tests.harness.kafka import KafkaBroker

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]

POLL_S = 60.0  # the relay's fallback poll: far longer than any wake-up may take
PROMPT_S = 3.0  # generous on a loaded machine, still a twentieth of the poll


def relay_shop(
    postgres_settings: Settings, kafka_broker: KafkaBroker, name: str
) -> tuple[Settings, WriteSide, CommandContext]:
    """A relay's settings on the test broker (topics of its own), and a write side with
    one item registered."""
    settings = postgres_settings.model_copy(
        update={
            "kafka_bootstrap_servers": kafka_broker.bootstrap_servers,
            "kafka_topic_prefix": f"{name}-{uuid.uuid4().hex[:8]}",
        }
    )
    side = write_side(settings)
    context = CommandContext(correlation_id=name, actor="test")
    side.bus.handle(RegisterItem(sku="A", name="a", unit_price_cents=1), context)
    return settings, side, context


def positions_on_kafka(consumer: KafkaConsumer, wanted: int, limit_s: float) -> list[int]:
    """Positions of the records read until `wanted` of them came or the limit passed."""
    found: list[int] = []
    deadline = time.monotonic() + limit_s
    while len(found) < wanted and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=50).values():
            found.extend(int(dict(r.headers)["position"]) for r in records)
    return found


def await_idle(relay: Relay, consumer: KafkaConsumer, settings: Settings) -> None:
    """Once the started relay published the item registered at start-up: `consumer` at
    the end of the inventory topic, and the relay idle, waiting on its 60 s poll."""
    deadline = time.monotonic() + 30
    while relay.published < 1:
        assert time.monotonic() < deadline, "the relay never started"
        time.sleep(0.05)
    topic = f"{settings.kafka_topic_prefix}.inventory"
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
    consumer.assign(partitions)
    consumer.seek_to_end()
    for partition in partitions:
        consumer.position(partition)  # resolve the end now, before the next append
    time.sleep(1.0)


@contextmanager
def idle_relay(
    settings: Settings, side: WriteSide, kafka_broker: KafkaBroker
) -> Iterator[KafkaConsumer]:
    """A relay running in a thread and idle (`await_idle`), and a consumer at the end of
    the inventory topic; both stopped, and the write side closed, on the way out."""
    relay = Relay(settings, EventLog(side.app), poll_interval_s=POLL_S)
    thread = threading.Thread(target=relay.run, daemon=True)
    consumer = KafkaConsumer(bootstrap_servers=kafka_broker.bootstrap_servers)
    try:
        thread.start()
        await_idle(relay, consumer, settings)
        yield consumer
    finally:
        relay.stop()
        thread.join(timeout=15)
        consumer.close()
        side.close()


def test_an_appended_event_reaches_kafka_long_before_the_next_poll(
    postgres_settings: Settings, kafka_broker: KafkaBroker
) -> None:
    settings, side, context = relay_shop(postgres_settings, kafka_broker, "wake")
    with idle_relay(settings, side, kafka_broker) as consumer:
        waits = []
        for _ in range(3):
            committed = time.monotonic()
            side.bus.handle(ReceiveStock(sku="A", quantity=1), context)
            head = EventLog(side.app).head()
            seen = positions_on_kafka(consumer, 1, PROMPT_S)
            waits.append(time.monotonic() - committed)
            assert seen == [head], f"event {head} not on Kafka {PROMPT_S} s after its commit"
    assert max(waits) < PROMPT_S


def test_a_commit_while_the_relay_confirms_a_batch_at_the_head_wakes_it(
    postgres_settings: Settings, kafka_broker: KafkaBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch that ended at the head is confirmed without reading again: an append that
    commits in between must still wake the relay (its NOTIFY waits on the connection)."""
    settings, side, context = relay_shop(postgres_settings, kafka_broker, "wake")
    appended: list[int] = []
    confirm = Relay._confirm

    def confirm_after_a_commit(relay: Relay, sent: object, position: object) -> None:
        if not appended:  # once: an append commits after the relay's read, before its wait
            side.bus.handle(ReceiveStock(sku="A", quantity=1), context)
            appended.append(EventLog(side.app).head())
        confirm(relay, sent, position)  # type: ignore[arg-type]

    monkeypatch.setattr(Relay, "_confirm", confirm_after_a_commit)
    relay = Relay(settings, EventLog(side.app), poll_interval_s=POLL_S)
    thread = threading.Thread(target=relay.run, daemon=True)
    try:
        thread.start()
        deadline = time.monotonic() + 30 + PROMPT_S
        while relay.published < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        relay.stop()
        thread.join(timeout=15)
        side.close()
    assert appended, "the relay never confirmed a batch"
    assert relay.published == 2, f"position {appended[0]} not published within {PROMPT_S} s"


@pytest.mark.parametrize(("linger_ms", "batches"), [(600.0, [2]), (0.0, [1, 1])])
def test_commits_within_the_linger_go_out_in_one_batch(
    linger_ms: float,
    batches: list[int],
    postgres_settings: Settings,
    kafka_broker: KafkaBroker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Woken by a commit, the relay waits `relay_linger_ms` before it reads: a second
    commit 200 ms after the first joins the first's batch; without the linger each is a
    batch of its own. Either way both reach Kafka (oracle: the two positions appended)."""
    settings, side, context = relay_shop(postgres_settings, kafka_broker, "linger")
    settings = settings.model_copy(update={"relay_linger_ms": linger_ms})
    sent: list[int] = []
    send = Relay._send

    def counted(relay: Relay, producer: Any, batch: Any) -> Any:
        sent.append(len(batch))
        return send(relay, producer, batch)

    monkeypatch.setattr(Relay, "_send", counted)
    with idle_relay(settings, side, kafka_broker) as consumer:
        sent.clear()
        appended = []
        for _ in range(2):
            side.bus.handle(ReceiveStock(sku="A", quantity=1), context)
            appended.append(EventLog(side.app).head())
            time.sleep(0.2)
        seen = positions_on_kafka(consumer, 2, PROMPT_S + linger_ms / 1000)
    assert sorted(seen) == appended
    assert sent == batches
