"""Answers of the read API."""

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel

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
