"""Orders with their lines, as the read API serves them."""

from __future__ import annotations

from typing import Any

from projections.projection import Projection, ProjectionTx, Table
from schemas.envelope import Envelope

orders = Projection(
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
            indexes=("created_at DESC, order_id DESC", "status, created_at DESC, order_id DESC"),
        ),
        Table(
            "order_lines",
            "order_id TEXT NOT NULL, sku TEXT NOT NULL, quantity INTEGER NOT NULL, "
            "unit_price_cents BIGINT NOT NULL, PRIMARY KEY (order_id, sku)",
        ),
    ),
)


def _touch(e: Envelope, db: ProjectionTx, **columns: Any) -> None:
    """Every order event moves the version and the update time; some set more columns."""
    values = {
        "version": e.version,
        "updated_at": e.occurred_at.isoformat(),
        "position": e.position,
        **columns,
    }
    assignments = ", ".join(f"{column} = %s" for column in values)
    db.execute(
        f"UPDATE {{orders}} SET {assignments} WHERE order_id = %s",
        [*values.values(), str(e.aggregate_id)],
    )


@orders.on("order.created")
def created(e: Envelope, db: ProjectionTx) -> None:
    d = e.data
    db.execute(
        "INSERT INTO {orders} (order_id, customer_id, status, currency, total_cents, version, "
        "created_at, updated_at, refund_due, payment_failures, position) "
        "VALUES (%s, %s, 'created', %s, %s, %s, %s, %s, FALSE, 0, %s)",
        (
            str(e.aggregate_id),
            d["customer_id"],
            d["currency"],
            d["total_cents"],
            e.version,
            e.occurred_at.isoformat(),
            e.occurred_at.isoformat(),
            e.position,
        ),
    )
    db.executemany(
        "INSERT INTO {order_lines} (order_id, sku, quantity, unit_price_cents) "
        "VALUES (%s, %s, %s, %s)",
        [
            (str(e.aggregate_id), line["sku"], line["quantity"], line["unit_price_cents"])
            for line in d["lines"]
        ],
    )


@orders.on("order.reserved")
def reserved(e: Envelope, db: ProjectionTx) -> None:
    _touch(e, db, status="reserved")


@orders.on("order.paid")
def paid(e: Envelope, db: ProjectionTx) -> None:
    _touch(
        e, db, status="paid", paid_at=e.occurred_at.isoformat(), payment_ref=e.data["payment_ref"]
    )


@orders.on("order.payment_failed")
def payment_failed(e: Envelope, db: ProjectionTx) -> None:
    row = db.one(
        "SELECT payment_failures FROM {orders} WHERE order_id = %s", (str(e.aggregate_id),)
    )
    _touch(e, db, payment_failures=(row["payment_failures"] if row else 0) + 1)


@orders.on("order.shipped")
def shipped(e: Envelope, db: ProjectionTx) -> None:
    _touch(
        e,
        db,
        status="shipped",
        shipped_at=e.occurred_at.isoformat(),
        carrier=e.data["carrier"],
        tracking_number=e.data["tracking_number"],
    )


@orders.on("order.delivered")
def delivered(e: Envelope, db: ProjectionTx) -> None:
    _touch(e, db, status="delivered", delivered_at=e.occurred_at.isoformat())


@orders.on("order.cancelled")
def cancelled(e: Envelope, db: ProjectionTx) -> None:
    _touch(
        e,
        db,
        status="cancelled",
        cancel_reason=e.data["reason"],
        refund_due=bool(e.data["refund_due"]),
    )


@orders.on("order.expired")
def expired(e: Envelope, db: ProjectionTx) -> None:
    _touch(e, db, status="expired")


@orders.on("order.failed")
def failed(e: Envelope, db: ProjectionTx) -> None:
    _touch(e, db, status="failed")


@orders.on("order.refunded")
def refunded(e: Envelope, db: ProjectionTx) -> None:
    _touch(e, db, refund_due=False)


@orders.on("order.payment_unapplied", "order.unapplied_payment_refunded")
def money_owed_back(e: Envelope, db: ProjectionTx) -> None:
    """The order itself is unchanged (refunds due has the money): version and time move."""
    _touch(e, db)
