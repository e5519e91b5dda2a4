"""Proves the test harness: a real PostgreSQL server and a real Kafka broker start here."""

import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from tests.harness.kafka import KafkaBroker
from tests.harness.postgres import PostgresServer

CONSUME_TIMEOUT_S = 30


@pytest.fixture(scope="module")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    server = PostgresServer(tmp_path_factory.mktemp("postgres"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    broker = KafkaBroker(tmp_path_factory.mktemp("kafka"))
    broker.start()
    yield broker
    broker.stop()


@pytest.mark.postgres
def test_postgres_accepts_the_orderflow_superuser(postgres_server: PostgresServer) -> None:
    with psycopg.connect(postgres_server.dsn()) as conn:
        row = conn.execute(
            "SELECT current_user, rolsuper, current_setting('fsync')"
            " FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
    assert row == ("orderflow", True, "off")


@pytest.mark.postgres
def test_postgres_requires_the_password(postgres_server: PostgresServer) -> None:
    wrong = postgres_server.dsn().replace("orderflow:orderflow@", "orderflow:wrong@")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(wrong, connect_timeout=5)


@pytest.mark.postgres
def test_postgres_creates_and_drops_databases(postgres_server: PostgresServer) -> None:
    dsn = postgres_server.create_database("harness_check")
    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
        conn.execute("INSERT INTO t VALUES (1), (2)")
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (2,)

    postgres_server.drop_database("harness_check")

    with psycopg.connect(postgres_server.dsn()) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = 'harness_check'")
        assert found.fetchone() is None


@pytest.mark.postgres
def test_postgres_keeps_committed_data_across_kill_and_restart(
    postgres_server: PostgresServer,
) -> None:
    dsn = postgres_server.create_database("harness_crash")
    with psycopg.connect(dsn) as conn:
        # The server runs with synchronous_commit=off; a crash-safety check must opt back in.
        conn.execute("SET synchronous_commit = on")
        conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
        conn.execute("INSERT INTO t VALUES (42)")

    postgres_server.kill()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(dsn, connect_timeout=2)
    postgres_server.restart()

    assert postgres_server.dsn("harness_crash") == dsn
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT id FROM t").fetchall() == [(42,)]
    postgres_server.drop_database("harness_crash")


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _create_topic(broker: KafkaBroker, partitions: int = 3) -> str:
    topic = _unique("harness")
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    finally:
        admin.close()
    return topic


def _producer(broker: KafkaBroker) -> Any:
    return KafkaProducer(
        bootstrap_servers=broker.bootstrap_servers, acks="all", enable_idempotence=True
    )


def _consume(broker: KafkaBroker, topic: str, count: int) -> list[Any]:
    """Read `count` records from the start of `topic` as a fresh consumer group member."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=broker.bootstrap_servers,
        group_id=_unique("harness-group"),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    try:
        records: list[Any] = []
        deadline = time.monotonic() + CONSUME_TIMEOUT_S
        while len(records) < count and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        consumer.commit()
        return records
    finally:
        consumer.close()


@pytest.mark.kafka
def test_kafka_round_trips_keyed_messages_with_headers(kafka_broker: KafkaBroker) -> None:
    topic = _create_topic(kafka_broker)
    sent = [(f"order-{i % 3}".encode(), f"event-{i}".encode()) for i in range(9)]
    producer = _producer(kafka_broker)
    try:
        for key, value in sent:
            headers = [("event-type", b"OrderPlaced"), ("seq", value)]
            producer.send(topic, key=key, value=value, headers=headers).get(timeout=10)
    finally:
        producer.close()

    records = _consume(kafka_broker, topic, len(sent))

    assert sorted((r.key, r.value) for r in records) == sorted(sent)
    for record in records:
        assert record.headers == [("event-type", b"OrderPlaced"), ("seq", record.value)]
    # One key lands on one partition, in the order it was produced.
    for key in {key for key, _ in sent}:
        same_key = [r for r in records if r.key == key]
        assert len({r.partition for r in same_key}) == 1
        assert [r.value for r in same_key] == [v for k, v in sent if k == key]


@pytest.mark.kafka
def test_kafka_keeps_messages_across_kill_and_restart(kafka_broker: KafkaBroker) -> None:
    topic = _create_topic(kafka_broker)
    bootstrap_servers = kafka_broker.bootstrap_servers
    producer = _producer(kafka_broker)
    try:
        producer.send(topic, key=b"order-1", value=b"before-kill").get(timeout=10)
    finally:
        producer.close()

    kafka_broker.kill()
    kafka_broker.restart()

    assert kafka_broker.bootstrap_servers == bootstrap_servers
    producer = _producer(kafka_broker)
    try:
        producer.send(topic, key=b"order-1", value=b"after-restart").get(timeout=30)
    finally:
        producer.close()
    records = _consume(kafka_broker, topic, 2)
    assert [r.value for r in records] == [b"before-kill", b"after-restart"]
