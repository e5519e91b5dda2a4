"""Answers of the read API."""

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from schemas.responses import PricedLine


class OrderSummary(BaseModel):
    order_id: UUID
    customer_id: str
    status: str
    currency: str
    total_cents: int
    created_at: datetime
    updated_at: datetime


class OrderView(OrderSummary):
    version: int
    lines: list[PricedLine]


class OrderPage(BaseModel):
    items: list[OrderSummary]
    next_cursor: str | None


class InventoryView(BaseModel):
    sku: str
    name: str
    unit_price_cents: int
    on_hand: int
    reserved: int
    available: int
    version: int


class InventoryPage(BaseModel):
    items: list[InventoryView]
    next_cursor: str | None


class RefundDue(BaseModel):
    order_id: UUID
    payment_ref: str = Field(description="The payment to give back (the provider's id)")
    kind: Literal["payment_unapplied", "cancelled_after_payment"] = Field(
        description="payment_unapplied: money received for an order that could not take it "
        "(ended, already paid, another amount or currency); cancelled_after_payment: the "
        "order was cancelled after it was paid"
    )
    customer_id: str
    amount_cents: int
    currency: str
    reason: str
    provider_event_id: str | None = Field(
        description="The provider's event that reported the payment (payment_unapplied)"
    )
    due_since: datetime
    position: int = Field(description="Position of the event that made the refund due")


class RefundTotal(BaseModel):
    currency: str
    refunds: int
    amount_cents: int


class RefundsDuePage(BaseModel):
    items: list[RefundDue] = Field(description="Oldest first")
    totals: list[RefundTotal] = Field(description="Everything owed now, per currency")
    next_cursor: str | None
