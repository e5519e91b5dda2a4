"""Commands: what a client asks the write side to do, after validation at the edge.

`expected_version` comes from `If-Match`; `acting_customer` is set when a customer acts,
so handlers can refuse other customers' orders.
"""

from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from schemas.address import ShippingAddress
from schemas.types import Cents, Currency, CustomerId, Name, Quantity, ShortText, Sku


class Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    expected_version: int | None = None


class RegisterItem(Command):
    sku: Sku
    name: Name
    unit_price_cents: Cents
    on_hand: int = Field(default=0, ge=0, le=1_000_000)


class ReceiveStock(Command):
    sku: Sku
    quantity: Quantity


class AdjustStock(Command):
    sku: Sku
    delta: int = Field(ge=-1_000_000, le=1_000_000)
    reason: ShortText


class ChangePrice(Command):
    sku: Sku
    unit_price_cents: Cents


def numbers_only(cls: type[BaseModel], value: Any, info: ValidationInfo) -> Any:
    """For a whole-number field, JSON `true` is not the number 1, nor "5" the number 5,
    whatever pydantic's lax mode would make of them; 5.0 is 5, as JSON Schema says."""
    field = cls.model_fields.get(info.field_name or "")
    whole_number = field is not None and field.annotation in (int, int | None)
    if whole_number and isinstance(value, bool | str):
        raise ValueError(f"{info.field_name} must be a number")
    return value


class OrderLineRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    _numbers_are_numbers = field_validator("*", mode="before")(classmethod(numbers_only))

    sku: Sku
    quantity: Quantity


class PlaceOrder(Command):
    customer_id: CustomerId
    lines: tuple[OrderLineRequest, ...] = Field(min_length=1, max_length=100)
    currency: Currency = "EUR"
    shipping_address: ShippingAddress | None = None


class OrderCommand(Command):
    order_id: UUID
    acting_customer: CustomerId | None = None


class PayOrder(OrderCommand):
    amount_cents: Cents
    payment_ref: ShortText


class ShipOrder(OrderCommand):
    carrier: ShortText
    tracking_number: ShortText


class DeliverOrder(OrderCommand):
    pass


class CancelOrder(OrderCommand):
    reason: ShortText


class ExpireOrder(OrderCommand):
    """Issued by the expiry worker for reservations past their time."""


class SettlePayment(OrderCommand):
    """A provider says it took a payment: it pays the order when the order can take it
    (reserved, same amount and currency); otherwise the money is recorded on the order as
    owed back (order.payment_unapplied)."""

    amount_cents: Cents
    currency: Currency
    payment_ref: ShortText
    provider_event_id: str = Field(min_length=1, max_length=255)


class RecordPaymentFailure(OrderCommand):
    reason: ShortText
    payment_ref: ShortText


class RecordRefund(OrderCommand):
    amount_cents: Cents
    refund_ref: ShortText
    payment_ref: ShortText | None = None  # the refunded payment, when the provider says
