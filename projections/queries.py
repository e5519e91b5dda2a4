"""What the read API asks of the read models. Keyset pagination with opaque cursors."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from infra.read_store import Row, Tx

ORDER_COLUMNS = "order_id, customer_id, status, currency, total_cents, created_at, updated_at"


class BadCursor(ValueError):
    code = "bad-cursor"

    def __init__(self) -> None:
        super().__init__("the cursor is not one this API gave out")
        self.detail = str(self)


def _text(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def encode_cursor(*key: Any) -> str:
    raw = json.dumps([_text(k) for k in key]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, parts: int) -> list[Any]:
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError as bad:
        raise BadCursor from bad
    if not isinstance(key, list) or len(key) != parts:
        raise BadCursor
    return key


def _plain(row: Row) -> Row:
    return {k: _text(v) for k, v in row.items()}


def order(tx: Tx, order_id: str) -> Row | None:
    row = tx.one(f"SELECT {ORDER_COLUMNS}, version FROM orders WHERE order_id = %s", (order_id,))
    if row is None:
        return None
    lines = tx.all(
        "SELECT sku, quantity, unit_price_cents FROM order_lines WHERE order_id = %s ORDER BY sku",
        (order_id,),
    )
    return {**_plain(row), "lines": lines}


def orders_page(
    tx: Tx, customer_id: str | None, status: str | None, limit: int, cursor: str | None
) -> tuple[list[Row], str | None]:
    """Newest first. A customer's list comes from its own read model."""
    table = "customer_orders" if customer_id is not None else "orders"
    where, params = [], []
    if customer_id is not None:
        where.append("customer_id = %s")
        params.append(customer_id)
    if status is not None:
        where.append("status = %s")
        params.append(status)
    if cursor is not None:
        where.append("(created_at, order_id) < (%s, %s)")
        params.extend(decode_cursor(cursor, 2))
    sql = f"SELECT {ORDER_COLUMNS} FROM {table}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY created_at DESC, order_id DESC LIMIT %s"
    rows = [_plain(r) for r in tx.all(sql, [*params, limit + 1])]
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if more else None
    return rows, encode_cursor(last["created_at"], last["order_id"]) if last else None


INVENTORY_COLUMNS = "sku, name, unit_price_cents, on_hand, reserved, available, version"


def item(tx: Tx, sku: str) -> Row | None:
    row = tx.one(f"SELECT {INVENTORY_COLUMNS} FROM inventory_levels WHERE sku = %s", (sku,))
    return _plain(row) if row else None


def inventory_page(
    tx: Tx, below: int | None, limit: int, cursor: str | None
) -> tuple[list[Row], str | None]:
    """By SKU; `below` keeps items whose available stock is under it (reorder lists)."""
    where, params = [], []
    if below is not None:
        where.append("available < %s")
        params.append(below)
    if cursor is not None:
        where.append("sku > %s")
        params.extend(decode_cursor(cursor, 1))
    sql = f"SELECT {INVENTORY_COLUMNS} FROM inventory_levels"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY sku LIMIT %s"
    rows = [_plain(r) for r in tx.all(sql, [*params, limit + 1])]
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1]["sku"]) if more else None
