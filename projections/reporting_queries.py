"""What the read API asks of the reporting tables. The same SQL as the views in
docs/reporting.md, with the date range pushed down to the sorting key."""

from __future__ import annotations

from datetime import date
from typing import Any

from clickhouse_connect.driver.client import Client

EARLIEST = date(1970, 1, 1)  # the range of ClickHouse's Date
LATEST = date(2149, 6, 6)
FUNNEL = ("created", "reserved", "paid", "shipped", "delivered", "cancelled", "expired", "failed")
REFUND_DUE = "refund_due"  # not a status: the funnel's last stage, orders owing money back
Row = dict[str, Any]


def _range(first: date | None, last: date | None) -> dict[str, date]:
    return {"first": first or EARLIEST, "last": last or LATEST}


def daily_sales(client: Client, first: date | None, last: date | None) -> list[Row]:
    """Orders paid on each day of the range (UTC), their units and revenue."""
    result = client.query(
        "SELECT day, uniqExact(order_id) AS orders, sum(quantity) AS units, "
        "sum(revenue_cents) AS revenue FROM sales_lines FINAL "
        "WHERE day BETWEEN {first:Date} AND {last:Date} GROUP BY day ORDER BY day",
        parameters=_range(first, last),
    )
    return [
        {"day": day, "orders": int(orders), "units": int(units), "revenue_cents": int(revenue)}
        for day, orders, units, revenue in result.result_rows
    ]


def top_skus(
    client: Client, first: date | None, last: date | None, limit: int, by: str = "revenue"
) -> list[Row]:
    """SKUs of the orders paid in the range, best first by revenue (or units)."""
    order = "revenue DESC, units DESC" if by == "revenue" else "units DESC, revenue DESC"
    result = client.query(
        "SELECT sku, sum(quantity) AS units, sum(revenue_cents) AS revenue "
        "FROM sales_lines FINAL WHERE day BETWEEN {first:Date} AND {last:Date} "
        f"GROUP BY sku ORDER BY {order}, sku LIMIT {{limit:UInt32}}",
        parameters={**_range(first, last), "limit": limit},
    )
    return [
        {"sku": sku, "units": int(units), "revenue_cents": int(revenue)}
        for sku, units, revenue in result.result_rows
    ]


def order_funnel(client: Client, first: date | None, last: date | None) -> Row:
    """Orders created in the range: how many reached each status, and how many are in it
    now; then `refund_due`: how many ever owed money back (a payment they could not take,
    a cancellation after payment) and how many still do; the share of them cancelled.

    Sums read each event once (grouped by order and version): a redelivered event may sit
    twice in the table until ClickHouse merges it."""
    result = client.query(
        "WITH placed AS (SELECT DISTINCT order_id FROM order_events "
        "  WHERE type = 'order.created' AND day BETWEEN {first:Date} AND {last:Date}), "
        "events AS (SELECT order_id, version, any(status) AS status, "
        "  any(refund_due_cents) AS due, any(refunded_cents) AS back FROM order_events "
        "  WHERE order_id IN (SELECT order_id FROM placed) GROUP BY order_id, version), "
        "orders AS (SELECT order_id, argMax(status, version) AS current, "
        "  groupUniqArray(status) AS seen, max(due) > 0 AS owed, sum(due) > sum(back) AS owes "
        "  FROM events GROUP BY order_id) "
        "SELECT count() AS total, "
        "  sumForEach(arrayMap(s -> toUInt64(has(seen, s)), {funnel:Array(String)})), "
        "  sumForEach(arrayMap(s -> toUInt64(current = s), {funnel:Array(String)})), "
        "  countIf(owed), countIf(owes) "
        "FROM orders",
        parameters={**_range(first, last), "funnel": list(FUNNEL)},
    )
    total, reached, now, owed, owes = result.result_rows[0]
    reached = reached or [0] * len(FUNNEL)
    now = now or [0] * len(FUNNEL)
    items = [
        {"status": status, "reached": int(r), "orders": int(n)}
        for status, r, n in zip(FUNNEL, reached, now, strict=True)
    ]
    items.append({"status": REFUND_DUE, "reached": int(owed), "orders": int(owes)})
    cancelled = items[FUNNEL.index("cancelled")]["reached"]
    return {
        "orders": int(total),
        "items": items,
        "cancellation_rate": round(cancelled / total, 4) if total else 0.0,
    }
