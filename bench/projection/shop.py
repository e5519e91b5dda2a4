"""Filling the event store with real events: aggregates driven directly, saved in batches."""

from __future__ import annotations

import random
import uuid
from collections import deque
from dataclasses import dataclass

import psycopg
from eventsourcing.domain import DomainEventProtocol

from domain.inventory import InventoryItem
from domain.order import Order, priced_line
from infra.eventstore.event_store import OrderFlowApplication

SKU_COUNT = 300
CUSTOMERS = 2_000
ON_HAND = 1_000_000
ORDERS_PER_ROUND = 100
SAVE_BATCH_EVENTS = 5_000
EVENTS_TABLE = "orderflow_events"

# What happens to an order after it is placed (and its stock reserved), with weights.
LIFECYCLES: tuple[tuple[tuple[str, ...], int], ...] = (
    (("pay", "ship", "deliver"), 80),
    (("fail_payment", "pay", "ship", "deliver"), 5),
    (("cancel",), 8),
    (("pay", "cancel"), 5),
    (("pay", "ship"), 2),
)


@dataclass
class InFlight:
    order: Order
    items: list[InventoryItem]
    steps: deque[str]


class Shop:
    """Every aggregate stays in memory and each command's events go to the next batch, in
    the order the unit of work would append them; one save holds many commands."""

    def __init__(self, app: OrderFlowApplication, rng: random.Random) -> None:
        self.app = app
        self.rng = rng
        self.items: list[InventoryItem] = []
        self.flights: list[InFlight] = []
        self.pending: list[DomainEventProtocol[uuid.UUID]] = []
        self.emitted = 0
        self.orders = 0
        self._paths = [path for path, _ in LIFECYCLES]
        self._weights = [weight for _, weight in LIFECYCLES]

    def _record(self, *aggregates: InventoryItem | Order) -> None:
        events = sorted(
            (e for a in aggregates for e in a.collect_events()), key=lambda e: e.timestamp
        )
        self.pending.extend(events)
        self.emitted += len(events)

    def save(self, force: bool = False) -> None:
        if self.pending and (force or len(self.pending) >= SAVE_BATCH_EVENTS):
            metadata = {
                "correlation_id": str(uuid.uuid4()),
                "causation_id": str(uuid.uuid4()),
                "actor": "bench-operator",
            }
            self.app.save(*self.pending, metadata=metadata)
            self.pending.clear()

    def stock(self) -> None:
        for n in range(SKU_COUNT):
            sku = f"P-{n:04d}"
            item = InventoryItem(
                sku=sku, name=f"product {n}", unit_price_cents=self.rng.randint(199, 19_999)
            )
            item.receive(ON_HAND)
            self.items.append(item)
            self._record(item)
        self.save(force=True)

    def place(self) -> None:
        chosen = self.rng.sample(self.items, k=self.rng.randint(1, 3))
        quantities = [self.rng.randint(1, 3) for _ in chosen]
        lines = [
            priced_line(item.sku, quantity, item.unit_price_cents)
            for item, quantity in zip(chosen, quantities, strict=True)
        ]
        order = Order.place(f"customer-{self.rng.randrange(CUSTOMERS)}", lines)
        for item, quantity in zip(chosen, quantities, strict=True):
            item.reserve(order.id, quantity)
        order.mark_reserved()
        self._record(order, *chosen)
        path = self.rng.choices(self._paths, self._weights)[0]
        self.flights.append(InFlight(order, chosen, deque(path)))
        self.orders += 1

    def advance(self, flight: InFlight) -> None:
        order, items = flight.order, flight.items
        step = flight.steps.popleft()
        ref = f"pay-{order.id.hex[:12]}"
        if step == "pay":
            order.pay(order.total_cents, ref)
            self._record(order)
        elif step == "fail_payment":
            order.record_payment_failure("card declined", ref)
            self._record(order)
        elif step == "ship":
            order.ship("DHL", f"TRK{order.id.hex[:10].upper()}")
            for item in items:
                item.commit(order.id)
            self._record(order, *items)
        elif step == "deliver":
            order.deliver()
            self._record(order)
        elif step == "cancel":
            holds_stock = order.holds_reservations
            order.cancel("customer changed their mind")
            if holds_stock:
                for item in items:
                    item.release(order.id, reason="cancelled")
            self._record(order, *items)
        else:
            raise ValueError(f"unknown step {step!r}")

    def look_after_stock(self) -> None:
        item = self.rng.choice(self.items)
        if self.rng.random() < 0.5:
            item.change_price(self.rng.randint(199, 19_999))
        else:
            item.adjust(self.rng.choice((-2, -1, 1, 2)), "stock count")
        self._record(item)

    def round(self, new_orders: int) -> None:
        """Orders placed earlier move one step on; then new ones come in."""
        moving, self.flights = self.flights, []
        for flight in moving:
            self.advance(flight)
            if flight.steps:
                self.flights.append(flight)
        for _ in range(new_orders):
            self.place()
        self.look_after_stock()
        self.save()

    def fill(self, target: int) -> None:
        self.stock()
        while self.emitted < target:
            self.round(ORDERS_PER_ROUND)
        while self.flights:
            self.round(0)
        self.save(force=True)


def event_mix(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            f"SELECT topic, count(*) FROM {EVENTS_TABLE} GROUP BY topic ORDER BY 2 DESC"
        ).fetchall()
    return {str(topic).split(":", 1)[1].split(".", 1)[1]: int(n) for topic, n in rows}
