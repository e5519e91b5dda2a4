"""Unpaid reservations expire and give their stock back, exactly once."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from commands.ports import CommandContext
from domain.inventory import InventoryItem
from domain.order import Order, priced_line
from infra.bootstrap import ReadSide, WriteSide, read_side, write_side
from infra.eventstore.event_log import EventLog
from infra.settings import Settings
from infra.worker import ExpiryWorker
from projections.feed import LogFeed
from projections.reservations import reservations
from schemas.commands import OrderLineRequest, PayOrder, PlaceOrder, RegisterItem
from tests.commanding import placed as facts

CONTEXT = CommandContext(correlation_id="expiry-test", actor="test")


def place(side: WriteSide, quantity: int = 2) -> UUID:
    lines = (OrderLineRequest(sku="A", quantity=quantity), OrderLineRequest(sku="B", quantity=1))
    return facts(side.bus.handle(PlaceOrder(customer_id="c", lines=lines), CONTEXT)).order_id


def stock(side: WriteSide, sku: str) -> tuple[int, int]:
    item: object = side.app.repository.get(InventoryItem.create_id(sku))
    assert isinstance(item, InventoryItem)
    return item.on_hand, item.reserved


def status(side: WriteSide, order_id: object) -> str:
    order: object = side.app.repository.get(UUID(str(order_id)))
    assert isinstance(order, Order)
    return str(order.status)


@pytest.fixture
def shop(side: WriteSide) -> WriteSide:
    for sku in ("A", "B"):
        side.bus.handle(RegisterItem(sku=sku, name=sku, unit_price_cents=100, on_hand=50), CONTEXT)
    return side


def test_an_unpaid_reservation_expires_and_its_stock_returns_but_a_paid_one_does_not(
    shop: WriteSide, reads: ReadSide, feed: LogFeed
) -> None:
    unpaid, paid = place(shop), place(shop)
    shop.bus.handle(PayOrder(order_id=paid, amount_cents=300, payment_ref="p"), CONTEXT)
    feed.catch_up()
    ttl = timedelta(seconds=5)
    not_yet = ExpiryWorker(shop.bus, reads.store, ttl)
    assert not_yet.run_once() == 0
    later = ExpiryWorker(
        shop.bus, reads.store, ttl, clock=lambda: datetime.now(UTC) + timedelta(seconds=6)
    )
    assert later.run_once() == 1
    assert (status(shop, unpaid), status(shop, paid)) == ("expired", "paid")
    assert (stock(shop, "A"), stock(shop, "B")) == ((50, 2), (50, 1))
    feed.catch_up()
    assert later.run_once() == 0  # the index forgot it: nothing is scanned again


def test_with_a_ttl_of_a_second_the_worker_expires_in_real_time(
    shop: WriteSide, reads: ReadSide, feed: LogFeed
) -> None:
    order = place(shop)
    feed.start()
    worker = ExpiryWorker(shop.bus, reads.store, timedelta(seconds=1), interval_s=0.1)
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while status(shop, order) != "expired":
            assert time.monotonic() < deadline, "the order did not expire"
            time.sleep(0.1)
    finally:
        worker.stop()
        feed.stop()
    assert stock(shop, "A") == (50, 0)


@pytest.mark.postgres
def test_two_workers_at_once_release_exactly_once(postgres_settings: Settings) -> None:
    settings = postgres_settings.model_copy(update={"postgres_pool_size": 8})
    side, reads = write_side(settings), read_side(settings)
    for sku in ("A", "B"):
        side.bus.handle(RegisterItem(sku=sku, name=sku, unit_price_cents=100, on_hand=500), CONTEXT)
    orders = [place(side, quantity=1) for _ in range(20)]
    LogFeed(EventLog(side.app), reads.runner).catch_up()
    future = datetime.now(UTC) + timedelta(hours=1)
    workers = [
        ExpiryWorker(
            write_side(settings).bus, reads.store, timedelta(minutes=15), clock=lambda: future
        )
        for _ in range(2)
    ]
    start = threading.Barrier(2)

    def run(worker: ExpiryWorker) -> None:
        start.wait()
        worker.run_once()

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(w.expired for w in workers) == len(orders)
    types = Counter(
        (e.type, str(e.aggregate_id), str(e.data.get("order_id", e.aggregate_id)))
        for batch in EventLog(side.app).iterate(0)
        for e in batch
        if e.type in ("order.expired", "inventory.reservation_released")
    )
    assert all(count == 1 for count in types.values())
    assert sum(1 for kind, *_ in types if kind == "order.expired") == len(orders)
    assert sum(1 for kind, *_ in types if kind != "order.expired") == 2 * len(orders)
    assert (stock(side, "A"), stock(side, "B")) == ((500, 0), (500, 0))
    side.close()
    reads.close()


STUCK = 250  # more than a worker's batch (200)


def test_rows_the_worker_cannot_expire_do_not_stall_the_ones_behind_them(
    shop: WriteSide, reads: ReadSide, feed: LogFeed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Paid orders whose payment is parked as a dead letter stay in the expiry index; the
    worker refuses to expire them, and must still reach the due order reserved after."""
    paid = [Order.place("c", [priced_line("A", 1, 100)]) for _ in range(STUCK)]
    for order in paid:
        order.mark_reserved()
        order.pay(100, "p")
    shop.app.save(*paid)

    def poison(e: object, db: object) -> None:
        raise RuntimeError("the index cannot take this payment")

    monkeypatch.setitem(reservations.handlers, "order.paid", poison)
    feed.catch_up()
    monkeypatch.undo()
    due = place(shop)
    feed.catch_up()
    with reads.store.read() as tx:
        indexed = tx.one("SELECT COUNT(*) AS n FROM reservation_deadlines")
    assert indexed == {"n": STUCK + 1}

    later = datetime.now(UTC) + timedelta(hours=1)
    worker = ExpiryWorker(shop.bus, reads.store, timedelta(minutes=15), clock=lambda: later)
    assert worker.run_once() == 1
    assert status(shop, due) == "expired"
    assert {status(shop, order.id) for order in paid} == {"paid"}

    feed.catch_up()  # the index forgets the expired one
    commands = Counter[str]()
    handle = shop.bus.handle
    monkeypatch.setattr(
        shop.bus, "handle", lambda c, ctx: commands.update([type(c).__name__]) or handle(c, ctx)
    )
    assert worker.run_once() == 0
    assert commands == Counter()  # the ones it could not expire are not tried again
