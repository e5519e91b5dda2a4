"""Orders with their lines, as the read API serves them."""

from __future__ import annotations

from typing import Any

from projections.batch import aggregate_key
from projections.read_model import SqlReadModel, Table
from projections.rows import Rows
from schemas.envelope import Envelope

orders = SqlReadModel(
    "orders",
    description="every order with its lines, status and fulfilment details",
    tables=(
        Table(
            "orders",
            "order_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, status TEXT NOT NULL, "
            "currency TEXT NOT NULL, total_cents BIGINT NOT NULL, version INTEGER NOT NULL, "
            "created_at {ts} NOT NULL, updated_at {ts} NOT NULL, paid_at {ts}, "
            "shipped_at {ts}, delivered_at {ts}, payment_ref TEXT, carrier TEXT, "
            "tracking_number TEXT, cancel_reason TEXT, refund_due BOOLEAN NOT NULL, "
            "payment_failures INTEGER NOT NULL, position BIGINT NOT NULL",
            key=("order_id",),
            indexes=("created_at DESC, order_id DESC", "status, created_at DESC, order_id DESC"),
        ),
        Table(
            "order_lines",
            "order_id TEXT NOT NULL, sku TEXT NOT NULL, quantity INTEGER NOT NULL, "
            "unit_price_cents BIGINT NOT NULL, PRIMARY KEY (order_id, sku)",
            key=("order_id", "sku"),
            lookup=False,
        ),
    ),
)


def _touch(e: Envelope, db: Rows, **columns: Any) -> None:
    """Every order event moves the version and the update time; some set more columns."""
    db.update(
        "orders",
        aggregate_key(e.aggregate_id),
        version=e.version,
        updated_at=e.occurred_at,
        position=e.position,
        **columns,
    )


@orders.on("order.created")
def created(e: Envelope, db: Rows) -> None:
    d = e.data
    order_id = aggregate_key(e.aggregate_id)
    db.insert(
        "orders",
        {
            "order_id": order_id,
            "customer_id": d["customer_id"],
            "status": "created",
            "currency": d["currency"],
            "total_cents": d["total_cents"],
            "version": e.version,
            "created_at": e.occurred_at,
            "updated_at": e.occurred_at,
            "paid_at": None,
            "shipped_at": None,
            "delivered_at": None,
            "payment_ref": None,
            "carrier": None,
            "tracking_number": None,
            "cancel_reason": None,
            "refund_due": False,
            "payment_failures": 0,
            "position": e.position,
        },
    )
    for line in d["lines"]:
        db.insert(
            "order_lines",
            {
                "order_id": order_id,
                "sku": line["sku"],
                "quantity": line["quantity"],
                "unit_price_cents": line["unit_price_cents"],
            },
        )


@orders.on("order.reserved")
def reserved(e: Envelope, db: Rows) -> None:
    _touch(e, db, status="reserved")


@orders.on("order.paid")
def paid(e: Envelope, db: Rows) -> None:
    _touch(e, db, status="paid", paid_at=e.occurred_at, payment_ref=e.data["payment_ref"])


@orders.on("order.payment_failed")
def payment_failed(e: Envelope, db: Rows) -> None:
    row = db.get("orders", aggregate_key(e.aggregate_id))
    _touch(e, db, payment_failures=(row["payment_failures"] if row else 0) + 1)


@orders.on("order.shipped")
def shipped(e: Envelope, db: Rows) -> None:
    _touch(
        e,
        db,
        status="shipped",
        shipped_at=e.occurred_at,
        carrier=e.data["carrier"],
        tracking_number=e.data["tracking_number"],
    )


@orders.on("order.delivered")
def delivered(e: Envelope, db: Rows) -> None:
    _touch(e, db, status="delivered", delivered_at=e.occurred_at)


@orders.on("order.cancelled")
def cancelled(e: Envelope, db: Rows) -> None:
    _touch(
        e,
        db,
        status="cancelled",
        cancel_reason=e.data["reason"],
        refund_due=bool(e.data["refund_due"]),
    )


@orders.on("order.expired")
def expired(e: Envelope, db: Rows) -> None:
    _touch(e, db, status="expired")


@orders.on("order.failed")
def failed(e: Envelope, db: Rows) -> None:
    _touch(e, db, status="failed")


@orders.on("order.refunded")
def refunded(e: Envelope, db: Rows) -> None:
    _touch(e, db, refund_due=False)


@orders.on("order.payment_unapplied", "order.unapplied_payment_refunded")
def money_owed_back(e: Envelope, db: Rows) -> None:
    """The order itself is unchanged (refunds due has the money): version and time move."""
    _touch(e, db)
