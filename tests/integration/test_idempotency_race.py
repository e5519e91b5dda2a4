"""Two requests with the same Idempotency-Key at the same moment, over real HTTP on a real
PostgreSQL server: one order, and the loser gets the winner's answer, replayed."""

from __future__ import annotations

import threading
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

PAIRS = 60
PAIRS_AT_ONCE = 4


@pytest.fixture
def pg_side(postgres_settings: Settings) -> Iterator[WriteSide]:
    side = write_side(postgres_settings.model_copy(update={"postgres_pool_size": 20}))
    yield side
    side.close()


def token(side: WriteSide, sub: str, role: Role) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(side.settings.token_secret, sub, role, 600)}"}


def race_pair(base: str, side: WriteSide, n: int) -> list[httpx2.Response]:
    """Both requests of pair `n` released together by a barrier."""
    start = threading.Barrier(2)
    headers = {**token(side, f"customer-{n}", Role.CUSTOMER), "Idempotency-Key": f"race-{n}"}
    body = {"lines": [{"sku": "RACE-1", "quantity": 1}]}

    def send(_: int) -> httpx2.Response:
        with httpx2.Client(base_url=base, timeout=60) as client:
            start.wait()
            return client.post("/orders", json=body, headers=headers)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(send, range(2)))


def test_racing_pairs_with_one_key_each_give_one_order_and_a_replayed_answer(
    pg_side: WriteSide,
) -> None:
    with serving(create_app(pg_side)) as base:
        registered = httpx2.post(
            f"{base}/inventory",
            json={"sku": "RACE-1", "name": "race", "unit_price_cents": 100, "on_hand": 1000},
            headers=token(pg_side, "ops", Role.OPERATOR),
        )
        assert registered.status_code == 201
        with ThreadPoolExecutor(max_workers=PAIRS_AT_ONCE) as pairs:
            outcomes = list(pairs.map(lambda n: race_pair(base, pg_side, n), range(PAIRS)))

    for pair in outcomes:
        assert sorted(r.status_code for r in pair) == [201, 201], [r.text for r in pair]
        first = [r for r in pair if "idempotent-replayed" not in r.headers]
        replayed = [r for r in pair if r.headers.get("idempotent-replayed") == "true"]
        assert len(first) == 1
        assert len(replayed) == 1
        assert replayed[0].json() == first[0].json()

    created = [
        n
        for n in pg_side.app.recorder.select_notifications(start=1, limit=100_000)
        if n.topic.endswith("order.created")
    ]
    assert len(created) == PAIRS
    assert {str(n.originator_id) for n in created} == {
        pair[0].json()["order_id"] for pair in outcomes
    }
    item: object = pg_side.app.repository.get(InventoryItem.create_id("RACE-1"))
    assert isinstance(item, InventoryItem)
    assert (item.on_hand, item.reserved) == (1000, PAIRS)
