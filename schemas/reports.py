"""Answers of the read API's reports (ClickHouse read models)."""

from datetime import date

from pydantic import BaseModel, Field


class DailySales(BaseModel):
    day: date = Field(description="UTC day the orders were paid")
    orders: int = Field(description="orders paid that day")
    units: int = Field(description="units on those orders")
    revenue_cents: int = Field(description="what those orders paid, all currencies summed")


class DailySalesReport(BaseModel):
    items: list[DailySales] = Field(description="days with sales, oldest first")


class SkuSales(BaseModel):
    sku: str
    units: int
    revenue_cents: int


class TopSkusReport(BaseModel):
    items: list[SkuSales] = Field(description="best first")


class FunnelStage(BaseModel):
    status: str = Field(description="an order status, or refund_due (the last stage)")
    reached: int = Field(
        description="orders that were in this status at some point (refund_due: that ever "
        "owed a refund)"
    )
    orders: int = Field(description="orders in this status now (refund_due: still owing one)")


class OrderFunnelReport(BaseModel):
    orders: int = Field(description="orders created in the range")
    items: list[FunnelStage] = Field(
        description="every status, in lifecycle order, then refund_due: orders owing money "
        "back (a payment they could not take, a cancellation after payment) until refunded"
    )
    cancellation_rate: float = Field(description="share of those orders cancelled, 0 to 1")
