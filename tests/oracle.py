"""The independent oracle of read-model checks: every order and SKU loaded from the event
store through the domain aggregates (`Order`, `InventoryItem`), and for what an aggregate
does not keep (when it shipped, the carrier, why it was cancelled) its own domain events,
turned into the rows the read models must hold and compared field by field.

It shares nothing with the projections or their runner, so a wrong handler is caught here
even where the reference fold (tests/folding.py, made with the same handlers) agrees. The
`position` columns are the log's bookkeeping, not the domain's: they are not compared."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.inventory import InventoryItem
from domain.order import Order, OrderStatus
from infra.eventstore.event_store import OrderFlowApplication
from projections.ports import ReadStore, Row

Tables = dict[str, dict[tuple[str, ...], Row]]  # table -> key -> the row's compared columns
KEYS = {
    "orders": ("order_id",),
    "order_lines": ("order_id", "sku"),
    "customer_orders": ("order_id",),
    "inventory_levels": ("sku",),
    "reservation_deadlines": ("order_id",),
}
STATUS_EVENTS = {f"order.{s.value}" for s in OrderStatus} - {"order.created"}
PAGE = 1000


def aggregate_ids(app: OrderFlowApplication) -> tuple[list[UUID], list[UUID]]:
    """The ids of every order and every inventory item in the log, in order of appearance."""
    orders: dict[UUID, None] = {}
    items: dict[UUID, None] = {}
    start = 1
    while page := app.recorder.select_notifications(start, PAGE):
        for n in page:
            if n.topic.startswith("domain.order:"):
                orders.setdefault(UUID(str(n.originator_id)))
            elif n.topic.startswith("domain.inventory:"):
                items.setdefault(UUID(str(n.originator_id)))
        start = page[-1].id + 1
    return list(orders), list(items)


def _last(events: Mapping[str, Any], name: str, attribute: str = "timestamp") -> Any:
    event = events.get(name)
    return getattr(event, attribute) if event is not None else None


def _order_rows(app: OrderFlowApplication, order_id: UUID, expected: Tables) -> None:
    order: object = app.repository.get(order_id)
    assert isinstance(order, Order)
    history: list[Any] = list(app.events.get(order_id))  # the order's domain events
    last = {type(e).__name__: e for e in history}  # the latest event of each type
    status_changed = [e for e in history if type(e).__name__ in STATUS_EVENTS]
    key = (str(order.id),)
    expected["orders"][key] = {
        "order_id": str(order.id),
        "customer_id": order.customer_id,
        "status": order.status.value,
        "currency": order.currency,
        "total_cents": order.total_cents,
        "version": order.version,
        "created_at": order.created_on,
        "updated_at": order.modified_on,
        "paid_at": _last(last, "order.paid"),
        "shipped_at": _last(last, "order.shipped"),
        "delivered_at": _last(last, "order.delivered"),
        "payment_ref": order.payment_ref,
        "carrier": _last(last, "order.shipped", "carrier"),
        "tracking_number": _last(last, "order.shipped", "tracking_number"),
        "cancel_reason": _last(last, "order.cancelled", "reason"),
        "refund_due": order.refund_due,
        "payment_failures": order.payment_failures,
    }
    for line in order.lines:
        expected["order_lines"][(str(order.id), line["sku"])] = {
            "order_id": str(order.id),
            "sku": line["sku"],
            "quantity": line["quantity"],
            "unit_price_cents": line["unit_price_cents"],
        }
    expected["customer_orders"][key] = {
        "order_id": str(order.id),
        "customer_id": order.customer_id,
        "status": order.status.value,
        "currency": order.currency,
        "total_cents": order.total_cents,
        "item_count": sum(line["quantity"] for line in order.lines),
        "created_at": order.created_on,
        "updated_at": status_changed[-1].timestamp if status_changed else order.created_on,
    }
    if order.status is OrderStatus.RESERVED:
        expected["reservation_deadlines"][key] = {
            "order_id": str(order.id),
            "reserved_at": _last(last, "order.reserved"),
        }


def _item_row(app: OrderFlowApplication, item_id: UUID, expected: Tables) -> None:
    item: object = app.repository.get(item_id)
    assert isinstance(item, InventoryItem)
    expected["inventory_levels"][(item.sku,)] = {
        "sku": item.sku,
        "item_id": str(item.id),
        "name": item.name,
        "unit_price_cents": item.unit_price_cents,
        "on_hand": item.on_hand,
        "reserved": item.reserved,
        "available": item.available,
        "version": item.version,
        "updated_at": item.modified_on,
    }


def expected_read_models(app: OrderFlowApplication) -> Tables:
    """The rows every read-model table must hold, from the aggregates alone."""
    expected: Tables = {table: {} for table in KEYS}
    orders, items = aggregate_ids(app)
    for order_id in orders:
        _order_rows(app, order_id, expected)
    for item_id in items:
        _item_row(app, item_id, expected)
    return expected


def _plain(column: str, value: Any) -> Any:
    """Read-store values as the aggregates hold them: SQLite keeps times as ISO text and
    booleans as integers."""
    if isinstance(value, str) and column.endswith(("_at", "_on")):
        return datetime.fromisoformat(value)
    if column == "refund_due":
        return bool(value)
    return value


def differences(store: ReadStore, expected: Tables, limit: int = 20) -> list[str]:
    """What the read models hold that the aggregates say they should not, field by field
    (at most `limit` lines)."""
    found: list[str] = []
    with store.read() as tx:
        for table, rows in expected.items():
            actual = {
                tuple(str(r[k]) for k in KEYS[table]): r for r in tx.all(f"SELECT * FROM {table}")
            }
            for key in sorted(actual.keys() - rows.keys()):
                found.append(f"{table}{list(key)}: in the read model, not in the aggregates")
            for key, want in sorted(rows.items()):
                have = actual.get(key)
                if have is None:
                    found.append(f"{table}{list(key)}: missing from the read model")
                    continue
                for column, value in want.items():
                    if _plain(column, have[column]) != value:
                        found.append(
                            f"{table}{list(key)}.{column}: read model {have[column]!r}, "
                            f"aggregates {value!r}"
                        )
    return found[:limit]


def assert_read_models_match_aggregates(
    store: ReadStore, app: OrderFlowApplication | Tables
) -> None:
    expected = app if isinstance(app, dict) else expected_read_models(app)
    assert (found := differences(store, expected)) == [], "\n".join(found)
