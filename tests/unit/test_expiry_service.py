"""The expiry service over an in-memory index of deadlines and the in-memory store: it
pages through everything due, expires what is reserved, and does not try again what
refused to expire while the index still lists it."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from commands.bus import CommandBus, Committed, RetryPolicy
from commands.expiry import Due, Expiry
from commands.ports import CommandContext
from schemas.commands import Command, OrderLineRequest, PayOrder, PlaceOrder, RegisterItem
from tests.commanding import placed
from tests.fakes import FakeStore

CONTEXT = CommandContext(correlation_id="expiry", actor="tester")
NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
TTL = timedelta(minutes=15)


class Deadlines:
    """reserved_at per order id, as the read side's index would list them."""

    def __init__(self) -> None:
        self.rows: dict[str, datetime] = {}
        self.pages = 0

    def due(self, cutoff: datetime, after: Due | None, limit: int) -> list[Due]:
        self.pages += 1
        listed = sorted((at, order_id) for order_id, at in self.rows.items() if at <= cutoff)
        return [row for row in listed if after is None or row > after][:limit]


class CountingBus(CommandBus):
    def __init__(self, store: FakeStore) -> None:
        super().__init__(store.unit_of_work, store, RetryPolicy(attempts=1))
        self.sent = Counter[str]()

    def handle(self, command: Command, context: CommandContext) -> Committed:
        self.sent[type(command).__name__] += 1
        return super().handle(command, context)


def test_expires_every_due_reservation_across_pages_and_skips_what_cannot_expire() -> None:
    store = FakeStore()
    bus = CountingBus(store)
    bus.handle(RegisterItem(sku="A", name="a", unit_price_cents=100, on_hand=10), CONTEXT)
    lines = (OrderLineRequest(sku="A", quantity=1),)
    orders = [
        placed(bus.handle(PlaceOrder(customer_id="c", lines=lines), CONTEXT)) for _ in "12345"
    ]
    bus.handle(PayOrder(order_id=orders[0].order_id, amount_cents=100, payment_ref="p"), CONTEXT)
    index = Deadlines()
    for n, order in enumerate(orders):
        index.rows[str(order.order_id)] = NOW - TTL - timedelta(minutes=5 - n)
    index.rows[str(orders[4].order_id)] = NOW  # reserved just now: not due
    gone = str(uuid4())
    index.rows[gone] = NOW - timedelta(hours=2)  # an order the store does not know
    bus.sent.clear()

    expiry = Expiry(bus, index, TTL, batch=2, clock=lambda: NOW)
    assert expiry.run_once() == 3  # orders 1 to 3; 0 is paid, 4 is not due, one is gone
    statuses = [store.order(o.order_id).status for o in orders]
    assert statuses == ["paid", "expired", "expired", "expired", "reserved"]
    assert store.item("A").reserved == 2  # the paid order's and the one not due
    assert bus.sent == Counter(ExpireOrder=5)
    assert index.pages == 3  # 5 due rows in pages of 2

    for order in orders[1:4]:
        del index.rows[str(order.order_id)]  # the index catches up with the expired ones
    bus.sent.clear()
    assert expiry.run_once() == 0
    assert bus.sent == Counter()  # the paid and the unknown one are not tried again
    assert expiry.expired == 3


def test_a_stopped_pass_answers_what_it_expired_so_far() -> None:
    store = FakeStore()
    bus = CountingBus(store)
    expiry = Expiry(bus, Deadlines(), TTL, clock=lambda: NOW)
    assert expiry.run_once(stopped=lambda: True) == 0
    assert bus.sent == Counter()
