"""What a command handler returns: the facts of the aggregate it changed, as they are
once its events are applied, free of any transport. The edge that sent the command
chooses what of them to answer, and how."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from domain.inventory import InventoryItem
from domain.order import Order, OrderLine


@dataclass(frozen=True)
class ItemFacts:
    sku: str
    on_hand: int
    reserved: int
    available: int
    unit_price_cents: int
    version: int

    @classmethod
    def of(cls, item: InventoryItem) -> ItemFacts:
        return cls(
            sku=item.sku,
            on_hand=item.on_hand,
            reserved=item.reserved,
            available=item.available,
            unit_price_cents=item.unit_price_cents,
            version=item.version,
        )


@dataclass(frozen=True)
class OrderFacts:
    order_id: UUID
    customer_id: str
    status: str
    currency: str
    total_cents: int
    lines: tuple[OrderLine, ...]
    version: int

    @classmethod
    def of(cls, order: Order) -> OrderFacts:
        return cls(
            order_id=order.id,
            customer_id=order.customer_id,
            status=order.status.value,
            currency=order.currency,
            total_cents=order.total_cents,
            lines=tuple(OrderLine(**line) for line in order.lines),
            version=order.version,
        )


@dataclass(frozen=True)
class PaymentReceived(OrderFacts):
    """A provider's payment: `applied` when it paid the order, else recorded as owed back."""

    applied: bool

    @classmethod
    def on(cls, order: Order, applied: bool) -> PaymentReceived:
        return cls(**vars(OrderFacts.of(order)), applied=applied)


Result = ItemFacts | OrderFacts
