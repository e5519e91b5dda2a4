"""Stock levels and prices per SKU."""

from __future__ import annotations

from projections.batch import aggregate_key
from projections.read_model import SqlReadModel, Table
from projections.rows import Rows
from schemas.envelope import Envelope

inventory = SqlReadModel(
    "inventory",
    description="on hand, reserved, available and price per SKU",
    tables=(
        Table(
            "inventory_levels",
            "sku TEXT PRIMARY KEY, item_id TEXT NOT NULL UNIQUE, name TEXT NOT NULL, "
            "unit_price_cents BIGINT NOT NULL, on_hand INTEGER NOT NULL, "
            "reserved INTEGER NOT NULL, available INTEGER NOT NULL, version INTEGER NOT NULL, "
            "updated_at {ts} NOT NULL, position BIGINT NOT NULL",
            key=("item_id",),  # events name the item; the SKU is its unique business key
            indexes=("available, sku",),
        ),
    ),
)


def _move(e: Envelope, db: Rows, on_hand: int = 0, reserved: int = 0) -> None:
    row = db.get("inventory_levels", aggregate_key(e.aggregate_id))
    if row is None:
        return
    row["on_hand"] += on_hand
    row["reserved"] += reserved
    row["available"] += on_hand - reserved
    row["version"] = e.version
    row["updated_at"] = e.occurred_at
    row["position"] = e.position
    db.put("inventory_levels", row)  # `get` gave a copy: one copy an event, not two


@inventory.on("inventory.item_registered")
def registered(e: Envelope, db: Rows) -> None:
    db.insert(
        "inventory_levels",
        {
            "sku": e.data["sku"],
            "item_id": aggregate_key(e.aggregate_id),
            "name": e.data["name"],
            "unit_price_cents": e.data["unit_price_cents"],
            "on_hand": 0,
            "reserved": 0,
            "available": 0,
            "version": e.version,
            "updated_at": e.occurred_at,
            "position": e.position,
        },
    )


@inventory.on("inventory.stock_received")
def received(e: Envelope, db: Rows) -> None:
    _move(e, db, on_hand=e.data["quantity"])


@inventory.on("inventory.stock_adjusted")
def adjusted(e: Envelope, db: Rows) -> None:
    _move(e, db, on_hand=e.data["delta"])


@inventory.on("inventory.stock_reserved")
def stock_reserved(e: Envelope, db: Rows) -> None:
    _move(e, db, reserved=e.data["quantity"])


@inventory.on("inventory.reservation_released")
def released(e: Envelope, db: Rows) -> None:
    _move(e, db, reserved=-e.data["quantity"])


@inventory.on("inventory.stock_committed")
def committed(e: Envelope, db: Rows) -> None:
    _move(e, db, on_hand=-e.data["quantity"], reserved=-e.data["quantity"])


@inventory.on("inventory.price_changed")
def price_changed(e: Envelope, db: Rows) -> None:
    db.update(
        "inventory_levels",
        aggregate_key(e.aggregate_id),
        unit_price_cents=e.data["unit_price_cents"],
        version=e.version,
        updated_at=e.occurred_at,
        position=e.position,
    )
