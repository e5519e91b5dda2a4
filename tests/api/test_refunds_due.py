"""Refunds due (issue 14, point 2): the read model, GET /refunds-due, its gauges and its
rebuild, on SQLite and PostgreSQL.

Oracle: what the event store says is owed, from the orders loaded through the domain
classes and their stored events: each order.payment_unapplied, and each cancelled order
whose refund is still due."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from domain.order import Order
from infra.bootstrap import ReadSide, WriteSide
from infra.eventstore.event_log import EventLog
from projections.feed import LogFeed
from projections.rebuild import rebuild
from projections.registry import SQL_BY_NAME
from schemas.auth import Role
from tests.api.test_webhooks import deliver, event

Auth = Callable[..., dict[str, str]]
Owed = set[tuple[str, str, str, int, str]]  # order, payment, kind, cents, currency


def place(client: TestClient, auth: Auth, customer: str) -> str:
    placed = client.post(
        "/orders",
        json={"lines": [{"sku": "KB", "quantity": 2}]},  # 2500 EUR
        headers=auth(Role.CUSTOMER, customer),
    )
    assert placed.status_code == 201, placed.text
    order_id: str = placed.json()["order_id"]
    return order_id


def cancel(client: TestClient, auth: Auth, order_id: str) -> None:
    done = client.post(
        f"/orders/{order_id}/cancellation", json={"reason": "no"}, headers=auth(Role.OPERATOR)
    )
    assert done.status_code == 200, done.text


def pay(client: TestClient, side: WriteSide, order_id: str, n: int, amount: int = 2500) -> str:
    answer = deliver(
        client,
        side,
        event("payment_intent.succeeded", order_id, amount, event_id=f"evt_{n}", id=f"pi_{n}"),
    )
    assert answer.status_code == 200, answer.text
    status: str = answer.json()["status"]
    return status


@pytest.fixture
def orders(write_client: TestClient, side: WriteSide, auth: Auth) -> list[str]:
    """Late payment of a cancelled order; paid then cancelled; paid, cancelled and refunded;
    a payment of the wrong amount; a plain paid order paid twice; a late payment refunded."""
    write_client.post(
        "/inventory",
        json={"sku": "KB", "name": "k", "unit_price_cents": 1250, "on_hand": 50},
        headers=auth(Role.OPERATOR),
    )
    late, then_cancelled, refunded, wrong, fine, returned = (
        place(write_client, auth, f"c{n}") for n in range(6)
    )
    cancel(write_client, auth, late)
    assert pay(write_client, side, late, 1) == "refund_due"
    assert pay(write_client, side, then_cancelled, 2) == "applied"
    cancel(write_client, auth, then_cancelled)
    assert pay(write_client, side, refunded, 3) == "applied"
    cancel(write_client, auth, refunded)
    refund = event("charge.refunded", refunded, event_id="evt_r3", id="re_3", amount_refunded=2500)
    assert deliver(write_client, side, refund).json()["status"] == "applied"
    assert pay(write_client, side, wrong, 4, amount=2400) == "refund_due"
    assert pay(write_client, side, fine, 5) == "applied"
    assert pay(write_client, side, fine, 6) == "refund_due"
    cancel(write_client, auth, returned)
    assert pay(write_client, side, returned, 7) == "refund_due"
    given_back = event(
        "charge.refunded",
        returned,
        event_id="evt_r7",
        id="ch_7",
        amount_refunded=2500,
        payment_intent="pi_7",
    )
    assert deliver(write_client, side, given_back).json()["status"] == "applied"
    return [late, then_cancelled, refunded, wrong, fine, returned]


def owed_by_the_event_store(side: WriteSide, order_ids: list[str]) -> Owed:
    owed: Owed = set()
    for order_id in order_ids:
        order: object = side.app.repository.get(UUID(order_id))
        assert isinstance(order, Order)
        if order.refund_due:
            assert order.payment_ref is not None
            owed.add(
                (order_id, order.payment_ref, "cancelled_after_payment", order.total_cents, "EUR")
            )
        unapplied: dict[str, tuple[int, str]] = {}
        for e in side.app.events.get(UUID(order_id)):
            d = vars(e)
            if type(e).__name__ == "order.payment_unapplied":
                unapplied[d["payment_ref"]] = (d["amount_cents"], d["currency"])
            if type(e).__name__ == "order.unapplied_payment_refunded":
                del unapplied[d["payment_ref"]]
        for ref, (cents, currency) in unapplied.items():
            owed.add((order_id, ref, "payment_unapplied", cents, currency))
    return owed


def listed(items: list[dict[str, Any]]) -> Owed:
    return {
        (i["order_id"], i["payment_ref"], i["kind"], i["amount_cents"], i["currency"])
        for i in items
    }


def test_operators_see_every_refund_owed_and_nothing_else(
    read_client: TestClient, feed: LogFeed, side: WriteSide, auth: Auth, orders: list[str]
) -> None:
    feed.catch_up()
    answer = read_client.get("/refunds-due", headers=auth(Role.OPERATOR))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    expected = owed_by_the_event_store(side, orders)
    assert len(expected) == 4  # late, then_cancelled, wrong, fine's second payment
    assert listed(body["items"]) == expected
    positions = [i["position"] for i in body["items"]]
    assert positions == sorted(positions)
    assert body["totals"] == [
        {"currency": "EUR", "refunds": 4, "amount_cents": sum(o[3] for o in expected)}
    ]
    customers = {i["order_id"]: i["customer_id"] for i in body["items"]}
    assert customers[orders[0]] == "c0"
    assert body["next_cursor"] is None
    for order_id in orders:  # the orders read model follows every event's version
        view = read_client.get(f"/orders/{order_id}", headers=auth(Role.OPERATOR)).json()
        stored: object = side.app.repository.get(UUID(order_id))
        assert isinstance(stored, Order)
        assert (view["version"], view["status"]) == (stored.version, stored.status)


def test_pages_follow_the_cursor(
    read_client: TestClient, feed: LogFeed, side: WriteSide, auth: Auth, orders: list[str]
) -> None:
    feed.catch_up()
    seen: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 3}
    while True:
        page = read_client.get("/refunds-due", params=params, headers=auth(Role.AUDITOR)).json()
        seen.extend(page["items"])
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert listed(seen) == owed_by_the_event_store(side, orders)
    assert len(seen) == len(listed(seen))


def test_customers_may_not_read_refunds_due(read_client: TestClient, auth: Auth) -> None:
    answer = read_client.get("/refunds-due", headers=auth(Role.CUSTOMER, "c0"))
    assert answer.status_code == 403


def test_the_gauges_say_what_is_owed(
    read_client: TestClient, feed: LogFeed, side: WriteSide, auth: Auth, orders: list[str]
) -> None:
    feed.catch_up()
    text = read_client.get("/metrics").text
    cents = sum(o[3] for o in owed_by_the_event_store(side, orders))
    assert f'orderflow_refunds_due_cents{{currency="EUR"}} {float(cents)}' in text
    assert 'orderflow_refunds_due{currency="EUR"} 4.0' in text


def test_a_rebuild_builds_the_same_refunds(
    read_client: TestClient,
    feed: LogFeed,
    side: WriteSide,
    reads: ReadSide,
    auth: Auth,
    orders: list[str],
) -> None:
    feed.catch_up()
    before = read_client.get("/refunds-due", headers=auth(Role.OPERATOR)).json()
    rebuild(SQL_BY_NAME["refunds_due"], reads.store, EventLog(side.app))
    after = read_client.get("/refunds-due", headers=auth(Role.OPERATOR)).json()
    assert after == before
    assert listed(after["items"]) == owed_by_the_event_store(side, orders)


def test_the_openapi_description_lists_refunds_due(read_client: TestClient) -> None:
    operation = read_client.get("/openapi.json").json()["paths"]["/refunds-due"]["get"]
    assert "payment_unapplied" in operation["description"]
    assert {"200", "403"} <= set(operation["responses"])
