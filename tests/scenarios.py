"""Event histories tests share."""

from __future__ import annotations

import time

from domain.inventory import InventoryItem
from domain.order import Order, priced_line
from infra.eventstore.event_store import OrderFlowApplication


def save_every_event_type(app: OrderFlowApplication, pause_s: float = 0.0) -> list[Order]:
    """One of each event type, saved aggregate by aggregate in a few appends (with an
    optional pause between appends, for tests about time)."""
    item = InventoryItem(sku="A", name="a", unit_price_cents=100)
    item.receive(10)
    item.adjust(-1, "count")
    item.change_price(120)
    app.save(item)
    orders = [Order.place("c", [priced_line("A", 1, 120)]) for _ in range(4)]
    shipped, cancelled, expired, failed = orders
    for order in (shipped, cancelled, expired):
        item.reserve(order.id, 1)
        order.mark_reserved()
    app.save(item, *orders)
    time.sleep(pause_s)
    shipped.record_payment_failure("declined", "p0")
    shipped.pay(120, "p1")
    cancelled.pay(120, "p2")
    app.save(shipped, cancelled)
    time.sleep(pause_s)
    item.commit(shipped.id)
    shipped.ship("DHL", "T")
    shipped.deliver()
    cancelled.cancel("no")
    cancelled.record_refund(120, "r1")
    item.release(cancelled.id, "cancelled")
    expired.expire()
    expired.receive_payment(120, "EUR", "p3", "evt-late")  # too late: owed back
    expired.record_refund(120, "r3", "p3")
    failed.fail("no stock")
    app.save(item, *orders)
    return orders
