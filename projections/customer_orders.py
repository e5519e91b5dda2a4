"""Each customer's orders, newest first: the list a customer's app shows."""

from __future__ import annotations

from projections.batch import aggregate_key
from projections.read_model import SqlReadModel, Table
from projections.rows import Rows
from schemas.envelope import Envelope

customer_orders = SqlReadModel(
    "customer_orders",
    description="a customer's orders with status and total, newest first",
    tables=(
        Table(
            "customer_orders",
            "order_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, status TEXT NOT NULL, "
            "currency TEXT NOT NULL, total_cents BIGINT NOT NULL, item_count INTEGER NOT NULL, "
            "created_at {ts} NOT NULL, updated_at {ts} NOT NULL",
            key=("order_id",),
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
def created(e: Envelope, db: Rows) -> None:
    d = e.data
    db.insert(
        "customer_orders",
        {
            "order_id": aggregate_key(e.aggregate_id),
            "customer_id": d["customer_id"],
            "status": "created",
            "currency": d["currency"],
            "total_cents": d["total_cents"],
            "item_count": sum(line["quantity"] for line in d["lines"]),
            "created_at": e.occurred_at,
            "updated_at": e.occurred_at,
        },
    )


@customer_orders.on(*STATUS_BY_EVENT)
def status_changed(e: Envelope, db: Rows) -> None:
    db.update(
        "customer_orders",
        aggregate_key(e.aggregate_id),
        status=STATUS_BY_EVENT[e.type],
        updated_at=e.occurred_at,
    )
