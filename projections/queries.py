"""What the read API asks of the read models. Keyset pagination with opaque cursors."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from domain.base_error import OrderFlowError
from projections.ports import Row, Tx

ORDER_COLUMNS = "order_id, customer_id, status, currency, total_cents, created_at, updated_at"


class BadCursor(OrderFlowError):
    code = "bad-cursor"

    def __init__(self) -> None:
        super().__init__("the cursor is not one this API gave out")


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


_ORDER_COLUMNS = (
    "o.order_id, o.customer_id, o.status, o.currency, o.total_cents, o.created_at,"
    " o.updated_at, o.version"
)
_ORDER_WITH_LINES = (
    f"SELECT {_ORDER_COLUMNS}, l.sku, l.quantity, l.unit_price_cents"
    " FROM orders o LEFT JOIN order_lines l ON l.order_id = o.order_id"
    " WHERE o.order_id = %s ORDER BY l.sku"
)
_LINE_COLUMNS = ("sku", "quantity", "unit_price_cents")
ORDERS_AT_ONCE = 500  # well under SQLite's bound on a statement's parameters


def order(tx: Tx, order_id: str) -> Row | None:
    """The order and its lines in one statement (one round trip: a GET's largest cost was
    its statements): a row per line, the order's columns repeated on each."""
    rows = tx.all(_ORDER_WITH_LINES, (order_id,))
    if not rows:
        return None
    head = {k: v for k, v in rows[0].items() if k not in _LINE_COLUMNS}
    lines = [{k: r[k] for k in _LINE_COLUMNS} for r in rows if r["sku"] is not None]
    return {**_plain(head), "lines": lines}


def orders(tx: Tx, order_ids: list[str]) -> dict[str, Row]:
    """Those of these orders the read models hold, with their lines, by id. The orders
    first, then the lines of those found only: joined in one statement over a list of
    ids, PostgreSQL hashed every line there is (a sequential scan of `order_lines`, 0.7 ms
    at 4,000 lines and growing with them), where two lookups by key probe the indexes."""
    found: dict[str, Row] = {}
    for start in range(0, len(order_ids), ORDERS_AT_ONCE):
        chunk = order_ids[start : start + ORDERS_AT_ONCE]
        where = _one_of("o.order_id", chunk)
        heads = tx.all(f"SELECT {_ORDER_COLUMNS} FROM orders o WHERE {where}", chunk)
        found.update((str(r["order_id"]), {**_plain(r), "lines": []}) for r in heads)
    present = list(found)
    for start in range(0, len(present), ORDERS_AT_ONCE):
        chunk = present[start : start + ORDERS_AT_ONCE]
        lines = tx.all(
            "SELECT l.order_id, l.sku, l.quantity, l.unit_price_cents FROM order_lines l"
            f" WHERE {_one_of('l.order_id', chunk)} ORDER BY l.order_id, l.sku",
            chunk,
        )
        for line in lines:
            found[str(line["order_id"])]["lines"].append({k: line[k] for k in _LINE_COLUMNS})
    return found


def _one_of(column: str, values: list[str]) -> str:
    """`column` is one of `values`, a parameter each: the same statement on both stores."""
    return f"{column} IN ({', '.join(['%s'] * len(values))})"


def _page(
    tx: Tx,
    select: str,
    filters: list[tuple[str, list[Any]]],
    order_by: str,
    limit: int,
    key: Callable[[Row], tuple[Any, ...]],
) -> tuple[list[Row], str | None]:
    """One keyset page: fetches one row more than asked to know whether more follow; the
    cursor is the last row's sort key."""
    where = [condition for condition, _ in filters]
    params = [value for _, values in filters for value in values]
    sql = select + (" WHERE " + " AND ".join(where) if where else "")
    sql += f" ORDER BY {order_by} LIMIT %s"
    rows = [_plain(r) for r in tx.all(sql, [*params, limit + 1])]
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(*key(rows[-1])) if more else None


def orders_page(
    tx: Tx, customer_id: str | None, status: str | None, limit: int, cursor: str | None
) -> tuple[list[Row], str | None]:
    """Newest first. A customer's list comes from its own read model."""
    table = "customer_orders" if customer_id is not None else "orders"
    filters: list[tuple[str, list[Any]]] = []
    if customer_id is not None:
        filters.append(("customer_id = %s", [customer_id]))
    if status is not None:
        filters.append(("status = %s", [status]))
    if cursor is not None:
        filters.append(("(created_at, order_id) < (%s, %s)", decode_cursor(cursor, 2)))
    return _page(
        tx,
        f"SELECT {ORDER_COLUMNS} FROM {table}",
        filters,
        "created_at DESC, order_id DESC",
        limit,
        lambda row: (row["created_at"], row["order_id"]),
    )


INVENTORY_COLUMNS = "sku, name, unit_price_cents, on_hand, reserved, available, version"


def item(tx: Tx, sku: str) -> Row | None:
    row = tx.one(f"SELECT {INVENTORY_COLUMNS} FROM inventory_levels WHERE sku = %s", (sku,))
    return _plain(row) if row else None


def inventory_page(
    tx: Tx, below: int | None, limit: int, cursor: str | None
) -> tuple[list[Row], str | None]:
    """By SKU; `below` keeps items whose available stock is under it (reorder lists)."""
    filters: list[tuple[str, list[Any]]] = []
    if below is not None:
        filters.append(("available < %s", [below]))
    if cursor is not None:
        filters.append(("sku > %s", decode_cursor(cursor, 1)))
    return _page(
        tx,
        f"SELECT {INVENTORY_COLUMNS} FROM inventory_levels",
        filters,
        "sku",
        limit,
        lambda row: (row["sku"],),
    )


REFUND_COLUMNS = (
    "order_id, payment_ref, kind, customer_id, amount_cents, currency, reason, "
    "provider_event_id, due_since, position"
)


def refunds_due_page(
    tx: Tx, currency: str | None, limit: int, cursor: str | None
) -> tuple[list[Row], str | None]:
    """Oldest owed first (by the position of the event that made it due)."""
    filters: list[tuple[str, list[Any]]] = []
    if currency is not None:
        filters.append(("currency = %s", [currency]))
    if cursor is not None:
        filters.append(("position > %s", decode_cursor(cursor, 1)))
    return _page(
        tx,
        f"SELECT {REFUND_COLUMNS} FROM refunds_due",
        filters,
        "position, order_id, payment_ref",
        limit,
        lambda row: (row["position"],),
    )


def refund_totals(tx: Tx) -> list[Row]:
    """Per currency: how many refunds are owed and how much."""
    return tx.all(
        "SELECT currency, COUNT(*) AS refunds, SUM(amount_cents) AS amount_cents "
        "FROM refunds_due GROUP BY currency ORDER BY currency"
    )
