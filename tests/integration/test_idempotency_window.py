"""Idempotency-Keys are kept for ORDERFLOW_IDEMPOTENCY_WINDOW, then the worker purges them
and the same key is a new request (issue 14, point 7). The worker's clock is injected.

Oracle: the orders the event store holds, loaded through the domain classes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response

from domain.order import Order
from infra.bootstrap import ReadSide, WriteSide
from infra.eventstore.unit_of_work import EventStoreIdempotency
from infra.worker import ExpiryWorker
from schemas.auth import Role

Auth = Callable[..., dict[str, str]]
WINDOW = timedelta(hours=24)


@pytest.fixture
def shop(write_client: TestClient, auth: Auth) -> TestClient:
    registered = write_client.post(
        "/inventory",
        json={"sku": "KB", "name": "k", "unit_price_cents": 100, "on_hand": 10},
        headers=auth(Role.OPERATOR),
    )
    assert registered.status_code == 201
    return write_client


def place(client: TestClient, auth: Auth) -> Response:
    return client.post(
        "/orders",
        json={"lines": [{"sku": "KB", "quantity": 1}]},
        headers=auth(Role.CUSTOMER, "alice", **{"Idempotency-Key": "order-1"}),
    )


def worker_at(side: WriteSide, reads: ReadSide, moment: datetime) -> ExpiryWorker:
    return ExpiryWorker(
        side.bus,
        reads.store,
        timedelta(minutes=15),
        clock=lambda: moment,
        answers=EventStoreIdempotency(side.app),
        idempotency_window=WINDOW,
    )


def is_order(side: WriteSide, order_id: str) -> bool:
    return isinstance(side.app.repository.get(UUID(order_id)), Order)


def test_a_key_replays_within_the_window_and_is_a_new_request_after_it(
    shop: TestClient, auth: Auth, side: WriteSide, reads: ReadSide
) -> None:
    first = place(shop, auth)
    assert first.status_code == 201
    placed_at = datetime.now(UTC)

    before_end = worker_at(side, reads, placed_at + WINDOW - timedelta(minutes=1))
    assert before_end.run_once() == 0  # a round of the worker: nothing to expire, none purged
    assert before_end.purge_answers() == 0
    within = place(shop, auth)
    assert within.headers.get("idempotent-replayed") == "true"
    assert within.json()["order_id"] == first.json()["order_id"]

    after = worker_at(side, reads, placed_at + WINDOW + timedelta(minutes=1))
    assert after.purge_answers() == 1
    again = place(shop, auth)
    assert again.status_code == 201
    assert "idempotent-replayed" not in again.headers
    assert again.json()["order_id"] != first.json()["order_id"]
    assert is_order(side, first.json()["order_id"])
    assert is_order(side, again.json()["order_id"])
    young = worker_at(side, reads, datetime.now(UTC) + WINDOW - timedelta(minutes=1))
    assert young.purge_answers() == 0  # the new answer is kept for a window of its own


def test_the_window_is_a_setting_of_a_day_by_default(side: WriteSide) -> None:
    assert side.settings.idempotency_window == timedelta(hours=24)
