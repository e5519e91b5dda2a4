"""Random command sequences through the bus; after every step the invariants hold:

- stock: 0 <= reserved <= on_hand, and reserved is exactly what live orders hold;
- on_hand is what was received and adjusted minus what shipped (nothing lost or invented);
- a refused command appends nothing and changes no aggregate.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Protocol
from uuid import UUID

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from commands.bus import CommandBus, Committed
from commands.errors import ApplicationError
from commands.ports import CommandContext
from domain.errors import DomainError
from domain.inventory import InventoryItem
from domain.order import Order, OrderStatus
from infra.bootstrap import write_side
from infra.settings import Settings
from schemas.commands import (
    AdjustStock,
    CancelOrder,
    Command,
    DeliverOrder,
    OrderLineRequest,
    PayOrder,
    PlaceOrder,
    ReceiveStock,
    RegisterItem,
    ShipOrder,
)
from tests.commanding import placed as facts
from tests.fakes import FakeStore

SKUS = ["A", "B", "C"]
CONTEXT = CommandContext(correlation_id="prop", actor="prop")


class Store(Protocol):
    bus: CommandBus

    def log_size(self) -> int: ...
    def item(self, sku: str) -> InventoryItem | None: ...
    def order(self, order_id: UUID) -> Order: ...


class FakeBackedStore:
    def __init__(self) -> None:
        self.fake = FakeStore()
        self.bus = CommandBus(self.fake.unit_of_work, self.fake)

    def log_size(self) -> int:
        return len(self.fake.log)

    def item(self, sku: str) -> InventoryItem | None:
        found = self.fake.aggregates.get(InventoryItem.create_id(sku))
        return found if isinstance(found, InventoryItem) else None

    def order(self, order_id: UUID) -> Order:
        return self.fake.order(order_id)


class SQLiteBackedStore:
    def __init__(self) -> None:
        self.dir = tempfile.TemporaryDirectory()
        self.side = write_side(Settings(data_dir=Path(self.dir.name), jwt_secret="p" * 32))
        self.bus = self.side.bus

    def log_size(self) -> int:
        return self.side.app.recorder.max_notification_id() or 0

    def item(self, sku: str) -> InventoryItem | None:
        from eventsourcing.application import AggregateNotFoundError

        try:
            found: object = self.side.app.repository.get(InventoryItem.create_id(sku))
        except AggregateNotFoundError:
            return None
        assert isinstance(found, InventoryItem)
        return found

    def order(self, order_id: UUID) -> Order:
        found: object = self.side.app.repository.get(order_id)
        assert isinstance(found, Order)
        return found

    def close(self) -> None:
        self.side.close()
        self.dir.cleanup()


class CommandSequences(RuleBasedStateMachine):
    orders = Bundle("orders")

    def __init__(self) -> None:
        super().__init__()
        self.store = self.make_store()
        self.expected_on_hand: dict[str, int] = defaultdict(int)
        self.placed: list[UUID] = []

    def make_store(self) -> Store:
        return FakeBackedStore()

    def send(self, command: Command) -> Committed | None:
        """Runs a command; a refusal must leave the log and every aggregate as they were."""
        before = self.store.log_size()
        versions = self.versions()
        try:
            return self.store.bus.handle(command, CONTEXT)
        except (DomainError, ApplicationError):
            assert self.store.log_size() == before, f"{command!r} was refused but appended"
            assert self.versions() == versions
            return None

    def versions(self) -> dict[str, int]:
        seen = {sku: item.version for sku in SKUS if (item := self.store.item(sku)) is not None}
        seen.update({str(o): self.store.order(o).version for o in self.placed})
        return seen

    @rule(sku=st.sampled_from(SKUS), price=st.integers(0, 5000), on_hand=st.integers(0, 20))
    def register(self, sku: str, price: int, on_hand: int) -> None:
        if self.send(RegisterItem(sku=sku, name=sku, unit_price_cents=price, on_hand=on_hand)):
            self.expected_on_hand[sku] += on_hand

    @rule(sku=st.sampled_from(SKUS), quantity=st.integers(1, 10))
    def receive(self, sku: str, quantity: int) -> None:
        if self.send(ReceiveStock(sku=sku, quantity=quantity)):
            self.expected_on_hand[sku] += quantity

    @rule(sku=st.sampled_from(SKUS), delta=st.integers(-8, 8).filter(bool))
    def adjust(self, sku: str, delta: int) -> None:
        if self.send(AdjustStock(sku=sku, delta=delta, reason="count")):
            self.expected_on_hand[sku] += delta

    @rule(
        target=orders,
        lines=st.dictionaries(st.sampled_from(SKUS), st.integers(1, 6), min_size=1, max_size=3),
    )
    def place(self, lines: dict[str, int]) -> UUID | None:
        command = PlaceOrder(
            customer_id="c",
            lines=tuple(OrderLineRequest(sku=s, quantity=q) for s, q in lines.items()),
        )
        placed = self.send(command)
        if placed is None:
            return None
        order_id = facts(placed).order_id
        self.placed.append(order_id)
        return order_id

    @rule(order_id=orders, exact=st.booleans())
    def pay(self, order_id: UUID | None, exact: bool) -> None:
        if order_id is not None:
            total = self.store.order(order_id).total_cents
            self.send(
                PayOrder(
                    order_id=order_id, amount_cents=total + (0 if exact else 1), payment_ref="p"
                )
            )

    @rule(order_id=orders)
    def ship(self, order_id: UUID | None) -> None:
        if order_id is not None and self.send(
            ShipOrder(order_id=order_id, carrier="DHL", tracking_number="T")
        ):
            for line in self.store.order(order_id).lines:
                self.expected_on_hand[line["sku"]] -= line["quantity"]

    @rule(order_id=orders)
    def deliver(self, order_id: UUID | None) -> None:
        if order_id is not None:
            self.send(DeliverOrder(order_id=order_id))

    @rule(order_id=orders)
    def cancel(self, order_id: UUID | None) -> None:
        if order_id is not None:
            self.send(CancelOrder(order_id=order_id, reason="changed mind"))

    @invariant()
    def stock_is_never_oversold(self) -> None:
        for sku in SKUS:
            item = self.store.item(sku)
            if item is not None:
                assert 0 <= item.reserved <= item.on_hand
                assert item.available == item.on_hand - item.reserved

    @invariant()
    def on_hand_is_received_plus_adjusted_minus_shipped(self) -> None:
        for sku in SKUS:
            item = self.store.item(sku)
            assert (item.on_hand if item else 0) == self.expected_on_hand[sku]

    @invariant()
    def reserved_stock_is_exactly_what_live_orders_hold(self) -> None:
        held: dict[str, int] = defaultdict(int)
        for order_id in self.placed:
            order = self.store.order(order_id)
            assert order.total_cents == sum(
                line["quantity"] * line["unit_price_cents"] for line in order.lines
            )
            if order.status in (OrderStatus.RESERVED, OrderStatus.PAID):
                for line in order.lines:
                    held[line["sku"]] += line["quantity"]
        for sku in SKUS:
            item = self.store.item(sku)
            assert (item.reserved if item else 0) == held[sku]


class CommandSequencesOnSQLite(CommandSequences):
    def make_store(self) -> Store:
        return SQLiteBackedStore()

    def teardown(self) -> None:
        assert isinstance(self.store, SQLiteBackedStore)
        self.store.close()


TestCommandSequences = CommandSequences.TestCase
TestCommandSequences.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestCommandSequencesOnSQLite = CommandSequencesOnSQLite.TestCase
TestCommandSequencesOnSQLite.settings = settings(
    max_examples=20,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
