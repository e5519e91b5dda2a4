"""Finding a command's aggregates by SKU or order id: one way for every unit of work."""

from __future__ import annotations

from typing import TypeVar
from uuid import UUID

from commands.errors import UnknownOrder, UnknownSku
from domain.inventory import InventoryItem
from domain.order import Order

A = TypeVar("A", InventoryItem, Order)


class AggregateLookup:
    """`item`, `has_item` and `order` over the `_get` a unit of work provides (from the
    event store one at a time, or from a group commit's batch in memory)."""

    def _get(self, aggregate_id: UUID, kind: type[A]) -> A | None:
        raise NotImplementedError

    def item(self, sku: str) -> InventoryItem:
        item = self._get(InventoryItem.create_id(sku), InventoryItem)
        if item is None:
            raise UnknownSku(sku)
        return item

    def has_item(self, sku: str) -> bool:
        return self._get(InventoryItem.create_id(sku), InventoryItem) is not None

    def order(self, order_id: UUID) -> Order:
        order = self._get(order_id, Order)
        if order is None:
            raise UnknownOrder(order_id)
        return order
