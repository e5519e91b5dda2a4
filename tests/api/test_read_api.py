"""The read API's HTTP contract (docs/api.md), on embedded SQLite and on real PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from infra.bootstrap import ReadSide, WriteSide
from infra.eventstore.event_log import EventLog
from projections.feed import LogFeed
from projections.registry import SQL_BY_NAME
from projections.sql_projector import SqlProjector
from schemas.auth import Role
from tests.api.test_write_api import is_problem

Auth = Callable[..., dict[str, str]]


class Shop:
    """Commands through the write API; the read models caught up on demand."""

    def __init__(self, writes: TestClient, auth: Auth, feed: LogFeed) -> None:
        self.writes, self.auth, self.feed = writes, auth, feed

    def command(
        self, path: str, body: dict[str, Any], role: Role = Role.ADMIN, sub: str = "tester"
    ) -> dict[str, Any]:
        response = self.writes.post(path, json=body, headers=self.auth(role, sub))
        assert response.status_code in (200, 201), response.text
        answer: dict[str, Any] = response.json()
        return answer

    def item(self, sku: str, on_hand: int = 100, price: int = 500) -> dict[str, Any]:
        return self.command(
            "/inventory",
            {"sku": sku, "name": f"{sku} name", "unit_price_cents": price, "on_hand": on_hand},
        )

    def order(self, customer: str, **lines: int) -> dict[str, Any]:
        return self.command(
            "/orders",
            {"lines": [{"sku": s, "quantity": q} for s, q in lines.items()]},
            Role.CUSTOMER,
            customer,
        )


@pytest.fixture
def shop(write_client: TestClient, auth: Auth, feed: LogFeed) -> Shop:
    return Shop(write_client, auth, feed)


def test_an_order_reads_back_with_its_lines_and_position(
    shop: Shop, read_client: TestClient, auth: Auth
) -> None:
    shop.item("KB", price=1000)
    placed = shop.order("alice", KB=2)
    shop.feed.catch_up()
    response = read_client.get(f"/orders/{placed['order_id']}", headers=auth(Role.OPERATOR))
    assert response.status_code == 200
    assert int(response.headers["x-projection-position"]) == placed["position"]
    body = response.json()
    assert {k: body[k] for k in ("customer_id", "status", "total_cents", "version")} == {
        "customer_id": "alice",
        "status": "reserved",
        "total_cents": 2000,
        "version": 2,
    }
    assert body["lines"] == [{"sku": "KB", "quantity": 2, "unit_price_cents": 1000}]


def test_inventory_levels_follow_reservations_and_shipments(
    shop: Shop, read_client: TestClient, auth: Auth
) -> None:
    shop.item("KB", on_hand=10, price=1000)
    placed = shop.order("alice", KB=3)
    shop.command(
        f"/orders/{placed['order_id']}/payments", {"amount_cents": 3000, "payment_ref": "p"}
    )
    shipped = shop.command(
        f"/orders/{placed['order_id']}/shipments", {"carrier": "DHL", "tracking_number": "T"}
    )
    shop.feed.catch_up()
    level = read_client.get(
        "/inventory/KB",
        params={"min_position": shipped["position"]},
        headers=auth(Role.CUSTOMER, "bob"),
    )
    assert level.json() == {
        "sku": "KB",
        "name": "KB name",
        "unit_price_cents": 1000,
        "on_hand": 7,
        "reserved": 0,
        "available": 7,
        "version": 4,
    }


def test_min_position_waits_for_the_read_models_and_reads_are_fresh(
    shop: Shop, read_client: TestClient, auth: Auth
) -> None:
    shop.feed.start()
    try:
        shop.item("KB")
        for n in range(10):
            placed = shop.order("alice", KB=1)
            fresh = read_client.get(
                f"/orders/{placed['order_id']}",
                params={"min_position": placed["position"]},
                headers=auth(Role.ADMIN),
            )
            assert fresh.status_code == 200, f"order {n}: {fresh.text}"
            assert int(fresh.headers["x-projection-position"]) >= placed["position"]
    finally:
        shop.feed.stop()


def test_a_position_not_reached_in_time_is_503_projection_lag(
    shop: Shop, read_client: TestClient, auth: Auth
) -> None:
    made = shop.item("KB")  # not fed to the projections
    response = read_client.get(
        "/inventory/KB",
        params={"min_position": made["position"], "wait_ms": 100},
        headers=auth(Role.ADMIN),
    )
    is_problem(response, 503, "projection-lag")
    assert response.headers["retry-after"] == "1"
    assert response.headers["x-projection-position"] == "0"
    shop.feed.catch_up()
    again = read_client.get(
        "/inventory/KB", params={"min_position": made["position"]}, headers=auth(Role.ADMIN)
    )
    assert again.status_code == 200


def test_orders_page_newest_first_with_a_stable_cursor(
    shop: Shop, read_client: TestClient, auth: Auth
) -> None:
    shop.item("KB")
    placed = [shop.order(f"c{n % 2}", KB=1)["order_id"] for n in range(7)]
    shop.feed.catch_up()
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = read_client.get("/orders", params=params, headers=auth(Role.OPERATOR)).json()
        seen += [item["order_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(placed))


def test_orders_filter_by_customer_and_status(
    shop: Shop, read_client: TestClient, auth: Auth
) -> None:
    shop.item("KB", price=100)
    first = shop.order("alice", KB=1)
    shop.order("alice", KB=2)
    shop.order("bob", KB=1)
    shop.command(f"/orders/{first['order_id']}/payments", {"amount_cents": 100, "payment_ref": "p"})
    shop.feed.catch_up()
    alices = read_client.get(
        "/orders", params={"customer_id": "alice"}, headers=auth(Role.OPERATOR)
    ).json()["items"]
    assert [o["customer_id"] for o in alices] == ["alice", "alice"]
    paid = read_client.get(
        "/orders", params={"status": "paid"}, headers=auth(Role.OPERATOR)
    ).json()["items"]
    assert [o["order_id"] for o in paid] == [first["order_id"]]


def test_inventory_below_lists_what_needs_reordering(
    shop: Shop, read_client: TestClient, auth: Auth
) -> None:
    for sku, on_hand in [("A", 3), ("B", 50), ("C", 1)]:
        shop.item(sku, on_hand=on_hand)
    shop.feed.catch_up()
    low = read_client.get("/inventory", params={"below": 5}, headers=auth(Role.OPERATOR))
    assert [i["sku"] for i in low.json()["items"]] == ["A", "C"]


def test_a_customer_sees_only_their_own_orders(
    shop: Shop, read_client: TestClient, auth: Auth
) -> None:
    shop.item("KB")
    alices = shop.order("alice", KB=1)
    shop.order("bob", KB=1)
    shop.feed.catch_up()
    mine = read_client.get("/orders", headers=auth(Role.CUSTOMER, "bob")).json()["items"]
    assert [o["customer_id"] for o in mine] == ["bob"]
    is_problem(
        read_client.get(f"/orders/{alices['order_id']}", headers=auth(Role.CUSTOMER, "bob")),
        404,
        "unknown-order",
    )
    is_problem(
        read_client.get(
            "/orders", params={"customer_id": "alice"}, headers=auth(Role.CUSTOMER, "bob")
        ),
        403,
        "forbidden",
    )


def test_reads_need_a_token(read_client: TestClient) -> None:
    is_problem(read_client.get("/inventory"), 401, "unauthenticated")


def test_unknown_things_are_404_with_the_position(read_client: TestClient, auth: Auth) -> None:
    response = read_client.get("/inventory/NOPE", headers=auth(Role.ADMIN))
    is_problem(response, 404, "unknown-sku")
    assert "x-projection-position" in response.headers
    is_problem(
        read_client.get("/orders/5b6f3c52-1f7e-4f64-9a53-0d7f0d0e2b10", headers=auth(Role.ADMIN)),
        404,
        "unknown-order",
    )


@pytest.mark.parametrize(
    "query",
    [
        {"cursor": "%%%"},
        {"cursor": "WyJ4Il0"},
        {"limit": 0},
        {"wait_ms": 20_000},
        {"min_position": -1},
    ],
)
def test_bad_queries_are_4xx_problems(
    read_client: TestClient, auth: Auth, query: dict[str, str | int]
) -> None:
    response = read_client.get("/orders", params=query, headers=auth(Role.ADMIN))
    assert response.status_code in (400, 422)
    assert response.headers["content-type"] == "application/problem+json"


def test_read_health_and_readiness(read_client: TestClient) -> None:
    assert read_client.get("/health").json() == {"status": "ok"}
    ready = read_client.get("/ready").json()
    assert ready["checks"] == {"read_store": "ok", "event_store": "ok"}
    assert set(ready["positions"]) == {
        "orders",
        "inventory",
        "customer_orders",
        "reservations",
        "refunds_due",
    }


def test_reads_during_writes_from_another_thread_stay_consistent(
    shop: Shop, read_client: TestClient, auth: Auth
) -> None:
    """A reader never sees an order without its lines, whatever the feed is doing."""
    shop.item("KB")
    shop.item("MS")
    stop = threading.Event()
    problems: list[str] = []

    def read_loop() -> None:
        while not stop.is_set():
            page = read_client.get("/orders", params={"limit": 5}, headers=auth(Role.ADMIN))
            for summary in page.json()["items"]:
                full = read_client.get(
                    f"/orders/{summary['order_id']}", headers=auth(Role.ADMIN)
                ).json()
                if len(full["lines"]) != 2:
                    problems.append(str(full))

    reader = threading.Thread(target=read_loop)
    reader.start()
    try:
        for _ in range(15):
            shop.order("alice", KB=1, MS=1)
            shop.feed.catch_up()
    finally:
        stop.set()
        reader.join()
    assert problems == []


@pytest.mark.parametrize("path", ["/health", "/ready", "/audit/events", "/inventory"])
def test_every_answer_carries_the_projection_position(
    shop: Shop, read_client: TestClient, auth: Auth, path: str
) -> None:
    made = shop.item("KB")
    shop.feed.catch_up()
    for headers in ({}, auth(Role.ADMIN)):  # a 401 says it too
        response = read_client.get(path, headers=headers)
        assert int(response.headers["x-projection-position"]) == made["position"]


def test_a_read_reports_the_position_of_the_read_models_it_reads_not_the_slowest(
    shop: Shop, read_client: TestClient, auth: Auth, side: WriteSide, reads: ReadSide
) -> None:
    """Only the orders read model is brought up to the last order: a read of an order says
    its position, a read of the inventory says the (lower) inventory position."""
    shop.item("KB", price=1000)
    first = shop.order("alice", KB=1)
    shop.feed.catch_up()
    latest = shop.order("bob", KB=1)
    orders_only = SqlProjector(reads.store, [SQL_BY_NAME["orders"]])
    for envelopes in EventLog(side.app).iterate(first["position"]):
        orders_only.apply(envelopes)

    order = read_client.get(f"/orders/{latest['order_id']}", headers=auth(Role.OPERATOR))
    item = read_client.get("/inventory/KB", headers=auth(Role.OPERATOR))

    assert order.status_code == item.status_code == 200
    assert int(order.headers["x-projection-position"]) == latest["position"]
    assert int(item.headers["x-projection-position"]) == first["position"]
