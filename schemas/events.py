"""The payload (`data`) of every event type, as it appears in an envelope.

`PAYLOADS` holds each type's newest shape, the one envelopes carry; `PAYLOAD_VERSIONS`
every shape a type ever had, by schema version. An older shape is frozen: its class stays
here unchanged (it still reads old exports) and its JSON Schema stays committed."""

from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, PositiveInt

from schemas.address import ShippingAddress
from schemas.types import Cents, Currency, CustomerId, Sku


class Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Line(Payload):
    sku: Sku
    quantity: PositiveInt  # the API caps what a request may ask; history is not capped
    unit_price_cents: Cents


class OrderCreatedV1(Payload):
    # order.created version 1, frozen (no docstring: it would enter the committed schema)
    model_config = ConfigDict(title="OrderCreated")

    customer_id: CustomerId
    lines: list[Line]
    currency: Currency
    total_cents: Cents


class OrderCreated(Payload):
    """Version 2: `shipping_address`, null when none was given or (upcast from version 1)
    none was recorded."""

    customer_id: CustomerId
    lines: list[Line]
    currency: Currency
    total_cents: Cents
    shipping_address: ShippingAddress | None


class OrderReserved(Payload):
    pass


class OrderPaid(Payload):
    amount_cents: Cents
    payment_ref: str


class OrderPaymentFailed(Payload):
    reason: str
    payment_ref: str


class OrderPaymentUnapplied(Payload):
    """Money the provider took for an order that cannot take it (ended, already paid, or
    another amount or currency): owed back to the customer. The order is unchanged."""

    amount_cents: Cents
    currency: Currency
    payment_ref: str = Field(description="The provider's payment id")
    provider_event_id: str = Field(description="The provider's id of the event that told us")
    reason: str
    order_status: str = Field(description="The order's status when the payment arrived")


class OrderUnappliedPaymentRefunded(Payload):
    """The provider refunded a payment recorded as owed back: no longer owed."""

    amount_cents: Cents
    payment_ref: str = Field(description="The refunded payment (the provider's payment id)")
    refund_ref: str = Field(description="The provider's refund (or charge) id")
    order_status: str = Field(description="The order's status, unchanged by the refund")


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


class OrderRefunded(Payload):
    amount_cents: Cents
    refund_ref: str


class OrderFailed(Payload):
    reason: str


class ItemRegistered(Payload):
    sku: Sku
    name: str
    unit_price_cents: Cents


class StockReceived(Payload):
    quantity: PositiveInt  # the API caps what a request may ask; history is not capped


class StockAdjusted(Payload):
    delta: int
    reason: str


class PriceChanged(Payload):
    unit_price_cents: Cents


class StockReserved(Payload):
    order_id: UUID
    quantity: PositiveInt  # the API caps what a request may ask; history is not capped


class ReservationReleased(Payload):
    order_id: UUID
    quantity: PositiveInt  # the API caps what a request may ask; history is not capped
    reason: str


class StockCommitted(Payload):
    order_id: UUID
    quantity: PositiveInt  # the API caps what a request may ask; history is not capped


PAYLOADS: dict[str, type[Payload]] = {
    "order.created": OrderCreated,
    "order.reserved": OrderReserved,
    "order.paid": OrderPaid,
    "order.payment_failed": OrderPaymentFailed,
    "order.payment_unapplied": OrderPaymentUnapplied,
    "order.unapplied_payment_refunded": OrderUnappliedPaymentRefunded,
    "order.shipped": OrderShipped,
    "order.delivered": OrderDelivered,
    "order.cancelled": OrderCancelled,
    "order.expired": OrderExpired,
    "order.failed": OrderFailed,
    "order.refunded": OrderRefunded,
    "inventory.item_registered": ItemRegistered,
    "inventory.stock_received": StockReceived,
    "inventory.stock_adjusted": StockAdjusted,
    "inventory.price_changed": PriceChanged,
    "inventory.stock_reserved": StockReserved,
    "inventory.reservation_released": ReservationReleased,
    "inventory.stock_committed": StockCommitted,
}

# Every schema version of every type; a type not named here has only version 1.
PAYLOAD_VERSIONS: dict[str, dict[int, type[Payload]]] = {
    event_type: {1: payload} for event_type, payload in PAYLOADS.items()
}
PAYLOAD_VERSIONS["order.created"] = {1: OrderCreatedV1, 2: OrderCreated}


def latest_version(event_type: str) -> int:
    return max(PAYLOAD_VERSIONS[event_type])
