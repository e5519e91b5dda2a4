"""One relay publishes at a time; another stands by and takes over when it stops."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from kafka import KafkaConsumer

from infra.eventstore.event_log import EventLog
from infra.kafka.relay import Relay
from infra.settings import Settings
from schemas.commands import ReceiveStock
from tests.harness.kafka import KafkaBroker
from tests.integration.test_relay_wakeup import relay_shop

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]


def wait_for(condition: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_second_relay_stands_by_then_takes_over_without_losing_events(
    postgres_settings: Settings, kafka_broker: KafkaBroker
) -> None:
    settings, side, context = relay_shop(postgres_settings, kafka_broker, "standby")
    first, second = Relay(settings, EventLog(side.app)), Relay(settings, EventLog(side.app))
    threads = [threading.Thread(target=r.run, daemon=True) for r in (first, second)]
    try:
        threads[0].start()
        wait_for(lambda: first.active)
        threads[1].start()
        for _ in range(5):
            side.bus.handle(ReceiveStock(sku="A", quantity=1), context)
        head = EventLog(side.app).head()
        wait_for(lambda: first.published == 6)
        time.sleep(0.5)
        assert (second.active, second.published) == (False, 0)

        first.stop()
        threads[0].join(timeout=15)
        wait_for(lambda: second.active)
        for _ in range(3):
            side.bus.handle(ReceiveStock(sku="A", quantity=1), context)
        wait_for(lambda: second.published == 3)
    finally:
        first.stop()
        second.stop()
        for thread in threads:
            thread.join(timeout=15)

    consumer = KafkaConsumer(
        f"{settings.kafka_topic_prefix}.inventory",
        bootstrap_servers=kafka_broker.bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=3000,
    )
    positions = sorted(int(dict(m.headers)["position"]) for m in consumer)
    consumer.close()
    side.close()
    assert positions == list(range(1, 10)), "every event published exactly once"
    assert head == 6
