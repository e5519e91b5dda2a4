"""The reporting projection: order events into ClickHouse rows for reporting tools.

Order events in, rows out: plain functions, one per event type, fill the tables of
projections/reporting_tables.py; `projections/reporting_projector.py` loads the rows
idempotently."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from projections.read_model import registrar
from projections.reporting_tables import ORDER_EVENTS, TABLES, VIEWS, ClickHouseTable
from schemas.envelope import Envelope

NAME = "reporting"
CLICKHOUSE = "clickhouse"  # the store this read model lives in (projections/registry.py)


STATUS_AFTER: dict[str, str] = {
    "order.created": "created",
    "order.reserved": "reserved",
    "order.paid": "paid",
    "order.payment_failed": "reserved",  # a failed payment leaves the order reserved
    "order.shipped": "shipped",
    "order.delivered": "delivered",
    "order.cancelled": "cancelled",
    "order.expired": "expired",
    "order.failed": "failed",
    "order.refunded": "cancelled",  # the refund of a cancelled, paid order
}


@dataclass(frozen=True)
class Line:
    sku: str
    quantity: int
    unit_price_cents: int


@dataclass(frozen=True)
class OrderFacts:
    """What an order's later events need from its creation: reports read them on every row."""

    customer_id: str
    currency: str
    total_cents: int
    lines: tuple[Line, ...]

    @classmethod
    def created_by(cls, e: Envelope) -> OrderFacts:
        d = e.data
        return cls(
            d["customer_id"],
            d["currency"],
            int(d["total_cents"]),
            tuple(
                Line(x["sku"], int(x["quantity"]), int(x["unit_price_cents"])) for x in d["lines"]
            ),
        )


def day_of(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


@dataclass
class ReportRows:
    """The rows a batch of events turns into, per table, in each table's insert order."""

    order_events: list[list[Any]] = field(default_factory=list)
    sales_lines: list[list[Any]] = field(default_factory=list)

    def event(self, e: Envelope, order: OrderFacts, **columns: Any) -> None:
        """The fact row of an order event; `columns` fills what this type of event adds."""
        values: dict[str, Any] = {
            "position": e.position,
            "event_id": e.event_id,
            "type": e.type,
            "order_id": e.aggregate_id,
            "version": e.version,
            "occurred_at": e.occurred_at,
            "day": day_of(e.occurred_at),
            "status": STATUS_AFTER.get(e.type, ""),  # or given in `columns`
            "customer_id": order.customer_id,
            "currency": order.currency,
            "total_cents": order.total_cents,
            "paid_cents": 0,
            "refund_due_cents": 0,
            "refunded_cents": 0,
            "lines.sku": [line.sku for line in order.lines],
            "lines.quantity": [line.quantity for line in order.lines],
            "lines.unit_price_cents": [line.unit_price_cents for line in order.lines],
            "reason": "",
            "payment_ref": "",
            "carrier": "",
            "tracking_number": "",
            "correlation_id": e.correlation_id or "",
            "actor": e.actor or "",
        }
        unknown = columns.keys() - values.keys()
        if unknown:
            raise KeyError(f"order_events has no column {sorted(unknown)}")
        values.update(columns)
        if not values["status"]:
            raise KeyError(f"{e.type} names no status: the handler must give it")
        self.order_events.append([values[name] for name in ORDER_EVENTS.insert_columns])

    def sales(self, e: Envelope, order: OrderFacts) -> None:
        """The lines of an order paid by `e`, on the day it was paid."""
        paid_on = day_of(e.occurred_at)
        for line in order.lines:
            self.sales_lines.append(
                [
                    paid_on,
                    line.sku,
                    e.aggregate_id,
                    order.customer_id,
                    order.currency,
                    line.quantity,
                    line.unit_price_cents,
                    line.quantity * line.unit_price_cents,
                    e.occurred_at,
                    e.position,
                ]
            )


Handler = Callable[[Envelope, OrderFacts, ReportRows], None]


@dataclass
class ReportingReadModel:
    name: str
    description: str
    tables: tuple[ClickHouseTable, ...]
    views: dict[str, str]
    handlers: dict[str, Handler] = field(default_factory=dict)

    def on(self, *event_types: str) -> Callable[[Handler], Handler]:
        return registrar(self.handlers, event_types)

    @property
    def store(self) -> str:
        return CLICKHOUSE

    @property
    def relations(self) -> tuple[str, ...]:
        return (*(t.name for t in self.tables), *self.views)

    @property
    def comparable(self) -> bool:
        """No checked rebuild: ClickHouse has no transaction to hold the live projector at
        one position while both sides are compared (ADR 0019)."""
        return False

    def project(self, e: Envelope, order: OrderFacts, rows: ReportRows) -> None:
        handler = self.handlers.get(e.type)
        if handler is not None:
            handler(e, order, rows)

    def needs_order(self, e: Envelope) -> bool:
        return e.type in self.handlers


reporting = ReportingReadModel(
    NAME,
    description="ClickHouse: order event facts, sales lines; daily and SKU sales, order status",
    tables=TABLES,
    views=VIEWS,
)


@reporting.on("order.created", "order.reserved", "order.delivered", "order.expired")
def plain(e: Envelope, order: OrderFacts, rows: ReportRows) -> None:
    rows.event(e, order)


@reporting.on("order.paid")
def paid(e: Envelope, order: OrderFacts, rows: ReportRows) -> None:
    rows.event(e, order, paid_cents=int(e.data["amount_cents"]), payment_ref=e.data["payment_ref"])
    rows.sales(e, order)


@reporting.on("order.payment_failed")
def payment_failed(e: Envelope, order: OrderFacts, rows: ReportRows) -> None:
    rows.event(e, order, reason=e.data["reason"], payment_ref=e.data["payment_ref"])


@reporting.on("order.payment_unapplied")
def payment_unapplied(e: Envelope, order: OrderFacts, rows: ReportRows) -> None:
    """The order is unchanged (its status rides in the event); the money is owed back."""
    rows.event(
        e,
        order,
        status=e.data["order_status"],
        refund_due_cents=int(e.data["amount_cents"]),
        reason=e.data["reason"],
        payment_ref=e.data["payment_ref"],
    )


@reporting.on("order.unapplied_payment_refunded")
def unapplied_payment_refunded(e: Envelope, order: OrderFacts, rows: ReportRows) -> None:
    rows.event(
        e,
        order,
        status=e.data["order_status"],
        refunded_cents=int(e.data["amount_cents"]),
        payment_ref=e.data["refund_ref"],
    )


@reporting.on("order.shipped")
def shipped(e: Envelope, order: OrderFacts, rows: ReportRows) -> None:
    rows.event(e, order, carrier=e.data["carrier"], tracking_number=e.data["tracking_number"])


@reporting.on("order.cancelled")
def cancelled(e: Envelope, order: OrderFacts, rows: ReportRows) -> None:
    owed = order.total_cents if e.data["refund_due"] else 0
    rows.event(e, order, reason=e.data["reason"], refund_due_cents=owed)


@reporting.on("order.failed")
def failed(e: Envelope, order: OrderFacts, rows: ReportRows) -> None:
    rows.event(e, order, reason=e.data["reason"])


@reporting.on("order.refunded")
def refunded(e: Envelope, order: OrderFacts, rows: ReportRows) -> None:
    rows.event(
        e, order, refunded_cents=int(e.data["amount_cents"]), payment_ref=e.data["refund_ref"]
    )


def orders_needing_facts(envelopes: Sequence[Envelope]) -> set[UUID]:
    """Orders with events in the batch whose creation is not in the batch."""
    created = {e.aggregate_id for e in envelopes if e.type == "order.created"}
    return {
        e.aggregate_id
        for e in envelopes
        if reporting.needs_order(e) and e.aggregate_id not in created
    }
