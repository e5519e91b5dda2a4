"""Write API -> event store -> relay -> Kafka -> projector -> read API, all real."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from infra.bootstrap import ReadSide, WriteSide, read_side, write_side
from infra.eventstore.event_log import EventLog
from infra.http.auth import mint_token
from infra.kafka.consumer import KafkaFeed
from infra.kafka.relay import Relay
from infra.settings import Settings
from read_api.app import create_app as create_read_app
from schemas.auth import Role
from tests.folding import fold_and_compare
from tests.harness.kafka import KafkaBroker
from tests.oracle import assert_read_models_match_aggregates
from write_api.app import create_app as create_write_app

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]


@dataclass
class Pipeline:
    writes: TestClient
    reads: TestClient
    write_side: WriteSide
    read_side: ReadSide
    headers: dict[str, str]

    def command(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.writes.request(method, path, json=body, headers=self.headers)
        assert response.status_code in (200, 201), response.text
        answer: dict[str, Any] = response.json()
        return answer

    def read(self, path: str, position: int, **query: str) -> dict[str, Any]:
        params: dict[str, str | int] = {"min_position": position, "wait_ms": 10_000, **query}
        response = self.reads.get(path, params=params, headers=self.headers)
        assert response.status_code == 200, response.text
        assert int(response.headers["x-projection-position"]) >= position
        answer: dict[str, Any] = response.json()
        return answer


def kafka_settings(postgres_settings: Settings, broker: KafkaBroker) -> Settings:
    unique = uuid.uuid4().hex[:8]
    return postgres_settings.model_copy(
        update={
            "kafka_bootstrap_servers": broker.bootstrap_servers,
            "kafka_topic_prefix": f"test-{unique}",
            "projector_group": f"projectors-{unique}",
        }
    )


@pytest.fixture
def pipeline(postgres_settings: Settings, kafka_broker: KafkaBroker) -> Iterator[Pipeline]:
    settings = kafka_settings(postgres_settings, kafka_broker)
    writes, reads = write_side(settings), read_side(settings)
    relay = Relay(settings, EventLog(writes.app))
    projector = KafkaFeed(settings, reads.runner)
    threads = [
        threading.Thread(target=relay.run, daemon=True),
        threading.Thread(target=projector.run, daemon=True),
    ]
    for thread in threads:
        thread.start()
    token = mint_token(settings.token_secret, "admin", Role.ADMIN, 600)
    with TestClient(create_write_app(writes)) as w, TestClient(create_read_app(reads)) as r:
        yield Pipeline(w, r, writes, reads, {"Authorization": f"Bearer {token}"})
    relay.stop()
    projector.stop()
    for thread in threads:
        thread.join(timeout=15)
    writes.close()
    reads.close()


def test_commands_reach_the_read_api_through_kafka_and_reads_are_never_stale(
    pipeline: Pipeline,
) -> None:
    for n in range(3):
        made = pipeline.command(
            "POST",
            "/inventory",
            {
                "sku": f"SKU-{n}",
                "name": f"item {n}",
                "unit_price_cents": 100 * (n + 1),
                "on_hand": 50,
            },
        )
        assert pipeline.read(f"/inventory/SKU-{n}", made["position"])["on_hand"] == 50

    held_of_sku_2 = 0
    for n in range(12):
        lines: list[dict[str, Any]] = (
            [{"sku": f"SKU-{n % 3}", "quantity": 1}, {"sku": "SKU-2", "quantity": 2}]
            if n % 3 != 2
            else [{"sku": "SKU-2", "quantity": 3}]
        )
        placed = pipeline.command("POST", "/orders", {"customer_id": f"c-{n % 3}", "lines": lines})
        order_id = placed["order_id"]
        assert pipeline.read(f"/orders/{order_id}", placed["position"])["status"] == "reserved"
        paid = pipeline.command(
            "POST",
            f"/orders/{order_id}/payments",
            {"amount_cents": placed["total_cents"], "payment_ref": f"p{n}"},
        )
        assert pipeline.read(f"/orders/{order_id}", paid["position"])["status"] == "paid"
        if n % 2:
            done = pipeline.command("POST", f"/orders/{order_id}/cancellation", {"reason": "test"})
            assert pipeline.read(f"/orders/{order_id}", done["position"])["status"] == "cancelled"
        else:
            held_of_sku_2 += sum(line["quantity"] for line in lines if line["sku"] == "SKU-2")

    last = pipeline.command("POST", "/inventory/SKU-2/receipts", {"quantity": 1})
    level = pipeline.read("/inventory/SKU-2", last["position"])
    assert (level["on_hand"], level["reserved"]) == (51, held_of_sku_2)
    listed = pipeline.read("/orders", last["position"], customer_id="c-1")
    assert len(listed["items"]) == 4

    counts = fold_and_compare(pipeline.read_side.store, EventLog(pipeline.write_side.app))
    assert_read_models_match_aggregates(pipeline.read_side.store, pipeline.write_side.app)
    assert counts["orders"] == 12
