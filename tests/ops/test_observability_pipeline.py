"""One correlation id from the HTTP request to the projector's log line; /metrics after a
scripted workload; no log line carries a bearer token or a secret. Real PostgreSQL and
Kafka, relay and projector in threads (as in tests/integration/test_kafka_pipeline.py)."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from kafka import KafkaConsumer

from infra.bootstrap import read_side, write_side
from infra.eventstore.event_log import EventLog
from infra.http.auth import mint_token
from infra.kafka.consumer import KafkaFeed
from infra.kafka.relay import Relay
from infra.kafka.topics import ensure_topics, topic_for
from infra.settings import Settings
from read_api.app import create_app as create_read_app
from schemas.auth import Role
from tests.harness.kafka import KafkaBroker
from tests.integration.test_kafka_pipeline import kafka_settings
from tests.ops.helpers import CapturedLogs, captured_logs, label_values, samples, value
from write_api.app import create_app as create_write_app

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]
PROJECTIONS = ("orders", "inventory", "customer_orders")


class Running:
    def __init__(self, settings: Settings, logs: CapturedLogs) -> None:
        self.settings, self.logs = settings, logs
        self.writes, self.reads = write_side(settings), read_side(settings)
        self.relay = Relay(settings, EventLog(self.writes.app))
        self.projector = KafkaFeed(settings, self.reads.runner)
        self.threads = [
            threading.Thread(target=self.relay.run, daemon=True),
            threading.Thread(target=self.projector.run, daemon=True),
        ]
        self.token = mint_token(settings.token_secret, "ops-admin", Role.ADMIN, 600)
        self.headers = {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def running(postgres_settings: Settings, kafka_broker: KafkaBroker) -> Iterator[Running]:
    with captured_logs("projector") as logs:
        run = Running(kafka_settings(postgres_settings, kafka_broker), logs)
        ensure_topics(run.settings)  # before the consumer subscribes: no metadata wait
        for thread in run.threads:
            thread.start()
        yield run
        run.relay.stop()
        run.projector.stop()
        for thread in run.threads:
            thread.join(timeout=15)
        run.writes.close()
        run.reads.close()


def wait_for(condition: Any, within_s: float = 30.0) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def register(client: TestClient, headers: dict[str, str], sku: str, on_hand: int = 50) -> int:
    body = {"sku": sku, "name": sku, "unit_price_cents": 250, "on_hand": on_hand}
    response = client.post("/inventory", json=body, headers=headers)
    assert response.status_code == 201, response.text
    position: int = response.json()["position"]
    return position


def test_one_correlation_id_reaches_event_kafka_headers_and_the_projector_log(
    running: Running,
) -> None:
    cid = f"ops-{uuid.uuid4().hex[:12]}"
    with TestClient(create_write_app(running.writes)) as w:
        body = {"sku": "CORR-1", "name": "c", "unit_price_cents": 100, "on_hand": 3}
        headers = {**running.headers, "X-Correlation-ID": cid}
        answer = w.post("/inventory", json=body, headers=headers)
    assert answer.status_code == 201, answer.text
    assert answer.headers["x-correlation-id"] == cid
    position = answer.json()["position"]

    # the event's metadata
    envelope = next(e for e in EventLog(running.writes.app).read(0, 100) if e.position == position)
    assert envelope.correlation_id == cid

    # the Kafka message's headers
    consumer = KafkaConsumer(
        topic_for(running.settings, "inventory"),
        bootstrap_servers=running.settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=10_000,
        group_id=None,
    )
    try:
        found = [
            dict(record.headers)
            for record in consumer
            if dict(record.headers).get("position") == str(position).encode()
        ]
    finally:
        consumer.close()
    assert found
    assert found[0]["correlation_id"] == cid.encode()

    # the projector's (and the relay's) JSON log lines
    def logged(message: str) -> list[dict[str, Any]]:
        return [
            line
            for line in running.logs.lines()
            if line["event"] == message and cid in line.get("correlation_ids", [])
        ]

    wait_for(lambda: logged("projector applied batch"))
    line = logged("projector applied batch")[0]
    assert line["logger"] == "infra.kafka.consumer"
    assert line["service"] == "projector"
    assert line["level"] == "info"
    assert line["timestamp"].endswith("Z")
    assert logged("relay published batch")


def test_metrics_after_a_scripted_workload(running: Running) -> None:
    with (
        TestClient(create_write_app(running.writes)) as w,
        TestClient(create_read_app(running.reads)) as r,
    ):
        before = samples(w.get("/metrics").text)
        register(w, running.headers, "MET-1")
        placed_positions = []
        for n in range(5):
            order = {"customer_id": f"c{n}", "lines": [{"sku": "MET-1", "quantity": 1}]}
            headers = {**running.headers, "Idempotency-Key": f"met-{n}"}
            first = w.post("/orders", json=order, headers=headers)
            assert first.status_code == 201, first.text
            again = w.post("/orders", json=order, headers=headers)
            assert again.headers["idempotent-replayed"] == "true"
            placed_positions.append(first.json()["position"])
        refused = w.post(
            "/orders",
            json={"customer_id": "c", "lines": [{"sku": "MET-1", "quantity": 999}]},
            headers=running.headers,
        )
        assert refused.status_code == 409
        head = EventLog(running.writes.app).head()
        wait_for(lambda: min(running.reads.runner.positions().values()) >= head)
        wait_for(lambda: running.relay.published >= head)

        after = samples(w.get("/metrics").text)
        scraped = r.get("/metrics")
    assert scraped.headers["content-type"].startswith("text/plain")
    read = samples(scraped.text)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    latency = "orderflow_command_duration_seconds_count"
    assert delta(latency, command="PlaceOrder", outcome="ok") == 5
    assert delta(latency, command="PlaceOrder", outcome="replayed") == 5
    assert delta(latency, command="PlaceOrder", outcome="rejected") == 1
    assert delta(latency, command="RegisterItem", outcome="ok") == 1
    assert delta("orderflow_idempotency_hits_total", command="PlaceOrder") == 5
    assert delta("orderflow_events_appended_total") >= 1 + 5 * 3  # item; 3 per order
    assert value(after, "orderflow_relay_published_total") >= head
    assert value(after, "orderflow_relay_position") == head
    assert value(after, "orderflow_relay_lag_positions") == 0
    assert 0 <= value(after, "orderflow_relay_lag_seconds") < 30

    for projection in PROJECTIONS:
        assert value(read, "orderflow_projection_position", projection=projection) == head
        assert value(read, "orderflow_projection_lag_positions", projection=projection) == 0
        assert value(read, "orderflow_projection_lag_seconds", projection=projection) == 0
        # the registry is the process's: this workload's share is the difference
        fresh = "orderflow_read_model_freshness_seconds"
        count = value(read, f"{fresh}_count", projection=projection) - value(
            before, f"{fresh}_count", projection=projection
        )
        seconds = value(read, f"{fresh}_sum", projection=projection) - value(
            before, f"{fresh}_sum", projection=projection
        )
        assert count >= 1
        assert 0 < seconds / count < 30
        assert value(read, "orderflow_dead_letters", projection=projection) == 0
    groups = label_values(read, "orderflow_kafka_consumer_lag", "group")
    assert running.settings.projector_group in groups
    lag = value(read, "orderflow_kafka_consumer_lag", group=running.settings.projector_group)
    assert lag >= 0


def test_no_log_line_holds_a_bearer_token_or_a_secret(running: Running) -> None:
    secret = running.settings.token_secret
    webhook_secret = running.settings.webhook_secret
    with TestClient(create_write_app(running.writes)) as w:
        position = register(w, running.headers, "SECRET-1")
        assert w.get("/orders/x", headers={"Authorization": "Bearer eyJforged.x.y"}).status_code
        # a careless line, as a library or a later change might write one
        careless = logging.getLogger("tests.ops.careless")
        careless.warning("calling with Authorization: Bearer %s", running.token)
        careless.warning("token %s secret %s hook %s", running.token, secret, webhook_secret)
        careless.warning("headers", extra={"authorization": f"Bearer {running.token}"})
        careless.warning("url %s", running.settings.database_url)
    wait_for(lambda: min(running.reads.runner.positions().values()) >= position)
    text = running.logs.text
    assert "careless" in text
    assert "relay published batch" in text
    assert running.token not in text
    assert "eyJ" not in text
    assert secret not in text
    assert webhook_secret not in text
    assert ":orderflow@" not in text  # the database password in a URL
