"""Orders holding stock, and since when: the due-time index the expiry worker reads, so
it never scans all orders."""

from __future__ import annotations

from projections.batch import aggregate_key
from projections.read_model import SqlReadModel, Table
from projections.rows import Rows
from schemas.envelope import Envelope

reservations = SqlReadModel(
    "reservations",
    description="reserved, unpaid orders by the time they were reserved (expiry index)",
    tables=(
        Table(
            "reservation_deadlines",
            "order_id TEXT PRIMARY KEY, reserved_at {ts} NOT NULL",
            key=("order_id",),
            indexes=("reserved_at",),
        ),
    ),
)


@reservations.on("order.reserved")
def reserved(e: Envelope, db: Rows) -> None:
    order_id = aggregate_key(e.aggregate_id)
    if db.get("reservation_deadlines", order_id) is None:  # the first reservation counts
        db.put(
            "reservation_deadlines",
            {"order_id": order_id, "reserved_at": e.occurred_at},
        )


@reservations.on("order.paid", "order.cancelled", "order.expired", "order.failed")
def settled(e: Envelope, db: Rows) -> None:
    db.delete("reservation_deadlines", aggregate_key(e.aggregate_id))
