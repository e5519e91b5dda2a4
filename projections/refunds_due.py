"""Refunds owed to customers, one row per payment to give back: money the provider took
for an order that could not take it (order.payment_unapplied), and the payment of an order
cancelled after it was paid (ARCHITECTURE: "refund due if paid"), until refunded.

The amount, currency and payment of a cancelled order come from its earlier events, so
the projection keeps those facts per order in a table of its own (rebuilt with it)."""

from __future__ import annotations

from projections.projection import Projection, ProjectionTx, Table
from schemas.envelope import Envelope

UNAPPLIED = "payment_unapplied"
CANCELLED_AFTER_PAYMENT = "cancelled_after_payment"

refunds_due = Projection(
    "refunds_due",
    description="refunds owed: payments orders could not take, and cancelled paid orders",
    tables=(
        Table(
            "refunds_due",
            "order_id TEXT NOT NULL, payment_ref TEXT NOT NULL, kind TEXT NOT NULL, "
            "customer_id TEXT NOT NULL, amount_cents BIGINT NOT NULL, currency TEXT NOT NULL, "
            "reason TEXT NOT NULL, provider_event_id TEXT, due_since {ts} NOT NULL, "
            "position BIGINT NOT NULL, PRIMARY KEY (order_id, payment_ref)",
            indexes=("position",),
        ),
        Table(
            "refund_order_facts",
            "order_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, currency TEXT NOT NULL, "
            "paid_cents BIGINT, payment_ref TEXT",
        ),
    ),
)

_OWED = (
    "INSERT INTO {refunds_due} (order_id, payment_ref, kind, customer_id, amount_cents, "
    "currency, reason, provider_event_id, due_since, position) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (order_id, payment_ref) DO NOTHING"
)


@refunds_due.on("order.created")
def created(e: Envelope, db: ProjectionTx) -> None:
    db.execute(
        "INSERT INTO {refund_order_facts} (order_id, customer_id, currency) VALUES (%s, %s, %s) "
        "ON CONFLICT (order_id) DO NOTHING",
        (str(e.aggregate_id), e.data["customer_id"], e.data["currency"]),
    )


@refunds_due.on("order.paid")
def paid(e: Envelope, db: ProjectionTx) -> None:
    db.execute(
        "UPDATE {refund_order_facts} SET paid_cents = %s, payment_ref = %s WHERE order_id = %s",
        (e.data["amount_cents"], e.data["payment_ref"], str(e.aggregate_id)),
    )


@refunds_due.on("order.cancelled")
def cancelled(e: Envelope, db: ProjectionTx) -> None:
    if not e.data["refund_due"]:
        return
    facts = db.one(
        "SELECT customer_id, currency, paid_cents, payment_ref FROM {refund_order_facts} "
        "WHERE order_id = %s",
        (str(e.aggregate_id),),
    )
    if facts is None or facts["payment_ref"] is None:
        raise LookupError(f"order {e.aggregate_id} is cancelled with a refund due but unpaid")
    db.execute(
        _OWED,
        (
            str(e.aggregate_id),
            facts["payment_ref"],
            CANCELLED_AFTER_PAYMENT,
            facts["customer_id"],
            facts["paid_cents"],
            facts["currency"],
            f"cancelled after payment: {e.data['reason']}",
            None,
            e.occurred_at.isoformat(),
            e.position,
        ),
    )


@refunds_due.on("order.payment_unapplied")
def payment_unapplied(e: Envelope, db: ProjectionTx) -> None:
    facts = db.one(
        "SELECT customer_id FROM {refund_order_facts} WHERE order_id = %s", (str(e.aggregate_id),)
    )
    if facts is None:
        raise LookupError(f"order {e.aggregate_id} was never created")
    d = e.data
    db.execute(
        _OWED,
        (
            str(e.aggregate_id),
            d["payment_ref"],
            UNAPPLIED,
            facts["customer_id"],
            d["amount_cents"],
            d["currency"],
            d["reason"],
            d["provider_event_id"],
            e.occurred_at.isoformat(),
            e.position,
        ),
    )


@refunds_due.on("order.unapplied_payment_refunded")
def unapplied_refunded(e: Envelope, db: ProjectionTx) -> None:
    db.execute(
        "DELETE FROM {refunds_due} WHERE order_id = %s AND payment_ref = %s",
        (str(e.aggregate_id), e.data["payment_ref"]),
    )


@refunds_due.on("order.refunded")
def refunded(e: Envelope, db: ProjectionTx) -> None:
    db.execute(
        "DELETE FROM {refunds_due} WHERE order_id = %s AND kind = %s",
        (str(e.aggregate_id), CANCELLED_AFTER_PAYMENT),
    )
