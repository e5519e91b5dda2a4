"""Shipping addresses leave the process only sealed: a workload with addresses (orders
placed, refused, replayed, read by an auditor, a customer forgotten) through the write and
read APIs, the relay and a real Kafka broker, and the projector. The Kafka messages carry
the ciphertext, opened while the key exists; no log line holds any part of an address.
Real PostgreSQL and Kafka, as in tests/ops/test_observability_pipeline.py."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from kafka import KafkaConsumer

from infra.eventstore.envelopes import reveal
from infra.kafka.topics import topic_for
from read_api.app import create_app as create_read_app
from schemas.envelope import Envelope
from tests.ops.test_observability_pipeline import Running, register, running, wait_for
from write_api.app import create_app as create_write_app

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]
__all__ = ["running"]  # the fixture, shared with the observability tests


def address(n: int) -> dict[str, str | None]:
    return {
        "recipient": f"Recipient Zeta{n}",
        "line1": f"{n} Privet Drivelane",
        "line2": None,
        "postal_code": f"ZX{n}9Q",
        "city": f"Quuxbridge{n}",
        "country": "GB",
    }


def clear_parts(n: int) -> list[str]:
    return [v for v in address(n).values() if isinstance(v, str) and v != "GB"]


def test_addresses_travel_sealed_on_kafka_and_never_reach_a_log_line(running: Running) -> None:
    admin = running.headers
    with TestClient(create_write_app(running.writes)) as w:
        register(w, admin, "ADDR-1", on_hand=3)

        def order(n: int, quantity: int = 1, **extra: object) -> int:
            headers = {**admin, "Idempotency-Key": f"k-{n}"}
            body = {"lines": [{"sku": "ADDR-1", "quantity": quantity}], **extra}
            return w.post("/orders", json=body, headers=headers).status_code

        assert order(1, shipping_address=address(1), customer_id="cust-1") == 201
        assert order(2, shipping_address=address(2), customer_id="cust-2") == 201
        assert order(2, shipping_address=address(2), customer_id="cust-2") == 201  # replay
        assert order(3, quantity=99, shipping_address=address(3), customer_id="cust-3") == 409
        bad = {**address(4), "country": "Nowhere"}
        assert order(4, shipping_address=bad, customer_id="cust-4") == 422
        forgot = w.delete("/customers/cust-2/personal-data", headers=admin)
        assert forgot.status_code == 200, forgot.text
        head = running.writes.app.recorder.max_notification_id() or 0
    with TestClient(create_read_app(running.reads)) as r:
        events = r.get("/audit/events", headers=admin)
        assert events.status_code == 200, events.text
    wait_for(lambda: min(running.reads.runner.positions().values()) >= head)

    consumer = KafkaConsumer(
        topic_for(running.settings, "order"),
        bootstrap_servers=running.settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=10_000,
        group_id=None,
    )
    try:
        raw = [record.value for record in consumer]
    finally:
        consumer.close()
    created = [Envelope.model_validate_json(v) for v in raw if b'"order.created"' in v]
    assert len(created) == 2
    for n in (1, 2, 3, 4):
        assert not any(part.encode() in value for value in raw for part in clear_parts(n))
    assert all(e.sealed == ["shipping_address"] for e in created)
    keys = running.writes.app.personal_keys
    opened = {e.data["customer_id"]: reveal(e, keys) for e in created}
    assert opened["cust-1"].data["shipping_address"] == address(1)
    assert opened["cust-2"].data["shipping_address"] is None
    assert opened["cust-2"].redacted == ["shipping_address"]

    text = running.logs.text
    assert "relay published batch" in text
    assert "HTTP/1.1 409" in text  # the refused requests were logged too
    assert "HTTP/1.1 422" in text
    for n in (1, 2, 3, 4):
        for part in clear_parts(n):
            assert part not in text, part
