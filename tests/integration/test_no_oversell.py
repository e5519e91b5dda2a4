"""No oversell under concurrency, over real HTTP on a real PostgreSQL server."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx2
import pytest

from domain.inventory import InventoryItem
from infra.bootstrap import WriteSide, write_side
from infra.http.auth import mint_token
from infra.settings import Settings
from schemas.auth import Role
from tests.live_server import serving
from write_api.app import create_app

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_side(postgres_settings: Settings) -> Iterator[WriteSide]:
    side = write_side(postgres_settings.model_copy(update={"postgres_pool_size": 20}))
    yield side
    side.close()


def token(side: WriteSide, sub: str, role: Role) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(side.settings.token_secret, sub, role, 600)}"}


def register(base: str, side: WriteSide, sku: str, on_hand: int) -> None:
    body = {"sku": sku, "name": sku, "unit_price_cents": 100, "on_hand": on_hand}
    response = httpx2.post(
        f"{base}/inventory", json=body, headers=token(side, "ops", Role.OPERATOR)
    )
    assert response.status_code == 201


def place_all_at_once(
    base: str, side: WriteSide, lines: list[dict[str, object]], clients: int
) -> list[httpx2.Response]:
    start = threading.Barrier(clients)

    def place(n: int) -> httpx2.Response:
        with httpx2.Client(base_url=base, timeout=60) as client:
            headers = token(side, f"customer-{n}", Role.CUSTOMER)
            start.wait()
            return client.post("/orders", json={"lines": lines}, headers=headers)

    with ThreadPoolExecutor(max_workers=clients) as pool:
        return list(pool.map(place, range(clients)))


def stock(side: WriteSide, sku: str) -> tuple[int, int]:
    item: object = side.app.repository.get(InventoryItem.create_id(sku))
    assert isinstance(item, InventoryItem)
    return item.on_hand, item.reserved


def test_forty_concurrent_orders_for_ten_in_stock_sell_exactly_ten(pg_side: WriteSide) -> None:
    with serving(create_app(pg_side)) as base:
        register(base, pg_side, "HOT-1", on_hand=10)
        responses = place_all_at_once(base, pg_side, [{"sku": "HOT-1", "quantity": 1}], 40)

    outcomes = Counter(
        (r.status_code, r.json().get("type", "").rsplit("/", 1)[-1]) for r in responses
    )
    assert outcomes == {(201, ""): 10, (409, "insufficient-stock"): 30}
    assert stock(pg_side, "HOT-1") == (10, 10)
    order_events = [
        n
        for n in pg_side.app.recorder.select_notifications(start=1, limit=10_000)
        if n.topic.endswith("order.created")
    ]
    assert len(order_events) == 10


def test_concurrent_two_sku_orders_reserve_both_or_neither(pg_side: WriteSide) -> None:
    with serving(create_app(pg_side)) as base:
        register(base, pg_side, "PLENTY", on_hand=100)
        register(base, pg_side, "SCARCE", on_hand=5)
        lines: list[dict[str, object]] = [
            {"sku": "PLENTY", "quantity": 2},
            {"sku": "SCARCE", "quantity": 1},
        ]
        responses = place_all_at_once(base, pg_side, lines, 20)

    accepted = sum(r.status_code == 201 for r in responses)
    assert accepted == 5
    assert all(r.status_code in (201, 409) for r in responses)
    assert stock(pg_side, "SCARCE") == (5, 5)
    assert stock(pg_side, "PLENTY") == (100, 2 * accepted)
