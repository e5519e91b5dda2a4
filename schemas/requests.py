"""HTTP request bodies of the write API; path and token supply the rest of a command."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from schemas.address import ShippingAddress
from schemas.commands import OrderLineRequest, numbers_only
from schemas.types import Cents, Currency, CustomerId, Quantity, Sku

# Blanks around a text are trimmed and a blank-only text is refused: the pattern tells
# clients (and fuzzers) so, where min_length alone would let "   " look valid.
Text = Annotated[
    str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True, pattern=r"\S")
]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    _numbers_are_numbers = field_validator("*", mode="before")(classmethod(numbers_only))


class RegisterItemBody(Body):
    sku: Sku
    name: Text
    unit_price_cents: Cents
    on_hand: int = Field(default=0, ge=0, le=1_000_000)


class ReceiptBody(Body):
    quantity: Quantity


class AdjustmentBody(Body):
    delta: int = Field(
        ge=-1_000_000,
        le=1_000_000,
        description="Units to add (positive) or remove (negative); never 0.",
        json_schema_extra={"not": {"const": 0}},
    )
    reason: Text

    @field_validator("delta")
    @classmethod
    def _not_zero(cls, delta: int) -> int:
        if delta == 0:
            raise ValueError("delta must not be zero")
        return delta


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
    payment_ref: Text = Field(
        description="Required: the reference of the manual or offline payment "
        "(bank transfer id, receipt number, provider payment id)"
    )


class ShipmentBody(Body):
    carrier: Text
    tracking_number: Text


class DeliveryBody(Body):
    pass


class CancellationBody(Body):
    reason: Text
