"""The reporting read model's tables and views in ClickHouse.

Two tables, written by plain functions (an event in, rows out) and loaded idempotently by
`projections/reporting_projector.py`; views on top answer the usual questions:

- `order_events`: one row per order event, denormalised (the order's customer, currency,
  total and lines ride on every row). ReplacingMergeTree keyed by (order_id, version):
  an event delivered twice is the same row twice, and `FINAL` (or `argMax`) reads it once.
- `sales_lines`: one row per line of a paid order, dated by the day it was paid. Keyed by
  (day, sku, order_id), one key per line, so the same holds; ordered by day, so a date
  range reads only its days.
- views `daily_sales`, `sku_sales` (by day and SKU) and `order_status` (each order's
  current status and every status it reached) aggregate the deduplicated rows at query
  time, so a redelivered event or a rebuild can never count twice.

Table and view statements name tables as `{order_events}`; the runner fills in the live
names or, during a rebuild, the shadow ones."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClickHouseTable:
    name: str
    columns: tuple[tuple[str, str], ...]  # (name, type), in insert order
    engine: str
    description: str = ""

    @property
    def insert_columns(self) -> list[str]:
        return [name for name, _ in self.columns]

    def create(self, physical: str) -> str:
        body = ",\n  ".join(f"`{name}` {kind}" for name, kind in self.columns)
        return f"CREATE TABLE IF NOT EXISTS {physical} (\n  {body}\n) ENGINE = {self.engine}"


ORDER_EVENTS = ClickHouseTable(
    "order_events",
    columns=(
        ("position", "UInt64"),
        ("event_id", "UUID"),
        ("type", "LowCardinality(String)"),
        ("order_id", "UUID"),
        ("version", "UInt32"),
        ("occurred_at", "DateTime64(6, 'UTC')"),
        ("day", "Date"),
        ("status", "LowCardinality(String)"),
        ("customer_id", "String"),
        ("currency", "LowCardinality(String)"),
        ("total_cents", "Int64"),
        ("paid_cents", "Int64"),
        ("refund_due_cents", "Int64"),
        ("refunded_cents", "Int64"),
        ("lines.sku", "Array(String)"),
        ("lines.quantity", "Array(UInt32)"),
        ("lines.unit_price_cents", "Array(Int64)"),
        ("reason", "String"),
        ("payment_ref", "String"),
        ("carrier", "String"),
        ("tracking_number", "String"),
        ("correlation_id", "String"),
        ("actor", "String"),
    ),
    engine="ReplacingMergeTree PARTITION BY toYYYYMM(day) ORDER BY (order_id, version)",
    description="one row per order event, with the order's customer, lines and amounts",
)

SALES_LINES = ClickHouseTable(
    "sales_lines",
    columns=(
        ("day", "Date"),
        ("sku", "String"),
        ("order_id", "UUID"),
        ("customer_id", "String"),
        ("currency", "LowCardinality(String)"),
        ("quantity", "UInt32"),
        ("unit_price_cents", "Int64"),
        ("revenue_cents", "Int64"),
        ("paid_at", "DateTime64(6, 'UTC')"),
        ("position", "UInt64"),
    ),
    engine="ReplacingMergeTree PARTITION BY toYYYYMM(day) ORDER BY (day, sku, order_id)",
    description="one row per line of a paid order, on the day it was paid",
)

TABLES: tuple[ClickHouseTable, ...] = (ORDER_EVENTS, SALES_LINES)

VIEWS: dict[str, str] = {
    "daily_sales": """
        SELECT day, uniqExact(order_id) AS orders, sum(quantity) AS units,
               sum(revenue_cents) AS revenue_cents
        FROM {sales_lines} FINAL GROUP BY day""",
    "sku_sales": """
        SELECT day, sku, uniqExact(order_id) AS orders, sum(quantity) AS units,
               sum(revenue_cents) AS revenue_cents
        FROM {sales_lines} FINAL GROUP BY day, sku""",
    # aliases must not shadow the columns the aggregates read, hence the inner names
    "order_status": """
        SELECT order_id, customer_id, currency, total_cents, current AS status, reached,
               first_at AS created_at, last_at AS updated_at, last_version AS version
        FROM (
            SELECT order_id, any(customer_id) AS customer_id, any(currency) AS currency,
                   any(total_cents) AS total_cents, argMax(status, version) AS current,
                   groupUniqArray(status) AS reached, min(occurred_at) AS first_at,
                   max(occurred_at) AS last_at, max(version) AS last_version
            FROM {order_events} GROUP BY order_id)""",
}
