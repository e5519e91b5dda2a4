"""Inventory of one SKU: stock on hand, stock reserved for orders, and its price."""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import InsufficientStock, InvalidArgument, StockAdjustmentRefused
from domain.topics import register_event_topics


def _positive(quantity: int, what: str = "quantity") -> None:
    if quantity <= 0:
        raise InvalidArgument(f"{what} must be positive, got {quantity}")


@lru_cache(maxsize=10_000)  # as many SKUs as the aggregate cache holds by default
def _item_id(sku: str) -> UUID:
    """A SHA-1 per lookup was 3 % of a command's CPU: every command finds its items by SKU."""
    return uuid5(NAMESPACE_URL, f"orderflow:sku:{sku}")


class InventoryItem(Aggregate):
    """Invariants: 0 <= reserved <= on_hand; available = on_hand - reserved."""

    @event("inventory.item_registered")
    def __init__(self, sku: str, name: str, unit_price_cents: int) -> None:
        if unit_price_cents < 0:
            raise InvalidArgument("unit_price_cents must not be negative")
        self.sku = sku
        self.name = name
        self.unit_price_cents = unit_price_cents
        self.on_hand = 0
        self.reserved = 0
        # order id (hex) -> quantity held for it; makes release and commit exact and idempotent
        self.reservations: dict[str, int] = {}

    @staticmethod
    def create_id(sku: str, *_: Any, **__: Any) -> UUID:
        """One aggregate per SKU, found by its SKU."""
        return _item_id(sku)

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    def reserved_for(self, order_id: UUID) -> int:
        return self.reservations.get(order_id.hex, 0)

    def receive(self, quantity: int) -> None:
        _positive(quantity)
        self._stock_received(quantity)

    def adjust(self, delta: int, reason: str) -> None:
        if delta == 0:
            raise InvalidArgument("delta must not be zero")
        if self.on_hand + delta < self.reserved:
            raise StockAdjustmentRefused(
                f"SKU {self.sku!r}: adjusting by {delta} would leave {self.on_hand + delta} "
                f"on hand with {self.reserved} reserved"
            )
        self._stock_adjusted(delta, reason)

    def change_price(self, unit_price_cents: int) -> None:
        if unit_price_cents < 0:
            raise InvalidArgument("unit_price_cents must not be negative")
        self._price_changed(unit_price_cents)

    def reserve(self, order_id: UUID, quantity: int) -> None:
        _positive(quantity)
        if order_id.hex in self.reservations:
            raise InvalidArgument(f"SKU {self.sku!r} is already reserved for order {order_id}")
        if quantity > self.available:
            raise InsufficientStock(self.sku, requested=quantity, available=self.available)
        self._stock_reserved(order_id, quantity)

    def release(self, order_id: UUID, reason: str) -> bool:
        """Give back what was reserved for the order; releasing twice changes nothing."""
        quantity = self.reserved_for(order_id)
        if quantity == 0:
            return False
        self._reservation_released(order_id, quantity, reason)
        return True

    def commit(self, order_id: UUID) -> None:
        """The reserved stock leaves the warehouse: on hand and reserved both drop."""
        quantity = self.reserved_for(order_id)
        if quantity == 0:
            raise InvalidArgument(f"SKU {self.sku!r} holds no reservation for order {order_id}")
        self._stock_committed(order_id, quantity)

    @event("inventory.stock_received")
    def _stock_received(self, quantity: int) -> None:
        self.on_hand += quantity

    @event("inventory.stock_adjusted")
    def _stock_adjusted(self, delta: int, reason: str) -> None:
        self.on_hand += delta

    @event("inventory.price_changed")
    def _price_changed(self, unit_price_cents: int) -> None:
        self.unit_price_cents = unit_price_cents

    @event("inventory.stock_reserved")
    def _stock_reserved(self, order_id: UUID, quantity: int) -> None:
        self.reserved += quantity
        self.reservations[order_id.hex] = quantity

    @event("inventory.reservation_released")
    def _reservation_released(self, order_id: UUID, quantity: int, reason: str) -> None:
        self.reserved -= quantity
        del self.reservations[order_id.hex]

    @event("inventory.stock_committed")
    def _stock_committed(self, order_id: UUID, quantity: int) -> None:
        self.reserved -= quantity
        self.on_hand -= quantity
        del self.reservations[order_id.hex]


register_event_topics(InventoryItem)
