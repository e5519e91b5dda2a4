"""Several `dead-letters retry` at once apply each parked event once: a receipt of 10
parked, then retried by many operators together, counts 10 (the oracle: the item loaded
from the event store)."""

from __future__ import annotations

import threading
import time

import pytest

from commands.ports import CommandContext
from domain.inventory import InventoryItem
from infra.bootstrap import read_side, write_side
from infra.eventstore.event_log import EventLog
from infra.settings import Settings
from projections import dead_letters
from projections.feed import LogFeed
from projections.inventory import inventory
from projections.registry import SQL_BY_NAME
from projections.rows import Rows
from schemas.commands import ReceiveStock, RegisterItem
from schemas.envelope import Envelope

pytestmark = pytest.mark.postgres
CONTEXT = CommandContext(correlation_id="concurrent-retry", actor="test")
RETRIERS = 4


def test_concurrent_retries_apply_a_parked_receipt_once(
    postgres_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    side, reads = write_side(postgres_settings), read_side(postgres_settings)
    try:
        side.bus.handle(RegisterItem(sku="A", name="a", unit_price_cents=100, on_hand=5), CONTEXT)
        received = inventory.handlers["inventory.stock_received"]

        def broken(e: Envelope, db: Rows) -> None:
            if e.data["quantity"] == 10:
                raise RuntimeError("cannot count this receipt")
            received(e, db)

        monkeypatch.setitem(inventory.handlers, "inventory.stock_received", broken)
        side.bus.handle(ReceiveStock(sku="A", quantity=10), CONTEXT)
        LogFeed(EventLog(side.app), reads.runner).catch_up()
        assert [d.event_type for d in dead_letters.listing(reads.store)] == [
            "inventory.stock_received"
        ]

        def fixed_but_slow(e: Envelope, db: Rows) -> None:
            time.sleep(0.3)  # every retrier has read the open letters before one commits
            received(e, db)

        monkeypatch.setitem(inventory.handlers, "inventory.stock_received", fixed_but_slow)
        start = threading.Barrier(RETRIERS)
        results: list[tuple[int, int]] = []

        def retry() -> None:
            start.wait()
            results.append(dead_letters.retry(reads.store, SQL_BY_NAME))

        threads = [threading.Thread(target=retry) for _ in range(RETRIERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        item: object = side.app.repository.get(InventoryItem.create_id("A"))
        assert isinstance(item, InventoryItem)
        assert item.on_hand == 15
        with reads.store.read() as tx:
            row = tx.one("SELECT on_hand, available FROM inventory_levels WHERE sku = 'A'")
        assert row == {"on_hand": item.on_hand, "available": item.available}
        assert sorted(results) == [(0, 0)] * (RETRIERS - 1) + [(1, 0)]
        assert dead_letters.listing(reads.store) == []
    finally:
        side.close()
        reads.close()
