"""Kafka stops under the relay and the projector: commands are still accepted (the log is
the outbox), reads honestly answer projection-lag, the write API's /ready names Kafka, and
once the broker is back everything catches up by itself, without a restart."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from infra.bootstrap import read_side, write_side
from infra.eventstore.event_log import EventLog
from infra.http.auth import mint_token
from infra.kafka.consumer import KafkaFeed
from infra.kafka.relay import Relay
from infra.kafka.topics import ensure_topics
from infra.settings import Settings
from read_api.app import create_app as create_read_app
from schemas.auth import Role
from tests.folding import fold_and_compare
from tests.harness.kafka import KafkaBroker
from tests.oracle import assert_read_models_match_aggregates
from write_api.app import create_app as create_write_app

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[KafkaBroker]:
    """A broker of this test's own: killing the session's would break other tests."""
    broker = KafkaBroker(tmp_path / "kafka")
    broker.start()
    yield broker
    broker.stop()


def until(condition: Callable[[], bool], within_s: float = 90.0) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_relay_and_projector_recover_from_a_kafka_outage_by_themselves(
    postgres_settings: Settings, own_broker: KafkaBroker
) -> None:
    unique = uuid.uuid4().hex[:8]
    settings = postgres_settings.model_copy(
        update={
            "kafka_bootstrap_servers": own_broker.bootstrap_servers,
            "kafka_topic_prefix": f"outage-{unique}",
            "projector_group": f"outage-{unique}",
        }
    )
    writes, reads = write_side(settings), read_side(settings)
    ensure_topics(settings)
    relay, projector = (
        Relay(settings, EventLog(writes.app)),
        KafkaFeed(settings, reads.runner),
    )
    threads = [threading.Thread(target=r.run, daemon=True) for r in (relay, projector)]
    for thread in threads:
        thread.start()
    headers = {"Authorization": f"Bearer {mint_token(settings.token_secret, 'o', Role.ADMIN, 600)}"}

    def caught_up() -> bool:
        return min(reads.runner.positions().values()) >= EventLog(writes.app).head()

    try:
        with TestClient(create_write_app(writes)) as w, TestClient(create_read_app(reads)) as r:
            first = w.post(
                "/inventory",
                json={"sku": "K", "name": "k", "unit_price_cents": 5, "on_hand": 10},
                headers=headers,
            )
            assert first.status_code == 201
            until(caught_up)

            own_broker.kill()
            during = [
                w.post("/inventory/K/receipts", json={"quantity": 1}, headers=headers)
                for _ in range(3)
            ]
            assert [d.status_code for d in during] == [200, 200, 200]  # the log is the outbox
            lagging = r.get(
                "/inventory/K",
                headers=headers,
                params={"min_position": during[-1].json()["position"], "wait_ms": 300},
            )
            assert lagging.status_code == 503
            assert lagging.json()["type"].endswith("/projection-lag")
            ready = w.get("/ready")
            assert ready.status_code == 503
            assert "kafka" in ready.json()["detail"]

            own_broker.restart()
            until(caught_up)
            fresh = r.get(
                "/inventory/K",
                headers=headers,
                params={"min_position": during[-1].json()["position"]},
            )
            assert (fresh.status_code, fresh.json()["on_hand"]) == (200, 13)
            assert w.get("/ready").status_code == 200
        fold_and_compare(reads.store, EventLog(writes.app))
        assert_read_models_match_aggregates(reads.store, writes.app)
    finally:
        relay.stop()
        projector.stop()
        for thread in threads:
            thread.join(timeout=30)
        writes.close()
        reads.close()
