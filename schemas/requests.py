"""HTTP request bodies of the write API; path and token supply the rest of a command."""

from pydantic import BaseModel, ConfigDict, Field

from schemas.address import ShippingAddress
from schemas.commands import OrderLineRequest
from schemas.types import Cents, Currency, CustomerId, Name, Quantity, ShortText, Sku


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterItemBody(Body):
    sku: Sku
    name: Name
    unit_price_cents: Cents
    on_hand: int = Field(default=0, ge=0, le=1_000_000)


class ReceiptBody(Body):
    quantity: Quantity


class AdjustmentBody(Body):
    delta: int = Field(ge=-1_000_000, le=1_000_000)
    reason: ShortText


class PriceBody(Body):
    unit_price_cents: Cents


class PlaceOrderBody(Body):
    customer_id: CustomerId | None = Field(
        default=None, description="Required unless the caller is a customer (taken from the token)"
    )
    lines: list[OrderLineRequest] = Field(min_length=1, max_length=100)
    currency: Currency = "EUR"
    shipping_address: ShippingAddress | None = Field(
        default=None, description="Where the order ships to (optional)"
    )


class PaymentBody(Body):
    amount_cents: Cents = Field(description="Must equal the order's total")
    payment_ref: ShortText = Field(
        description="Required: the reference of the manual or offline payment "
        "(bank transfer id, receipt number, provider payment id)"
    )


class ShipmentBody(Body):
    carrier: ShortText
    tracking_number: ShortText


class DeliveryBody(Body):
    pass


class CancellationBody(Body):
    reason: ShortText
