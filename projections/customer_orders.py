"""Each customer's orders, newest first: the list a customer's app shows."""

from __future__ import annotations

from projections.projection import Projection, ProjectionTx, Table
from schemas.envelope import Envelope

customer_orders = Projection(
    "customer_orders",
    description="a customer's orders with status and total, newest first",
    tables=(
        Table(
            "customer_orders",
            "order_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, status TEXT NOT NULL, "
            "currency TEXT NOT NULL, total_cents BIGINT NOT NULL, item_count INTEGER NOT NULL, "
            "created_at {ts} NOT NULL, updated_at {ts} NOT NULL",
            indexes=("customer_id, created_at DESC, order_id DESC",),
        ),
    ),
)

STATUS_BY_EVENT = {
    "order.reserved": "reserved",
    "order.paid": "paid",
    "order.shipped": "shipped",
    "order.delivered": "delivered",
    "order.cancelled": "cancelled",
    "order.expired": "expired",
    "order.failed": "failed",
}


@customer_orders.on("order.created")
def created(e: Envelope, db: ProjectionTx) -> None:
    d = e.data
    db.execute(
        "INSERT INTO {customer_orders} (order_id, customer_id, status, currency, total_cents, "
        "item_count, created_at, updated_at) VALUES (%s, %s, 'created', %s, %s, %s, %s, %s)",
        (
            str(e.aggregate_id),
            d["customer_id"],
            d["currency"],
            d["total_cents"],
            sum(line["quantity"] for line in d["lines"]),
            e.occurred_at.isoformat(),
            e.occurred_at.isoformat(),
        ),
    )


@customer_orders.on(*STATUS_BY_EVENT)
def status_changed(e: Envelope, db: ProjectionTx) -> None:
    db.execute(
        "UPDATE {customer_orders} SET status = %s, updated_at = %s WHERE order_id = %s",
        (STATUS_BY_EVENT[e.type], e.occurred_at.isoformat(), str(e.aggregate_id)),
    )
