"""Orders holding stock, and since when: the due-time index the expiry worker reads, so
it never scans all orders."""

from __future__ import annotations

from projections.projection import Projection, ProjectionTx, Table
from schemas.envelope import Envelope

reservations = Projection(
    "reservations",
    description="reserved, unpaid orders by the time they were reserved (expiry index)",
    tables=(
        Table(
            "reservation_deadlines",
            "order_id TEXT PRIMARY KEY, reserved_at {ts} NOT NULL",
            indexes=("reserved_at",),
        ),
    ),
)


@reservations.on("order.reserved")
def reserved(e: Envelope, db: ProjectionTx) -> None:
    db.execute(
        "INSERT INTO {reservation_deadlines} (order_id, reserved_at) VALUES (%s, %s) "
        "ON CONFLICT (order_id) DO NOTHING",
        (str(e.aggregate_id), e.occurred_at.isoformat()),
    )


@reservations.on("order.paid", "order.cancelled", "order.expired", "order.failed")
def settled(e: Envelope, db: ProjectionTx) -> None:
    db.execute("DELETE FROM {reservation_deadlines} WHERE order_id = %s", (str(e.aggregate_id),))
