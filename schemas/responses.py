"""Answers of the write API. `position` is the consistency token: the global position
of the last event the command appended; `version` is the aggregate's version after it."""

from uuid import UUID

from pydantic import BaseModel

from schemas.types import Cents, Currency, CustomerId, Quantity, Sku


class Accepted(BaseModel):
    version: int
    position: int


class ItemRegistered(Accepted):
    sku: Sku


class StockLevel(Accepted):
    sku: Sku
    on_hand: int
    reserved: int
    available: int


class PriceSet(Accepted):
    sku: Sku
    unit_price_cents: Cents


class PricedLine(BaseModel):
    sku: Sku
    quantity: Quantity
    unit_price_cents: Cents


class OrderPlaced(Accepted):
    order_id: UUID
    customer_id: CustomerId
    status: str
    currency: Currency
    total_cents: Cents
    lines: list[PricedLine]


class OrderStatusChanged(Accepted):
    order_id: UUID
    status: str


class PaymentSettled(OrderStatusChanged):
    """A provider's payment: it paid the order, or it was recorded as owed back."""

    applied: bool
