"""Refunds owed to customers, one row per payment to give back: money the provider took
for an order that could not take it (order.payment_unapplied), and the payment of an order
cancelled after it was paid (ARCHITECTURE: "refund due if paid"), until refunded.

The amount, currency and payment of a cancelled order come from its earlier events, so
the projection keeps those facts per order in a table of its own (rebuilt with it)."""

from __future__ import annotations

from projections.batch import aggregate_key
from projections.read_model import SqlReadModel, Table
from projections.rows import Rows
from schemas.envelope import Envelope

UNAPPLIED = "payment_unapplied"
CANCELLED_AFTER_PAYMENT = "cancelled_after_payment"

refunds_due = SqlReadModel(
    "refunds_due",
    description="refunds owed: payments orders could not take, and cancelled paid orders",
    tables=(
        Table(
            "refunds_due",
            "order_id TEXT NOT NULL, payment_ref TEXT NOT NULL, kind TEXT NOT NULL, "
            "customer_id TEXT NOT NULL, amount_cents BIGINT NOT NULL, currency TEXT NOT NULL, "
            "reason TEXT NOT NULL, provider_event_id TEXT, due_since {ts} NOT NULL, "
            "position BIGINT NOT NULL, PRIMARY KEY (order_id, payment_ref)",
            key=("order_id", "payment_ref"),
            indexes=("position",),
            lookup=False,
        ),
        Table(
            "refund_order_facts",
            "order_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, currency TEXT NOT NULL, "
            "paid_cents BIGINT, payment_ref TEXT",
            key=("order_id",),
        ),
    ),
)


def _owe(
    db: Rows,
    e: Envelope,
    payment_ref: str,
    kind: str,
    customer_id: str,
    amount_cents: int,
    currency: str,
    reason: str,
    provider_event_id: str | None,
) -> None:
    db.put(
        "refunds_due",
        {
            "order_id": aggregate_key(e.aggregate_id),
            "payment_ref": payment_ref,
            "kind": kind,
            "customer_id": customer_id,
            "amount_cents": amount_cents,
            "currency": currency,
            "reason": reason,
            "provider_event_id": provider_event_id,
            "due_since": e.occurred_at,
            "position": e.position,
        },
    )


@refunds_due.on("order.created")
def created(e: Envelope, db: Rows) -> None:
    order_id = aggregate_key(e.aggregate_id)
    if db.get("refund_order_facts", order_id) is None:
        db.put(
            "refund_order_facts",
            {
                "order_id": order_id,
                "customer_id": e.data["customer_id"],
                "currency": e.data["currency"],
                "paid_cents": None,
                "payment_ref": None,
            },
        )


@refunds_due.on("order.paid")
def paid(e: Envelope, db: Rows) -> None:
    db.update(
        "refund_order_facts",
        aggregate_key(e.aggregate_id),
        paid_cents=e.data["amount_cents"],
        payment_ref=e.data["payment_ref"],
    )


@refunds_due.on("order.cancelled")
def cancelled(e: Envelope, db: Rows) -> None:
    if not e.data["refund_due"]:
        return
    facts = db.get("refund_order_facts", aggregate_key(e.aggregate_id))
    if facts is None or facts["payment_ref"] is None:
        raise LookupError(f"order {e.aggregate_id} is cancelled with a refund due but unpaid")
    _owe(
        db,
        e,
        facts["payment_ref"],
        CANCELLED_AFTER_PAYMENT,
        facts["customer_id"],
        facts["paid_cents"],
        facts["currency"],
        f"cancelled after payment: {e.data['reason']}",
        None,
    )


@refunds_due.on("order.payment_unapplied")
def payment_unapplied(e: Envelope, db: Rows) -> None:
    facts = db.get("refund_order_facts", aggregate_key(e.aggregate_id))
    if facts is None:
        raise LookupError(f"order {e.aggregate_id} was never created")
    d = e.data
    _owe(
        db,
        e,
        d["payment_ref"],
        UNAPPLIED,
        facts["customer_id"],
        d["amount_cents"],
        d["currency"],
        d["reason"],
        d["provider_event_id"],
    )


@refunds_due.on("order.unapplied_payment_refunded")
def unapplied_refunded(e: Envelope, db: Rows) -> None:
    db.delete("refunds_due", aggregate_key(e.aggregate_id), e.data["payment_ref"])


@refunds_due.on("order.refunded")
def refunded(e: Envelope, db: Rows) -> None:
    """The cancelled order's own payment was given back: its row (keyed by that payment)."""
    facts = db.get("refund_order_facts", aggregate_key(e.aggregate_id))
    if facts is not None and facts["payment_ref"] is not None:
        db.delete("refunds_due", aggregate_key(e.aggregate_id), facts["payment_ref"])
