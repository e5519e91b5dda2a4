"""A read with min_position whose read models passed that position only because an event
at or below it is parked as a dead letter says so (X-Projection-Dead-Letters) and counts
it in the metrics, instead of claiming a freshness it does not have."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from domain.order import Order
from infra.bootstrap import ReadSide, WriteSide
from projections import dead_letters
from projections.feed import LogFeed
from projections.orders import orders
from projections.registry import SQL_BY_NAME
from schemas.auth import Role
from schemas.envelope import Envelope
from tests.api.test_read_api import Shop
from tests.ops.helpers import samples, value

Auth = Callable[..., dict[str, str]]
HEADER = "x-projection-dead-letters"
METRIC = "orderflow_reads_behind_dead_letters_total"


def behind_dead_letters(client: TestClient, projection: str) -> float:
    return value(samples(client.get("/metrics").text), METRIC, projection=projection)


def test_a_read_past_a_parked_event_says_so_and_is_counted(
    write_client: TestClient,
    read_client: TestClient,
    auth: Auth,
    feed: LogFeed,
    side: WriteSide,
    reads: ReadSide,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shop = Shop(write_client, auth, feed)
    shop.item("KB")
    placed = shop.order("alice", KB=1)
    order_id = placed["order_id"]
    pay = {"amount_cents": placed["total_cents"], "payment_ref": "p"}

    def poison(e: Envelope, db: object) -> None:
        raise RuntimeError("cannot project this payment")

    paid_handler = orders.handlers["order.paid"]
    monkeypatch.setitem(orders.handlers, "order.paid", poison)
    paid = shop.command(f"/orders/{order_id}/payments", pay)
    feed.catch_up()
    counted = behind_dead_letters(read_client, "orders")

    stale = read_client.get(
        f"/orders/{order_id}", params={"min_position": paid["position"]}, headers=auth()
    )
    assert stale.status_code == 200
    assert int(stale.headers["x-projection-position"]) >= paid["position"]
    assert stale.headers[HEADER] == "1"
    order: object = side.app.repository.get(UUID(order_id))
    assert isinstance(order, Order)
    assert (stale.json()["status"], order.status.value) == ("reserved", "paid")  # stale indeed
    assert behind_dead_letters(read_client, "orders") == counted + 1

    # below the parked event, in another projection, or without min_position: nothing to say
    for path, params in [
        (f"/orders/{order_id}", {"min_position": placed["position"]}),
        ("/inventory/KB", {"min_position": paid["position"]}),
        (f"/orders/{order_id}", {}),
    ]:
        answer = read_client.get(path, params=params, headers=auth(Role.ADMIN))
        assert answer.status_code == 200
        assert HEADER not in answer.headers, (path, params)
    assert behind_dead_letters(read_client, "orders") == counted + 1

    monkeypatch.setitem(orders.handlers, "order.paid", paid_handler)  # the fix
    assert dead_letters.retry(reads.store, SQL_BY_NAME) == (1, 0)
    fresh = read_client.get(
        f"/orders/{order_id}", params={"min_position": paid["position"]}, headers=auth()
    )
    assert fresh.json()["status"] == "paid"
    assert HEADER not in fresh.headers
