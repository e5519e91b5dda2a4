"""A sample catalogue and a handful of orders in every state, for `orderflow dev --demo`."""

from __future__ import annotations

import random

from commands.bus import CommandBus
from commands.errors import SkuAlreadyRegistered
from commands.ports import CommandContext
from commands.results import OrderFacts, Result
from schemas.commands import (
    CancelOrder,
    Command,
    DeliverOrder,
    OrderLineRequest,
    PayOrder,
    PlaceOrder,
    RegisterItem,
    ShipOrder,
)

CATALOGUE = [
    ("KB-101", "Mechanical keyboard", 8900, 40),
    ("MS-202", "Wireless mouse", 2900, 120),
    ("HD-303", "Noise-cancelling headphones", 19900, 25),
    ("CB-404", "USB-C cable, 2 m", 1200, 500),
    ("MN-505", "27-inch monitor", 27900, 12),
    ("DK-606", "Laptop dock", 14900, 30),
    ("WC-707", "HD webcam", 5900, 60),
    ("LP-808", "Laptop stand", 3900, 80),
]


def load_demo(bus: CommandBus, orders: int = 24, seed: int = 7) -> int:
    """Loads the demo once; returns how many orders it placed (0 when already loaded)."""

    def send(command: Command) -> Result:
        return bus.handle(command, CommandContext(correlation_id="demo", actor="demo")).result

    try:
        for sku, name, price, stock in CATALOGUE:
            send(RegisterItem(sku=sku, name=name, unit_price_cents=price, on_hand=stock))
    except SkuAlreadyRegistered:
        return 0  # loaded by an earlier run on this data dir
    rng = random.Random(seed)
    for n in range(orders):
        lines = tuple(
            OrderLineRequest(sku=sku, quantity=rng.randint(1, 3))
            for sku, *_ in rng.sample(CATALOGUE, rng.randint(1, 3))
        )
        placed = send(PlaceOrder(customer_id=f"customer-{n % 6 + 1}", lines=lines))
        assert isinstance(placed, OrderFacts)
        order_id = placed.order_id
        fate = n % 6
        if fate in (1, 2, 3, 4):
            send(
                PayOrder(
                    order_id=order_id,
                    amount_cents=placed.total_cents,
                    payment_ref=f"demo-{n}",
                )
            )
        if fate in (2, 3):
            send(ShipOrder(order_id=order_id, carrier="DHL", tracking_number=f"JD{n:08d}"))
        if fate == 3:
            send(DeliverOrder(order_id=order_id))
        if fate == 5:
            send(CancelOrder(order_id=order_id, reason="changed my mind"))
    return orders
