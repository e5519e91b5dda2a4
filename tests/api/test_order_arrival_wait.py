"""`GET /orders/{id}` with `Prefer: wait=N`: the read waits for the order to reach the read
models instead of answering 404 at once (read_api/arrivals.py), on embedded SQLite and on
real PostgreSQL."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient

from projections import queries
from projections.ports import Row, Tx
from read_api import arrivals, consistency
from schemas.auth import Role
from tests.api.test_read_api import Auth, Shop
from tests.api.test_write_api import is_problem

PROJECTED_AFTER_S = 0.4


class Waiting:
    """A GET run in a thread of its own, so the test can project while it waits."""

    def __init__(self, client: TestClient, path: str, headers: dict[str, str]) -> None:
        self.answer: httpx2.Response | None = None
        self.took_s = 0.0
        self._thread = threading.Thread(target=self._get, args=(client, path, headers))
        self._thread.start()

    def _get(self, client: TestClient, path: str, headers: dict[str, str]) -> None:
        began = time.monotonic()
        self.answer = client.get(path, headers=headers)
        self.took_s = time.monotonic() - began

    def result(self) -> httpx2.Response:
        self._thread.join(30)
        assert self.answer is not None
        return self.answer


@pytest.fixture
def shop(write_client: TestClient, auth: Auth, feed: Any) -> Shop:
    return Shop(write_client, auth, feed)


def test_a_read_that_prefers_to_wait_answers_once_the_order_is_projected(
    shop: Shop, read_client: TestClient, auth: Auth
) -> None:
    shop.item("KB", price=1000)
    placed = shop.order("alice", KB=2)
    path = f"/orders/{placed['order_id']}"
    wait = Waiting(read_client, path, auth(Role.CUSTOMER, "alice", Prefer="wait=5"))
    time.sleep(PROJECTED_AFTER_S)
    shop.feed.catch_up()
    answer = wait.result()
    assert answer.status_code == 200, answer.text
    assert answer.headers["preference-applied"] == "wait=5"
    body = answer.json()
    assert body["order_id"] == placed["order_id"]
    assert body["total_cents"] == 2 * 1000
    assert body["lines"] == [{"sku": "KB", "quantity": 2, "unit_price_cents": 1000}]
    # it answered once projected, not at the end of the 5 s it was allowed
    assert PROJECTED_AFTER_S <= wait.took_s < 5


def test_without_the_preference_an_unprojected_order_is_404_at_once(
    shop: Shop, read_client: TestClient, auth: Auth
) -> None:
    shop.item("KB")
    placed = shop.order("alice", KB=1)
    began = time.monotonic()
    answer = read_client.get(f"/orders/{placed['order_id']}", headers=auth(Role.OPERATOR))
    is_problem(answer, 404, "unknown-order")
    assert time.monotonic() - began < 1


def test_an_order_that_never_arrives_is_404_after_the_wait(
    shop: Shop, read_client: TestClient, auth: Auth
) -> None:
    shop.item("KB")
    placed = shop.order("alice", KB=1)
    began = time.monotonic()
    answer = read_client.get(
        f"/orders/{placed['order_id']}", headers=auth(Role.OPERATOR, Prefer="wait=1")
    )
    is_problem(answer, 404, "unknown-order")
    assert time.monotonic() - began >= 1


def test_a_customer_waiting_for_someone_elses_order_gets_404_when_it_arrives(
    shop: Shop, read_client: TestClient, auth: Auth
) -> None:
    shop.item("KB")
    placed = shop.order("alice", KB=1)
    wait = Waiting(
        read_client,
        f"/orders/{placed['order_id']}",
        auth(Role.CUSTOMER, "mallory", Prefer="wait=5"),
    )
    time.sleep(PROJECTED_AFTER_S)
    shop.feed.catch_up()
    answer = wait.result()
    is_problem(answer, 404, "unknown-order")
    assert "alice" not in answer.text
    assert wait.took_s < 5


def test_many_waiting_reads_are_checked_together_in_one_statement(
    shop: Shop, read_client: TestClient, auth: Auth, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop.item("KB", on_hand=1000, price=300)
    shop.item("MS", on_hand=1000, price=700)
    placed = [shop.order(f"c{n}", KB=1, MS=n + 1) for n in range(8)]
    asked: list[list[str]] = []
    read_orders = queries.orders

    def counted(tx: Tx, order_ids: list[str]) -> dict[str, Row]:
        asked.append(sorted(order_ids))
        return read_orders(tx, order_ids)

    monkeypatch.setattr(queries, "orders", counted)
    waits = [
        Waiting(read_client, f"/orders/{p['order_id']}", auth(Role.ADMIN, Prefer="wait=5"))
        for p in placed
    ]
    time.sleep(PROJECTED_AFTER_S)
    shop.feed.catch_up()
    answers = [w.result() for w in waits]
    assert [a.status_code for a in answers] == [200] * 8
    for n, answer in enumerate(answers):  # each handed its own order, with its own lines
        body = answer.json()
        assert (body["order_id"], body["customer_id"]) == (placed[n]["order_id"], f"c{n}")
        assert body["lines"] == [
            {"sku": "KB", "quantity": 1, "unit_price_cents": 300},
            {"sku": "MS", "quantity": n + 1, "unit_price_cents": 700},
        ]
        assert body["total_cents"] == 300 + (n + 1) * 700
    everyone = sorted(p["order_id"] for p in placed)
    # once all eight waited, one statement asked for all eight
    assert everyone in asked
    assert all(set(ids) <= set(everyone) for ids in asked)


@pytest.mark.parametrize("prefer", ["wait=abc", "wait=-1", "handling=lenient", "wait"])
def test_a_preference_the_server_cannot_read_is_ignored(
    prefer: str, shop: Shop, read_client: TestClient, auth: Auth
) -> None:
    shop.item("KB")
    placed = shop.order("alice", KB=1)
    began = time.monotonic()
    answer = read_client.get(
        f"/orders/{placed['order_id']}", headers=auth(Role.OPERATOR, Prefer=prefer)
    )
    is_problem(answer, 404, "unknown-order")
    assert "preference-applied" not in answer.headers
    assert time.monotonic() - began < 1


def test_past_the_bound_on_waiting_reads_a_read_answers_at_once(
    shop: Shop, read_client: TestClient, auth: Auth, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(arrivals, "MOST_WAITING", 0)
    shop.item("KB", price=250)
    placed = shop.order("alice", KB=3)
    path = f"/orders/{placed['order_id']}"
    began = time.monotonic()
    not_yet = read_client.get(path, headers=auth(Role.OPERATOR, Prefer="wait=5"))
    is_problem(not_yet, 404, "unknown-order")
    assert time.monotonic() - began < 1
    shop.feed.catch_up()
    there = read_client.get(path, headers=auth(Role.OPERATOR, Prefer="wait=5"))
    assert there.status_code == 200
    assert there.json()["total_cents"] == 3 * 250
    assert "preference-applied" not in there.headers


def test_a_waiting_read_with_min_position_claims_at_least_that_position(
    shop: Shop, read_client: TestClient, auth: Auth, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The position a look read may be one read a while before (RecentPositions): a read
    that asked for min_position must still say it reflects at least that position."""
    shop.item("KB", price=100)
    first = shop.order("alice", KB=1)
    shop.feed.catch_up()
    monkeypatch.setattr(consistency, "RECENT_POSITIONS_S", 60.0)
    primed = read_client.get(f"/orders/{first['order_id']}", headers=auth(Role.OPERATOR))
    assert int(primed.headers["x-projection-position"]) == first["position"]
    placed = shop.order("bob", KB=2)
    path = f"/orders/{placed['order_id']}?min_position={placed['position']}&wait_ms=5000"
    wait = Waiting(read_client, path, auth(Role.OPERATOR, Prefer="wait=5"))
    time.sleep(PROJECTED_AFTER_S)
    shop.feed.catch_up()
    answer = wait.result()
    assert answer.status_code == 200, answer.text
    assert answer.json()["total_cents"] == 2 * 100
    assert int(answer.headers["x-projection-position"]) >= placed["position"]
