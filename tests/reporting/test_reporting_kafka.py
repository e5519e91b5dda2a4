"""`orderflow project reporting`'s projector: from Kafka (a real broker) into ClickHouse
over HTTP (it needs a server: embedded, `orderflow dev` feeds the reports in-process), in
a consumer group of its own, with part of the topic delivered twice."""

from __future__ import annotations

import threading
import time
import uuid
from contextlib import ExitStack

import pytest
from kafka import KafkaProducer

from infra.bootstrap import NotConfigured, WriteSide
from infra.cli.read_models import default_projections, kafka_feeds
from infra.eventstore.event_log import EventLog
from infra.kafka.topics import bootstrap_servers, encode, ensure_topics, topic_for
from projections.reporting_projector import ReportingProjector
from tests.harness.kafka import KafkaBroker
from tests.reporting.conftest import ClickHouse
from tests.reporting.workload import Expected, assert_reports_match


def test_without_a_server_there_is_no_reporting_projector(shop: WriteSide) -> None:
    settings = shop.settings.model_copy(update={"clickhouse_url": None})
    with ExitStack() as opened, pytest.raises(NotConfigured):
        kafka_feeds(settings, ["reporting"], opened)
    assert "reporting" not in default_projections(settings)


@pytest.mark.kafka
def test_the_reporting_projector_consumes_kafka_into_exact_reports(
    http_database: ClickHouse,
    kafka_broker: KafkaBroker,
    shop: WriteSide,
    log: EventLog,
    expected: Expected,
) -> None:
    unique = uuid.uuid4().hex[:8]
    settings = shop.settings.model_copy(
        update={
            "kafka_bootstrap_servers": kafka_broker.bootstrap_servers,
            "kafka_topic_prefix": f"reporting-{unique}",
            "projector_group": f"projectors-{unique}",
            "clickhouse_url": f"{http_database.url}/{http_database.database}",
        }
    )
    assert "reporting" in default_projections(settings)

    ensure_topics(settings)
    producer = KafkaProducer(bootstrap_servers=bootstrap_servers(settings), acks="all")
    envelopes = [e for batch in log.iterate(0) for e in batch]
    for e in [*envelopes, *envelopes[100:300]]:  # a stretch published twice
        key, value, headers = encode(e)
        producer.send(topic_for(settings, e.aggregate_type), key=key, value=value, headers=headers)
    producer.flush(timeout=30)
    producer.close()

    with ExitStack() as opened:
        [projector] = kafka_feeds(settings, ["reporting"], opened)
        assert projector.group == f"projectors-{unique}-reporting"  # a group of its own
        consuming = threading.Thread(target=projector.run, daemon=True)
        consuming.start()
        watcher = ReportingProjector(http_database.client())
        try:
            deadline = time.monotonic() + 120
            while watcher.position() < log.head() and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            projector.stop()
            consuming.join(timeout=30)
    assert watcher.position() == log.head()
    assert_reports_match(watcher, expected)
