"""Checked rebuilds: `verify` reports what differs between the log's fold and the live read
model, changing nothing; `rebuild --check` swaps only when the two are equal (or forced)."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import pytest

from commands.ports import CommandContext
from domain.inventory import InventoryItem
from domain.order import Order
from infra.bootstrap import ReadSide, WriteSide
from infra.eventstore.event_log import EventLog
from infra.eventstore.log_shares import LogShares
from projections import verify as verify_module
from projections.feed import LogFeed
from projections.ports import Row
from projections.registry import SQL_BY_NAME, SQL_READ_MODELS
from projections.split_fold import MINE
from projections.verify import checked_rebuild, checked_rebuild_all, verify
from schemas.commands import OrderLineRequest, PayOrder, PlaceOrder, ReceiveStock, RegisterItem
from schemas.envelope import Envelope
from tests.commanding import placed as facts
from tests.folding import rows

CONTEXT = CommandContext(correlation_id="verify-test", actor="test")


def shop(side: WriteSide, orders: int) -> list[UUID]:
    handle = side.bus.handle
    for sku in ("A", "B"):
        handle(RegisterItem(sku=sku, name=sku, unit_price_cents=300, on_hand=1_000), CONTEXT)
    placed = []
    for n in range(orders):
        lines = (OrderLineRequest(sku="AB"[n % 2], quantity=1 + n % 3),)
        order = facts(handle(PlaceOrder(customer_id=f"c{n % 3}", lines=lines), CONTEXT))
        placed.append(order.order_id)
        if n % 2:
            pay = PayOrder(order_id=placed[-1], amount_cents=order.total_cents, payment_ref="p")
            handle(pay, CONTEXT)
    return placed


def item(side: WriteSide, sku: str) -> InventoryItem:
    found: object = side.app.repository.get(InventoryItem.create_id(sku))
    assert isinstance(found, InventoryItem)
    return found


def live_level(reads: ReadSide, sku: str) -> Row:
    with reads.store.read() as tx:
        row = tx.one("SELECT * FROM inventory_levels WHERE sku = %s", (sku,))
    assert row is not None
    return row


def leftovers(reads: ReadSide) -> list[str]:
    """Shadow tables or state rows a verify or refused rebuild left behind."""
    with reads.store.read() as tx:
        states = tx.all("SELECT name FROM projection_state")
        if tx.dialect == "sqlite":
            tables = tx.all("SELECT name FROM sqlite_master WHERE type = 'table'")
        else:
            tables = tx.all(
                "SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema()"
            )
    return [str(r["name"]) for r in [*states, *tables] if "__" in str(r["name"])]


def test_a_clean_projection_verifies_equal_and_nothing_changes(
    side: WriteSide, reads: ReadSide, feed: LogFeed
) -> None:
    shop(side, orders=12)
    feed.catch_up()
    side.bus.handle(ReceiveStock(sku="A", quantity=5), CONTEXT)  # appended, not yet projected
    before = {t.name: rows(reads.store, t.name) for p in SQL_READ_MODELS for t in p.tables}
    positions = reads.runner.positions()

    for projection in SQL_READ_MODELS:
        comparison = verify(projection, reads.store, EventLog(side.app))
        assert comparison.equal, comparison
        assert comparison.position == EventLog(side.app).head()
        for table in comparison.tables:
            assert table.live_digest == table.rebuilt_digest
            assert table.live_rows == table.rebuilt_rows == len(before[table.table])

    # the live catch-up done for the comparison was rolled back with it
    assert {t.name: rows(reads.store, t.name) for p in SQL_READ_MODELS for t in p.tables} == before
    assert reads.runner.positions() == positions
    assert leftovers(reads) == []
    orders = rows(reads.store, "orders")
    assert len(orders) == 12


def test_a_row_edited_by_hand_is_reported_with_its_key_and_blocks_a_checked_swap(
    side: WriteSide, reads: ReadSide, feed: LogFeed, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(verify_module, "PAGE", 2)  # tables read over several pages
    placed = shop(side, orders=6)
    feed.catch_up()
    truth = item(side, "B")  # the oracle: the aggregate loaded from the event store
    with reads.store.transaction() as tx:
        tx.execute("UPDATE inventory_levels SET on_hand = on_hand + 7 WHERE sku = %s", ("B",))
        tx.execute("DELETE FROM orders WHERE order_id = %s", (str(placed[2]),))

    inventory = verify(SQL_BY_NAME["inventory"], reads.store, EventLog(side.app))
    assert not inventory.equal
    (levels,) = inventory.tables
    assert (levels.table, levels.differing, levels.live_rows, levels.rebuilt_rows) == (
        "inventory_levels",
        1,
        2,
        2,
    )
    assert levels.live_digest != levels.rebuilt_digest
    (mismatch,) = levels.first
    assert mismatch.key == {"sku": "B"}
    assert mismatch.live is not None
    assert mismatch.rebuilt is not None
    assert mismatch.live["on_hand"] == truth.on_hand + 7
    assert mismatch.rebuilt["on_hand"] == truth.on_hand
    assert (mismatch.rebuilt["reserved"], mismatch.rebuilt["available"]) == (
        truth.reserved,
        truth.available,
    )

    orders = verify(SQL_BY_NAME["orders"], reads.store, EventLog(side.app))
    by_table = {t.table: t for t in orders.tables}
    assert (by_table["orders"].live_rows, by_table["orders"].rebuilt_rows) == (5, 6)
    assert by_table["order_lines"].equal
    (gone,) = by_table["orders"].first
    assert gone.key == {"order_id": str(placed[2])}
    order: object = side.app.repository.get(placed[2])
    assert isinstance(order, Order)
    assert gone.live is None
    assert gone.rebuilt is not None
    assert (gone.rebuilt["status"], gone.rebuilt["version"]) == (str(order.status), order.version)

    refused = checked_rebuild(SQL_BY_NAME["inventory"], reads.store, EventLog(side.app), swap=True)
    assert not refused.swapped
    assert not refused.comparison.equal
    assert live_level(reads, "B")["on_hand"] == truth.on_hand + 7  # left as it was
    assert leftovers(reads) == []

    forced = checked_rebuild(
        SQL_BY_NAME["inventory"], reads.store, EventLog(side.app), swap=True, force=True
    )
    assert forced.swapped
    assert not forced.comparison.equal
    assert live_level(reads, "B")["on_hand"] == truth.on_hand
    assert verify(SQL_BY_NAME["inventory"], reads.store, EventLog(side.app)).equal


def test_a_checked_rebuild_of_an_equal_projection_swaps(
    side: WriteSide, reads: ReadSide, feed: LogFeed
) -> None:
    shop(side, orders=4)
    feed.catch_up()
    side.bus.handle(ReceiveStock(sku="B", quantity=3), CONTEXT)  # not yet projected
    done = checked_rebuild(SQL_BY_NAME["inventory"], reads.store, EventLog(side.app), swap=True)
    assert done.swapped
    assert done.comparison.equal
    head = EventLog(side.app).head()
    assert reads.runner.positions()["inventory"] == head
    assert live_level(reads, "B")["on_hand"] == item(side, "B").on_hand
    feed.catch_up()  # the live feed goes on from the swapped-in watermark
    assert live_level(reads, "B")["on_hand"] == item(side, "B").on_hand


class CountedLog(EventLog):
    """The event log, counting the passes made over it from its start."""

    passes = 0

    def scan(self, after: int = 0, batch: int = 2000) -> Iterator[list[Envelope]]:
        CountedLog.passes += after == 0
        return super().scan(after, batch=batch)

    def share_scan(
        self, share: int, shares: LogShares, batch: int = 2000, forked: bool = False
    ) -> Iterator[list[Envelope]]:
        CountedLog.passes += share == MINE  # the helper's share is read in its own process
        return super().share_scan(share, shares, batch, forked)


def test_all_read_models_are_verified_in_one_pass_and_a_difference_blocks_every_swap(
    side: WriteSide, reads: ReadSide, feed: LogFeed
) -> None:
    shop(side, orders=6)
    feed.catch_up()
    truth = item(side, "A")  # the oracle: the aggregate loaded from the event store
    with reads.store.transaction() as tx:
        tx.execute("UPDATE inventory_levels SET reserved = reserved + 1 WHERE sku = %s", ("A",))
    before = {t.name: rows(reads.store, t.name) for p in SQL_READ_MODELS for t in p.tables}
    CountedLog.passes = 0

    checked = checked_rebuild_all(SQL_READ_MODELS, reads.store, CountedLog(side.app), swap=True)

    assert CountedLog.passes == 1
    assert [c.report.projection for c in checked] == [p.name for p in SQL_READ_MODELS]
    differing = {c.report.projection for c in checked if not c.comparison.equal}
    assert differing == {"inventory"}
    (levels,) = next(c for c in checked if c.report.projection == "inventory").comparison.tables
    (mismatch,) = levels.first
    assert mismatch.key == {"sku": "A"}
    assert mismatch.rebuilt is not None
    assert mismatch.rebuilt["reserved"] == truth.reserved
    # one differs: none is swapped, every live table as it was, nothing left behind
    assert not any(c.swapped for c in checked)
    assert {t.name: rows(reads.store, t.name) for p in SQL_READ_MODELS for t in p.tables} == before
    assert leftovers(reads) == []
