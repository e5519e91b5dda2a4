"""Stock levels and prices per SKU."""

from __future__ import annotations

from projections.projection import Projection, ProjectionTx, Table
from schemas.envelope import Envelope

inventory = Projection(
    "inventory",
    description="on hand, reserved, available and price per SKU",
    tables=(
        Table(
            "inventory_levels",
            "sku TEXT PRIMARY KEY, item_id TEXT NOT NULL UNIQUE, name TEXT NOT NULL, "
            "unit_price_cents BIGINT NOT NULL, on_hand INTEGER NOT NULL, "
            "reserved INTEGER NOT NULL, available INTEGER NOT NULL, version INTEGER NOT NULL, "
            "updated_at {ts} NOT NULL, position BIGINT NOT NULL",
            indexes=("available, sku",),
        ),
    ),
)


def _move(e: Envelope, db: ProjectionTx, on_hand: int = 0, reserved: int = 0) -> None:
    db.execute(
        "UPDATE {inventory_levels} SET on_hand = on_hand + %s, reserved = reserved + %s, "
        "available = available + %s, version = %s, updated_at = %s, position = %s "
        "WHERE item_id = %s",
        (
            on_hand,
            reserved,
            on_hand - reserved,
            e.version,
            e.occurred_at.isoformat(),
            e.position,
            str(e.aggregate_id),
        ),
    )


@inventory.on("inventory.item_registered")
def registered(e: Envelope, db: ProjectionTx) -> None:
    db.execute(
        "INSERT INTO {inventory_levels} (sku, item_id, name, unit_price_cents, on_hand, "
        "reserved, available, version, updated_at, position) "
        "VALUES (%s, %s, %s, %s, 0, 0, 0, %s, %s, %s)",
        (
            e.data["sku"],
            str(e.aggregate_id),
            e.data["name"],
            e.data["unit_price_cents"],
            e.version,
            e.occurred_at.isoformat(),
            e.position,
        ),
    )


@inventory.on("inventory.stock_received")
def received(e: Envelope, db: ProjectionTx) -> None:
    _move(e, db, on_hand=e.data["quantity"])


@inventory.on("inventory.stock_adjusted")
def adjusted(e: Envelope, db: ProjectionTx) -> None:
    _move(e, db, on_hand=e.data["delta"])


@inventory.on("inventory.stock_reserved")
def stock_reserved(e: Envelope, db: ProjectionTx) -> None:
    _move(e, db, reserved=e.data["quantity"])


@inventory.on("inventory.reservation_released")
def released(e: Envelope, db: ProjectionTx) -> None:
    _move(e, db, reserved=-e.data["quantity"])


@inventory.on("inventory.stock_committed")
def committed(e: Envelope, db: ProjectionTx) -> None:
    _move(e, db, on_hand=-e.data["quantity"], reserved=-e.data["quantity"])


@inventory.on("inventory.price_changed")
def price_changed(e: Envelope, db: ProjectionTx) -> None:
    db.execute(
        "UPDATE {inventory_levels} SET unit_price_cents = %s, version = %s, updated_at = %s, "
        "position = %s WHERE item_id = %s",
        (
            e.data["unit_price_cents"],
            e.version,
            e.occurred_at.isoformat(),
            e.position,
            str(e.aggregate_id),
        ),
    )
