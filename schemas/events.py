"""The payload (`data`) of every event type, as it appears in an envelope."""

from uuid import UUID

from pydantic import BaseModel, ConfigDict

from schemas.types import Cents, Currency, CustomerId, Quantity, Sku


class Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Line(Payload):
    sku: Sku
    quantity: Quantity
    unit_price_cents: Cents


class OrderCreated(Payload):
    customer_id: CustomerId
    lines: list[Line]
    currency: Currency
    total_cents: Cents


class OrderReserved(Payload):
    pass


class OrderPaid(Payload):
    amount_cents: Cents
    payment_ref: str


class OrderPaymentFailed(Payload):
    reason: str
    payment_ref: str


class OrderShipped(Payload):
    carrier: str
    tracking_number: str


class OrderDelivered(Payload):
    pass


class OrderCancelled(Payload):
    reason: str
    refund_due: bool


class OrderExpired(Payload):
    pass


class OrderFailed(Payload):
    reason: str


class ItemRegistered(Payload):
    sku: Sku
    name: str
    unit_price_cents: Cents


class StockReceived(Payload):
    quantity: Quantity


class StockAdjusted(Payload):
    delta: int
    reason: str


class PriceChanged(Payload):
    unit_price_cents: Cents


class StockReserved(Payload):
    order_id: UUID
    quantity: Quantity


class ReservationReleased(Payload):
    order_id: UUID
    quantity: Quantity
    reason: str


class StockCommitted(Payload):
    order_id: UUID
    quantity: Quantity


PAYLOADS: dict[str, type[Payload]] = {
    "order.created": OrderCreated,
    "order.reserved": OrderReserved,
    "order.paid": OrderPaid,
    "order.payment_failed": OrderPaymentFailed,
    "order.shipped": OrderShipped,
    "order.delivered": OrderDelivered,
    "order.cancelled": OrderCancelled,
    "order.expired": OrderExpired,
    "order.failed": OrderFailed,
    "inventory.item_registered": ItemRegistered,
    "inventory.stock_received": StockReceived,
    "inventory.stock_adjusted": StockAdjusted,
    "inventory.price_changed": PriceChanged,
    "inventory.stock_reserved": StockReserved,
    "inventory.reservation_released": ReservationReleased,
    "inventory.stock_committed": StockCommitted,
}
