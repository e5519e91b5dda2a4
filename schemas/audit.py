"""Answers of the audit endpoints."""

from uuid import UUID

from pydantic import BaseModel, Field

from schemas.address import ShippingAddress
from schemas.envelope import Envelope
from schemas.responses import PricedLine


class EventPage(BaseModel):
    items: list[Envelope]
    next_position: int


class History(BaseModel):
    items: list[Envelope]


class OrderState(BaseModel):
    order_id: UUID
    customer_id: str
    status: str
    currency: str
    total_cents: int
    lines: list[PricedLine]
    payment_ref: str | None
    refund_due: bool
    version: int
    shipping_address: ShippingAddress | None = None
    redacted: list[str] = Field(
        default_factory=list,
        description="Personal fields forgotten with the customer: null for good",
    )


class ItemState(BaseModel):
    sku: str
    name: str
    unit_price_cents: int
    on_hand: int
    reserved: int
    available: int
    version: int


class VerifyReport(BaseModel):
    ok: bool
    checked: int
    first_bad_position: int | None = None
    reason: str | None = None
    last_position: int
